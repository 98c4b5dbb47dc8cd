import { GetObjectTaggingCommand, PutObjectTaggingCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectTagsPort, SourceRef } from '../source-fate.ts';

/** {@link ObjectTagsPort} over S3, on the exact object version (VersionId) when there is one. */
export function s3ObjectTags(s3: S3Client): ObjectTagsPort {
  const at = (ref: SourceRef) => ({
    Bucket: ref.bucket,
    Key: ref.key,
    ...(ref.versionId ? { VersionId: ref.versionId } : {}),
  });
  return {
    async get(ref) {
      const out = await s3.send(new GetObjectTaggingCommand(at(ref)));
      return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    },
    async put(ref, tags) {
      await s3.send(
        new PutObjectTaggingCommand({
          ...at(ref),
          Tagging: { TagSet: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) },
        }),
      );
    },
  };
}
