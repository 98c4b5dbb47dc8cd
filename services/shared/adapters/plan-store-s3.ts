import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { PlanStorePort } from '../plan.ts';

const NOT_FOUND = new Set(['NoSuchKey', 'NotFound']);

/** {@link PlanStorePort} over S3 (the plan objects under plans/ in the data bucket). */
export function s3PlanStore(s3: S3Client): PlanStorePort {
  return {
    async put(bucket, key, body) {
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }),
      );
    },
    async get(bucket, key) {
      try {
        const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        return out.Body ? await out.Body.transformToByteArray() : new Uint8Array(0);
      } catch (e) {
        const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
        // The stack grants s3:ListBucket on plans/, so a missing plan is 404; a 403 is an access
        // problem and is thrown with its cause.
        if (NOT_FOUND.has(err.name ?? '') || err.$metadata?.httpStatusCode === 404) return null;
        throw e;
      }
    },
  };
}
