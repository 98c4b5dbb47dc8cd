import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { parse as parseSync } from 'csv-parse/sync';
import { PREFIXES } from '../../../topology/topology.ts';
import type { RejectsStore } from '../ports.ts';
import { REJECTS_HEADER } from '../rows.ts';

const pad = (n: number) => String(n).padStart(12, '0');
const quote = (v: string | undefined) => `"${(v ?? '').replaceAll('"', '""')}"`;

/**
 * Rejects as S3 objects: `rejected/<jobId>/part-<firstRow>-<lastRow>.csv` per transaction, written
 * before the Kafka commit; at the end combined into `rejected/<jobId>.csv` (row,byte_offset,reason,raw,detail),
 * de-duplicated by row and sorted, so parts re-written by a resume count once.
 */
export function s3Rejects(s3: S3Client, bucket: string): RejectsStore {
  const partsPrefix = (jobId: string) => `${PREFIXES.rejected}${jobId}/`;
  const listParts = async (jobId: string) => {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: partsPrefix(jobId), ContinuationToken: token }),
      );
      for (const o of out.Contents ?? []) if (o.Key) keys.push(o.Key);
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
    return keys.sort();
  };
  return {
    async writePart(jobId, firstRow, lastRow, csvLines) {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: `${partsPrefix(jobId)}part-${pad(firstRow)}-${pad(lastRow)}.csv`,
          Body: csvLines,
          ContentType: 'text/csv; charset=utf-8',
        }),
      );
    },
    async combine(jobId) {
      const keys = await listParts(jobId);
      if (keys.length === 0) return { uri: null, rows: 0 };
      const byRow = new Map<number, string[]>();
      for (const key of keys) {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const text = (await out.Body?.transformToString('utf8')) ?? '';
        for (const rec of parseSync(text, { relax_column_count: true }) as string[][]) {
          const row = Number(rec[0]);
          if (Number.isInteger(row)) byRow.set(row, rec);
        }
      }
      const rows = [...byRow.entries()].sort((a, b) => a[0] - b[0]);
      const body =
        REJECTS_HEADER +
        rows.map(([, r]) => `${r[0]},${r[1]},${r[2]},${quote(r[3])},${quote(r[4])}\n`).join('');
      const key = `${PREFIXES.rejected}${jobId}.csv`;
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: body,
          ContentType: 'text/csv; charset=utf-8',
        }),
      );
      return { uri: `s3://${bucket}/${key}`, rows: rows.length };
    },
    async cleanup(jobId) {
      const keys = await listParts(jobId);
      for (let i = 0; i < keys.length; i += 1000) {
        await s3.send(
          new DeleteObjectsCommand({
            Bucket: bucket,
            Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
          }),
        );
      }
    },
  };
}
