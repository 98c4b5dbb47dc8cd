import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ObjectHead, ObjectStorePort, ObjectVersionRef } from '../ports.ts';

const NOT_FOUND = new Set(['NotFound', 'NoSuchKey', 'NoSuchVersion', 'MethodNotAllowed']);

function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  // HEAD has no body, so S3 answers 404 with no error code; a delete marker's version answers 405. The
  // planner may list inbound/ (the stack grants s3:ListBucket there), so a missing key is 404: a 403 is
  // an access problem, thrown (the message is retried, then dead-lettered with the cause) instead of
  // rejecting every upload as OBJECT_NOT_FOUND.
  return NOT_FOUND.has(err.name ?? '') || status === 404 || status === 405;
}

/** {@link ObjectStorePort} over S3: HEAD, ranged GET pinned to the version, tags. */
export function s3ObjectStore(s3: S3Client, options: { readTags: boolean }): ObjectStorePort {
  const version = (ref: ObjectVersionRef) => (ref.versionId ? { VersionId: ref.versionId } : {});
  return {
    async head(ref): Promise<ObjectHead | null> {
      try {
        const out = await s3.send(
          new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key, ...version(ref) }),
        );
        return {
          size: out.ContentLength ?? 0,
          etag: (out.ETag ?? '').replace(/"/g, ''),
          versionId: out.VersionId && out.VersionId !== 'null' ? out.VersionId : null,
          contentType: out.ContentType ?? null,
          metadata: Object.fromEntries(
            Object.entries(out.Metadata ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
          ),
        };
      } catch (e) {
        if (isNotFound(e)) return null;
        throw e;
      }
    },
    async deletedSince(ref) {
      // The key's current version (no VersionId): a delete marker answers 404 (x-amz-delete-marker).
      try {
        await s3.send(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
        return false;
      } catch (e) {
        if (isNotFound(e)) return true;
        throw e;
      }
    },
    async *read(ref, start, end) {
      if (end <= start) return;
      const out = await s3.send(
        new GetObjectCommand({
          Bucket: ref.bucket,
          Key: ref.key,
          Range: `bytes=${start}-${end - 1}`,
          ...version(ref),
        }),
      );
      const body = out.Body as AsyncIterable<Uint8Array> | undefined;
      if (!body) return;
      yield* body;
    },
    async tags(ref) {
      if (!options.readTags) return {};
      const out = await s3.send(
        new GetObjectTaggingCommand({ Bucket: ref.bucket, Key: ref.key, ...version(ref) }),
      );
      return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    },
  };
}
