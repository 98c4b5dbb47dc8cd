import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { s3ObjectStore } from '../../services/planner/adapters/object-store-s3.ts';
import { s3Reader } from '../../services/producer/adapters/object-reader-s3.ts';

/**
 * The producer's task role may list inbound/ (tests/infra/iam.test.ts checks the grant), so S3 answers
 * 404 for a source deleted under a job; a 403 then means an access problem and must not be read as
 * "the object vanished" (which fails the job as if the uploader had deleted it).
 */
const failing = (name: string, httpStatusCode: number) =>
  ({
    send: async () => {
      throw Object.assign(new Error(name), { name, $metadata: { httpStatusCode } });
    },
  }) as unknown as S3Client;

const ref = { bucket: 'b', key: 'inbound/a.csv', etag: 'e', versionId: 'v1' };

describe('producer: a missing source is 404, an access error is not a vanished object', () => {
  it('reads 404 (HEAD has no error code) as vanished', async () => {
    await expect(s3Reader(failing('NotFound', 404)).vanished!(ref)).resolves.toBe(true);
  });

  it('reads 405 (a delete marker version) as vanished', async () => {
    await expect(s3Reader(failing('MethodNotAllowed', 405)).vanished!(ref)).resolves.toBe(true);
  });

  it('throws a 403 instead of calling the object vanished', async () => {
    await expect(s3Reader(failing('AccessDenied', 403)).vanished!(ref)).rejects.toMatchObject({
      name: 'AccessDenied',
    });
  });
});

describe('planner: the same reading (it may list inbound/ too)', () => {
  const store = (name: string, status: number) => s3ObjectStore(failing(name, status), { readTags: false });
  it('reads 404 and 405 as a vanished object (null head)', async () => {
    await expect(store('NotFound', 404).head(ref)).resolves.toBeNull();
    await expect(store('MethodNotAllowed', 405).head(ref)).resolves.toBeNull();
  });

  it('throws a 403: an access problem is retried, never an OBJECT_NOT_FOUND rejection', async () => {
    await expect(store('AccessDenied', 403).head(ref)).rejects.toMatchObject({ name: 'AccessDenied' });
  });
});
