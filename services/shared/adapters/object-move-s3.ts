import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { FATE_TAGS, type ObjectMovePort } from '../source-fate.ts';

/**
 * {@link ObjectMovePort} over S3: CopyObject of the exact source version (metadata and tags copied with
 * it, so a moved object keeps the uploader's options and the fate tags), DeleteObject with VersionId.
 */
export function s3ObjectMove(s3: S3Client): ObjectMovePort {
  return {
    async copy(from, toKey) {
      const out = await s3.send(
        new CopyObjectCommand({
          Bucket: from.bucket,
          Key: toKey,
          CopySource: `${from.bucket}/${encodeKey(from.key)}?versionId=${encodeURIComponent(from.versionId)}`,
          MetadataDirective: 'COPY',
          TaggingDirective: 'COPY',
        }),
      );
      if (!out.VersionId) {
        throw new Error(
          `copy to s3://${from.bucket}/${toKey} returned no version id: is the bucket versioned?`,
        );
      }
      return { versionId: out.VersionId };
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
