import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
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
  };
}
