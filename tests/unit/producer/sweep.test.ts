import { describe, expect, it } from 'vitest';
import { JobStartedV1 } from '../../../events/catalog.ts';
import { jobStartedFromRecord } from '../../../services/producer/core.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';

const record: JobRecord = {
  jobId: 'j-0123456789abcdef01234567',
  status: 'RUNNING',
  createdAt: '2026-11-25T12:00:00.000Z',
  updatedAt: '2026-11-25T12:05:00.000Z',
  bucket: 'b',
  key: 'inbound/a.csv',
  etag: 'e1',
  versionId: 'v1',
  sourceUri: 's3://b/inbound/a.csv',
  size: 100,
  header: ['id', 'v'],
  dataOffset: 5,
  totalRows: 9,
  topic: 'rows',
  options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: false },
  leaseOwner: 'dead-producer',
  leaseExpiresAt: 0,
};

describe('jobStartedFromRecord (the sweeper takes over a job whose lease expired)', () => {
  it('rebuilds a valid JobStarted.v1 from the job record', () => {
    // Act
    const job = jobStartedFromRecord(record, new Date('2026-11-25T12:10:00Z'));
    // Assess
    expect(JobStartedV1.safeParse(job).success).toBe(true);
    expect(job).toMatchObject({
      jobId: record.jobId,
      versionId: 'v1',
      header: ['id', 'v'],
      dataOffset: 5,
      totalRows: 9,
      topic: 'rows',
      occurredAt: '2026-11-25T12:10:00.000Z',
    });
  });

  it.each(['header', 'dataOffset', 'topic', 'options', 'etag'] as const)(
    'gives null when the record lacks %s (only a redelivered JobStarted can revive it)',
    (field) => {
      const partial = { ...record, [field]: field === 'etag' ? null : undefined } as JobRecord;
      expect(jobStartedFromRecord(partial, new Date())).toBeNull();
    },
  );
});
