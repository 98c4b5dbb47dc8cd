import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { FATE_TAGS, type ObjectMovePort, type SourceRef } from '../source-fate.ts';

/** CopyObject copies at most 5 GiB; above, a multipart upload copies the object in ranges. */
export const MAX_COPY_OBJECT_BYTES = 5 * 1024 ** 3;
/** S3 allows 10,000 parts of 5 MiB to 5 GiB each. */
const MAX_PARTS = 10_000;

export interface ObjectMoveOptions {
  /** Objects above this are copied part by part (tests lower it). */
  readonly maxCopyObjectBytes?: number;
  /** The size of each copied part (raised when the object would need more than 10,000 parts). */
  readonly partBytes?: number;
  /** Parts copied at once. */
  readonly concurrency?: number;
}

type VersionRef = SourceRef & { readonly versionId: string };

/**
 * {@link ObjectMovePort} over S3: the exact source version copied with its metadata and tags (a moved
 * object keeps the uploader's options and the fate tags): CopyObject up to 5 GiB, a multipart upload of
 * UploadPartCopy ranges above (aborted if any part fails). DeleteObject with VersionId.
 */
export function s3ObjectMove(s3: S3Client, opts: ObjectMoveOptions = {}): ObjectMovePort {
  const maxCopy = opts.maxCopyObjectBytes ?? MAX_COPY_OBJECT_BYTES;
  const copySource = (from: VersionRef) =>
    `${from.bucket}/${encodeKey(from.key)}?versionId=${encodeURIComponent(from.versionId)}`;

  const copyInParts = async (from: VersionRef, toKey: string, size: number) => {
    const version = { Bucket: from.bucket, Key: from.key, VersionId: from.versionId };
    const head = await s3.send(new HeadObjectCommand(version));
    const tags = await s3.send(new GetObjectTaggingCommand(version));
    const tagging = new URLSearchParams(
      (tags.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']),
    ).toString();
    const { UploadId } = await s3.send(
      new CreateMultipartUploadCommand({
        Bucket: from.bucket,
        Key: toKey,
        ...(head.ContentType ? { ContentType: head.ContentType } : {}),
        ...(head.ContentEncoding ? { ContentEncoding: head.ContentEncoding } : {}),
        ...(head.Metadata ? { Metadata: head.Metadata } : {}),
        ...(tagging ? { Tagging: tagging } : {}),
      }),
    );
    const partBytes = Math.max(opts.partBytes ?? 512 * 1024 ** 2, Math.ceil(size / MAX_PARTS));
    const count = Math.ceil(size / partBytes);
    const etags: string[] = new Array(count);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < count; i = next++) {
        const start = i * partBytes;
        const end = Math.min(size, start + partBytes) - 1;
        const out = await s3.send(
          new UploadPartCopyCommand({
            Bucket: from.bucket,
            Key: toKey,
            UploadId,
            PartNumber: i + 1,
            CopySource: copySource(from),
            CopySourceRange: `bytes=${start}-${end}`,
          }),
        );
        etags[i] = out.CopyPartResult?.ETag ?? '';
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, count) }, worker));
      const done = await s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: from.bucket,
          Key: toKey,
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
      return done.VersionId;
    } catch (e) {
      await s3
        .send(new AbortMultipartUploadCommand({ Bucket: from.bucket, Key: toKey, UploadId }))
        .catch(() => {});
      throw e;
    }
  };

  return {
    async copy(from, toKey, size) {
      const versionId =
        size !== undefined && size > maxCopy
          ? await copyInParts(from, toKey, size)
          : (
              await s3.send(
                new CopyObjectCommand({
                  Bucket: from.bucket,
                  Key: toKey,
                  CopySource: copySource(from),
                  MetadataDirective: 'COPY',
                  TaggingDirective: 'COPY',
                }),
              )
            ).VersionId;
      if (!versionId) {
        throw new Error(
          `copy to s3://${from.bucket}/${toKey} returned no version id: is the bucket versioned?`,
        );
      }
      return { versionId };
    },
    async findCopy(bucket, key, fate) {
      try {
        const out = await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }));
        const tags = Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key, t.Value]));
        const ours = tags[FATE_TAGS.job] === fate.jobId && tags[FATE_TAGS.outcome] === fate.outcome;
        return ours ? (out.VersionId ?? null) : null;
      } catch (e) {
        if (isMissing(e)) return null;
        throw e;
      }
    },
    async deleteVersion(ref) {
      try {
        await s3.send(
          new DeleteObjectCommand({ Bucket: ref.bucket, Key: ref.key, VersionId: ref.versionId }),
        );
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
    },
  };
}

/** A key in CopySource is URL-encoded, its slashes kept. */
const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/');

function isMissing(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    ['NoSuchKey', 'NoSuchVersion', 'NotFound'].includes(err.name ?? '') ||
    err.$metadata?.httpStatusCode === 404
  );
}
