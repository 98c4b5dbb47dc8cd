import { ListObjectsV2Command, ListObjectVersionsCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectEntry, ObjectsPort } from '../ports.ts';

const etagOf = (raw: string | undefined) => (raw ?? '').replace(/"/g, '');

/**
 * {@link ObjectsPort} over ListObjectsV2 / ListObjectVersions. Yields one page at a time and keeps
 * nothing between pages, so a prefix with millions of objects costs the memory of one page.
 */
export function s3Objects(client: S3Client, bucket: string): ObjectsPort {
  return {
    async *pages(prefix) {
      let token: string | undefined;
      do {
        const out = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            ContinuationToken: token,
            MaxKeys: 1000,
          }),
        );
        yield (out.Contents ?? []).map(
          (o): ObjectEntry => ({
            key: o.Key ?? '',
            size: o.Size ?? 0,
            lastModified: o.LastModified ?? new Date(0),
            etag: etagOf(o.ETag),
            versionId: null,
          }),
        );
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    },
    async *latestVersionPages(prefix) {
      let keyMarker: string | undefined;
      let versionIdMarker: string | undefined;
      do {
        const out = await client.send(
          new ListObjectVersionsCommand({
            Bucket: bucket,
            Prefix: prefix,
            KeyMarker: keyMarker,
            VersionIdMarker: versionIdMarker,
            MaxKeys: 1000,
          }),
        );
        yield (out.Versions ?? [])
          .filter((v) => v.IsLatest)
          .map(
            (v): ObjectEntry => ({
              key: v.Key ?? '',
              size: v.Size ?? 0,
              lastModified: v.LastModified ?? new Date(0),
              etag: etagOf(v.ETag),
              // S3 reports "null" for objects written while versioning was off; the planner then keys
              // the job by ETag, and so must we.
              versionId: v.VersionId && v.VersionId !== 'null' ? v.VersionId : null,
            }),
          );
        if (out.IsTruncated) {
          keyMarker = out.NextKeyMarker;
          versionIdMarker = out.NextVersionIdMarker;
        } else {
          keyMarker = undefined;
        }
      } while (keyMarker);
    },
  };
}
