import { createHash } from 'node:crypto';

/**
 * Job identity: derived from bucket, key and the object's version, so a duplicated S3 notification
 * or a replayed event always maps to the same job. The version is the S3 versionId when the bucket is
 * versioned, else the ETag (an overwrite changes it).
 *
 * @example jobIdFor('b', 'inbound/x.csv', { versionId: null, etag: 'abc' }) // 'j-3f2a…' (24 hex)
 */
export function jobIdFor(
  bucket: string,
  key: string,
  version: { versionId: string | null; etag: string },
): string {
  const v = version.versionId ?? `etag:${version.etag}`;
  return `j-${sha256(`${bucket}\n${key}\n${v}`).slice(0, 24)}`;
}

/** A stable event id for a fact: the same parts always give the same id. */
export function eventIdFor(...parts: readonly (string | number)[]): string {
  return sha256(parts.join('\n')).slice(0, 32);
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
