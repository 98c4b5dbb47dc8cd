/**
 * dims-publisher against the local stack: objects in several prefixes of the stage's bucket (one prefix
 * over a listing page), job records for some of them; one run must publish the counts and bytes an
 * independent listing gives, and a second run after changes must report the drift.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobIdFor } from '../../events/ids.ts';
import { destroyClients, type LocalClients, localClients } from '../../local/clients.ts';
import { createDimsPublisher } from '../../services/dims-publisher/handler.ts';
import { DimsEnv } from '../../services/dims-publisher/settings.ts';
import { loadConfig } from '../../services/shared/config.ts';
import { receiveUntil, tapBus } from '../../testkit/sqs.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: LocalClients;
let doc: DynamoDBDocumentClient;
let tmp: string;
let emfPath: string;
let publishedUrl: string;
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function put(key: string, bytes: number) {
  const out = await aws.s3.send(
    new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: 'x'.repeat(bytes) }),
  );
  return { versionId: out.VersionId ?? null, etag: (out.ETag ?? '').replace(/"/g, '') };
}

/** Counts and bytes per prefix by a plain listing of our own, to compare against. */
async function independentListing(prefix: string) {
  let count = 0;
  let bytes = 0;
  let token: string | undefined;
  do {
    const out = await aws.s3.send(
      new ListObjectsV2Command({
        Bucket: outputs.bucket,
        Prefix: prefix,
        ContinuationToken: token,
        MaxKeys: 250,
      }),
    );
    for (const o of out.Contents ?? []) {
      count++;
      bytes += o.Size ?? 0;
    }
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return { count, bytes };
}

function publisher() {
  const config = loadConfig(DimsEnv, {
    ...env,
    LOG_LEVEL: 'WARN',
    ROWSTREAM_METRICS_SINK: `file:${emfPath}`,
  });
  return createDimsPublisher(config);
}

beforeAll(async () => {
  ({ outputs, env } = await freshStack('dims'));
  aws = localClients({ endpoint: env.AWS_ENDPOINT_URL! });
  doc = DynamoDBDocumentClient.from(aws.dynamodb);
  tmp = await mkdtemp(join(tmpdir(), 'rowstream-dims-'));
  emfPath = join(tmp, 'dims-publisher.emf.jsonl');
  publishedUrl = (
    await tapBus(aws, outputs.busName, `${outputs.stage}-inventory`, {
      'detail-type': ['InventoryPublished.v1'],
    })
  ).url;
});

afterAll(async () => {
  if (aws) destroyClients(aws);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('dims-publisher on the local stack', () => {
  it('publishes the counts and bytes an independent listing gives, across listing pages', async () => {
    // Prepare: inbound/ a (finished job), b and c (no job); rejected/ 2; processed/ 1100 (two pages); other/ 1
    const a = await put('inbound/a.csv', 120);
    await doc.send(
      new PutCommand({
        TableName: outputs.tables.jobs,
        Item: {
          jobId: jobIdFor(outputs.bucket, 'inbound/a.csv', a),
          status: 'COMPLETED',
          createdAt: now.toISOString(),
          updatedAt: now.toISOString(),
          rowsDelivered: 41,
          rowsRejected: 0,
        },
      }),
    );
    await sleep(1100);
    await put('inbound/b.csv', 300);
    await sleep(1100);
    await put('inbound/c.csv', 7);
    await put('rejected/a.rejects.csv', 11);
    await put('rejected/b.rejects.csv', 13);
    await put('other/not-measured.csv', 1000);
    const keys = Array.from({ length: 1100 }, (_, i) => `processed/p-${String(i).padStart(4, '0')}.csv`);
    for (let i = 0; i < keys.length; i += 25)
      await Promise.all(keys.slice(i, i + 25).map((k, j) => put(k, 1 + ((i + j) % 5))));
    // Act
    const summary = await publisher().runOnce(now);
    // Assess
    const records = (await readFile(emfPath, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const prefix of ['inbound/', 'rejected/', 'processed/']) {
      const expected = await independentListing(prefix);
      const emf = (name: string) =>
        records.filter((r) => r.Prefix === prefix && r[name] !== undefined).map((r) => r[name]);
      expect(emf('InventoryObjects'), prefix).toEqual([expected.count]);
      expect(emf('InventoryBytes'), prefix).toEqual([expected.bytes]);
    }
    // The hand numbers, so the comparison above cannot pass by both sides being wrong together.
    expect(await independentListing('inbound/')).toEqual({ count: 3, bytes: 427 });
    expect((await independentListing('processed/')).count).toBe(1100);
    const value = (name: string) => records.find((r) => r[name] !== undefined)?.[name];
    expect(value('InventoryRowsDelivered24h')).toBe(41);
    expect(records.find((r) => r.Status === 'COMPLETED')?.InventoryJobs).toBe(1);
    expect(summary.oldestUnprocessedKey).toBe('inbound/b.csv');
    const stored = await doc.send(
      new GetCommand({ TableName: outputs.tables.state, Key: { pk: 'inventory#latest' } }),
    );
    expect(stored.Item?.snapshotId).toBe(now.toISOString());
  });

  it('reports the drift against the previous snapshot', async () => {
    // Prepare: rejected/ goes from 2 objects (24 bytes) to 4 (24 + 20 + 20)
    await put('rejected/c.rejects.csv', 20);
    await put('rejected/d.rejects.csv', 20);
    // Act
    const later = new Date(now.getTime() + 6 * 3600_000);
    const summary = await publisher().runOnce(later);
    // Assess
    expect(summary.previousSnapshotId).toBe(now.toISOString());
    const drift = (s: {
      drift: readonly {
        name: string;
        labels: Record<string, string>;
        previous: number | null;
        value: number;
        driftPercent: number | null;
      }[];
    }) =>
      s.drift
        .filter((m) => m.labels.Prefix === 'rejected/')
        .map((m) => [m.name, m.previous, m.value, m.driftPercent]);
    expect(drift(summary)).toEqual([
      ['InventoryObjects', 2, 4, 100],
      ['InventoryBytes', 24, 64, 166.67],
    ]);
    // Nothing else moved beyond the 10% tolerance except the age of the oldest unprocessed object.
    expect(summary.drift.map((m) => m.name).sort()).toEqual([
      'InventoryBytes',
      'InventoryObjects',
      'InventoryOldestUnprocessedSeconds',
    ]);
    // InventoryPublished.v1 carries the same drift.
    const messages = await receiveUntil(aws.sqs, publishedUrl, (m) => m.length >= 2, 5000);
    const details = messages
      .map((m) => JSON.parse(m.Body!).detail)
      .filter((d) => d.snapshotId === later.toISOString());
    expect(details).toHaveLength(1);
    expect(drift(details[0])).toEqual(drift(summary));
  });
});
