import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { ObjectReader } from '../ports.ts';

/**
 * {@link ObjectReader} over S3 GetObject with `Range: bytes=<from>-`. The body is consumed as a
 * pull stream: nothing is read ahead beyond the socket's buffers while the consumer (Kafka) is slow.
 * The object is pinned by versionId, or by ETag (If-Match), so an overwrite mid-job fails the read
 * instead of mixing two versions.
 */
export function s3Reader(s3: S3Client): ObjectReader {
  return {
    async *open(ref, fromByte, signal) {
      let body: AsyncIterable<Uint8Array>;
      try {
        const out = await s3.send(
          new GetObjectCommand({
            Bucket: ref.bucket,
            Key: ref.key,
            Range: `bytes=${fromByte}-`,
            ...(ref.versionId ? { VersionId: ref.versionId } : { IfMatch: `"${ref.etag}"` }),
          }),
          signal ? { abortSignal: signal } : {},
        );
        body = out.Body as AsyncIterable<Uint8Array>;
      } catch (e) {
        // Resuming exactly at the end of the object: nothing left to read.
        const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (err.name === 'InvalidRange' || err.$metadata?.httpStatusCode === 416) return;
        throw e;
      }
      for await (const chunk of body) {
        yield Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
    },
    async vanished(ref) {
      const gone = async (cmd: HeadObjectCommand) => {
        try {
          await s3.send(cmd);
          return false;
        } catch (e) {
          if (isNotFound(e)) return true;
          throw e;
        }
      };
      const version = ref.versionId ? { VersionId: ref.versionId } : { IfMatch: `"${ref.etag}"` };
      if (await gone(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key, ...version }))) return true;
      // A plain DELETE in a versioned bucket: the version is still there, the key's current one is a
      // delete marker (HEAD answers 404).
      return ref.versionId !== null && gone(new HeadObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    },
  };
}

/**
 * HEAD has no body, so S3 answers 404 with no error code; a delete marker's version answers 405. The
 * task role may list inbound/ (stacks/Pipeline.ts), so a missing key answers 404: a 403 is a real access
 * error (a policy, a key) and is thrown, not mistaken for a deleted source.
 */
function isNotFound(e: unknown): boolean {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = err.$metadata?.httpStatusCode;
  return (
    ['NotFound', 'NoSuchKey', 'NoSuchVersion', 'MethodNotAllowed'].includes(err.name ?? '') ||
    status === 404 ||
    status === 405
  );
}
