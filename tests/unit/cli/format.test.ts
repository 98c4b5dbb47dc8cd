import { describe, expect, it } from 'vitest';
import {
  costOf,
  exitCodeFor,
  formatDuration,
  formatEta,
  formatUsd,
  jobDurationSeconds,
  progressLine,
  snapshotOf,
  summaryLines,
} from '../../../cli/format.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';

const baseJob: JobRecord = {
  jobId: 'j-1',
  status: 'RUNNING',
  createdAt: '2026-11-25T10:00:00.000Z',
  updatedAt: '2026-11-25T10:00:10.000Z',
  bucket: 'b',
  key: 'inbound/orders.csv',
  etag: 'e',
  versionId: null,
  sourceUri: 's3://b/inbound/orders.csv',
  size: 2048,
  totalRows: 1000,
  topic: 'orders',
  startedAt: '2026-11-25T10:00:00.000Z',
};

describe('exit codes', () => {
  it('maps each final status to the documented code', () => {
    // Prepare / Act / Assess
    const codes = ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'REJECTED', 'FAILED'].map((s) =>
      exitCodeFor(s as JobRecord['status']),
    );
    expect(codes).toEqual([0, 3, 2, 2]);
  });
});

describe('durations and ETA', () => {
  it('formats short, minute and hour durations', () => {
    expect(formatDuration(3.21)).toBe('3.2s');
    expect(formatDuration(42)).toBe('42s');
    expect(formatDuration(245)).toBe('4m 05s');
    expect(formatDuration(3720)).toBe('1h 02m');
  });
  it('says unknown without a rate and never shows a negative ETA', () => {
    expect(formatEta(null)).toBe('unknown');
    expect(formatEta(-5)).toBe('0.0s');
  });
  it('derives ETA from the rate the CLI observed when the record has none', () => {
    const job = { ...baseJob, checkpoint: cp(400) };
    const snap = snapshotOf(job, 100);
    expect(snap.rowsPerSecond).toBe(100);
    expect(snap.etaSeconds).toBe(6);
  });
  it("prefers the producer's smoothed rate and ETA from the record", () => {
    const job = { ...baseJob, checkpoint: cp(400), rowsPerSecond: 50, etaSeconds: 12 };
    const snap = snapshotOf(job, 100);
    expect(snap.rowsPerSecond).toBe(50);
    expect(snap.etaSeconds).toBe(12);
  });
  it('ends a rejected job at its last write, so its duration stops growing', () => {
    const job = { ...baseJob, status: 'REJECTED' as const, startedAt: undefined };
    expect(jobDurationSeconds(job, Date.parse('2026-11-25T11:00:00Z'))).toBe(10);
  });
});

describe('progress line', () => {
  it('names rows, percent, rate, ETA and rejects', () => {
    const line = progressLine({
      jobId: 'j-1',
      status: 'RUNNING',
      rowsDone: 250_000,
      rowsRejected: 3,
      totalRows: 1_000_000,
      rowsPerSecond: 50_000,
      etaSeconds: 15,
    });
    expect(line).toBe('j-1 RUNNING  250,000/1,000,000 rows  (25.0%)  50,000 rows/s  ETA 15s  3 rejected');
  });
});

describe('summary', () => {
  it('names delivered and rejected rows, the rejects object, offsets and the cost source', () => {
    const job: JobRecord = {
      ...baseJob,
      status: 'COMPLETED_WITH_REJECTS',
      finishedAt: '2026-11-25T10:00:20.000Z',
      rowsDelivered: 997,
      rowsRejected: 3,
      rejectsUri: 's3://b/rejected/orders.csv',
      partitions: [{ partition: 0, firstOffset: '10', lastOffset: '1006' }],
    };
    const text = summaryLines({ job, durationSeconds: 20, cost: costOf(job, 20) }).join('\n');
    expect(text).toContain('delivered  997 rows of 1,000');
    expect(text).toContain('rejected   3 rows  -> s3://b/rejected/orders.csv');
    expect(text).toContain('topic orders  offsets p0: 10..1006');
    expect(text).toContain('(50 rows/s)');
    expect(text).toMatch(/cost {7}\$\S+ \(local estimate\)/);
  });
  it('prints the reason and position of a rejected job and no delivery lines', () => {
    const job: JobRecord = {
      ...baseJob,
      status: 'REJECTED',
      rejection: { reason: 'EMPTY_OBJECT', message: 'the object is empty', position: { byte: 0 } },
    };
    const text = summaryLines({ job, durationSeconds: 1, cost: costOf(job, 1) }).join('\n');
    expect(text).toContain('reason     EMPTY_OBJECT: the object is empty');
    expect(text).toContain('position   byte 0');
    expect(text).not.toContain('delivered');
  });
  it("uses the cost tracker's figure when the record has one", () => {
    expect(costOf({ ...baseJob, estimatedCostUsd: 0.5 }, 10)).toEqual({ usd: 0.5, source: 'cost-tracker' });
    expect(costOf({ ...baseJob, estimatedCostUsd: 0.5, finalCostUsd: 0.75 }, 10).source).toBe(
      'cost-tracker (final)',
    );
    expect(formatUsd(0.00012)).toBe('$0.00012');
    expect(formatUsd(12.5)).toBe('$12.50');
  });
});

function cp(rowsDone: number) {
  return {
    rowsDone,
    rowsDelivered: rowsDone,
    rowsRejected: 0,
    nextByteOffset: 0,
    partitions: [],
    updatedAt: '2026-11-25T10:00:05.000Z',
  };
}
