import { createReadStream } from 'node:fs';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { UploadResult } from './drop.ts';

/**
 * Uploads a file (multipart above 8 MiB, via lib-storage) with the planner's options as user metadata,
 * and returns the version the planner will see. The ETag and version come from the upload's own
 * response; HEAD is only the fallback, because a HEAD of the key could see someone else's later upload.
 */
export function s3Uploader(s3: S3Client, bucket: string) {
  return async (input: {
    file: string;
    key: string;
    metadata: Record<string, string>;
  }): Promise<UploadResult> => {
    const upload = new Upload({
      client: s3,
      params: {
        Bucket: bucket,
        Key: input.key,
        Body: createReadStream(input.file),
        ContentType: 'text/csv',
        Metadata: input.metadata,
      },
      // Parts uploaded at once: 4 keeps the disk read and the HTTP sends overlapped (2 left the
      // connection idle between parts).
      queueSize: 4,
      partSize: 8 * 1024 * 1024,
    });
    const out = (await upload.done()) as { ETag?: string; VersionId?: string };
    if (out.ETag) return { etag: out.ETag, versionId: out.VersionId ?? null };
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: input.key }));
    if (!head.ETag) throw new Error(`s3://${bucket}/${input.key} has no ETag after upload`);
    return { etag: head.ETag, versionId: head.VersionId ?? null };
  };
}
