import { describe, expect, it } from 'vitest';
import { jobDetail } from '../../../cli/status.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';

const job: JobRecord = {
  jobId: 'j1',
  status: 'FAILED',
  createdAt: '2026-12-01T00:00:00.000Z',
  updatedAt: '2026-12-01T00:01:00.000Z',
  finishedAt: '2026-12-01T00:01:00.000Z',
  bucket: 'data',
  key: 'inbound/a.csv',
  etag: 'e',
  versionId: 'v1',
  sourceUri: 's3://data/inbound/a.csv',
  size: 10,
  totalRows: 2,
};

describe('rowstream status <jobId>: where the source is', () => {
  it('names the moved copy and its version when the source was moved', () => {
    // Prepare
    const moved: JobRecord = {
      ...job,
      movedTo: {
        key: 'failed/a.csv',
        versionId: 'v9',
        outcome: 'FAILED',
        from: { key: 'inbound/a.csv', versionId: 'v1' },
        movedAt: '2026-12-01T00:01:01.000Z',
      },
    };
    // Act
    const lines = jobDetail(moved, Date.parse('2026-12-01T00:02:00Z'));
    // Assess
    expect(lines).toContain('moved to   s3://data/failed/a.csv (version v9, FAILED)');
    expect(jobDetail(job, Date.parse('2026-12-01T00:02:00Z')).some((l) => l.startsWith('moved to'))).toBe(
      false,
    );
  });
});
