import { describe, expect, it } from 'vitest';
import { EnvironmentError } from '../../../cli/context.ts';
import { bareEtag, type DropDeps, dropMetadata, runDrop } from '../../../cli/drop.ts';
import type { JobsView } from '../../../cli/jobs.ts';
import { lineView, type ProgressView } from '../../../cli/progress.ts';
import { jobIdFor } from '../../../events/ids.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';

/** A clock that advances only when the code under test sleeps. */
function fakeDeps(records: (JobRecord | null)[], opts: { etag?: string; versionId?: string | null } = {}) {
  let t = 1_000_000;
  let polls = 0;
  const printed: string[] = [];
  const updates: string[] = [];
  const uploads: { key: string; metadata: Record<string, string> }[] = [];
  const asked: string[] = [];
  const jobs: JobsView = {
    async get(jobId) {
      asked.push(jobId);
      const r = records[Math.min(polls, records.length - 1)] ?? null;
      polls++;
      return r;
    },
    async list() {
      return [];
    },
  };
  const view: ProgressView = {
    update: (s) => updates.push(`${s.status} ${s.rowsDone}`),
    stop: () => {},
  };
  const deps: DropDeps = {
    upload: async (input) => {
      uploads.push({ key: input.key, metadata: input.metadata });
      return { etag: opts.etag ?? '"abc"', versionId: opts.versionId ?? null };
    },
    jobs,
    view,
    print: (l) => printed.push(l),
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
  };
  return { deps, printed, updates, uploads, asked };
}

const input = {
  file: '/tmp/orders.csv',
  size: 100,
  bucket: 'bucket',
  key: 'inbound/orders.csv',
  options: { topic: 'orders', format: 'csv' as const, failOnBadRow: true },
  wait: true,
  pollMs: 1000,
};

function job(status: JobRecord['status'], extra: Partial<JobRecord> = {}): JobRecord {
  return {
    jobId: jobIdFor('bucket', 'inbound/orders.csv', { versionId: null, etag: 'abc' }),
    status,
    createdAt: '2026-11-25T10:00:00.000Z',
    updatedAt: '2026-11-25T10:00:01.000Z',
    bucket: 'bucket',
    key: 'inbound/orders.csv',
    etag: 'abc',
    versionId: null,
    sourceUri: 's3://bucket/inbound/orders.csv',
    size: 100,
    totalRows: 10,
    topic: 'orders',
    ...extra,
  };
}

describe('runDrop', () => {
  it('uploads with the planner metadata and follows the job the planner will derive', async () => {
    // Prepare
    const { deps, uploads, asked } = fakeDeps([
      null,
      job('PLANNED'),
      job('COMPLETED', { rowsDelivered: 10 }),
    ]);
    // Act
    const result = await runDrop(deps, input);
    // Assess
    expect(uploads[0]?.metadata).toEqual({
      'rowstream-topic': 'orders',
      'rowstream-format': 'csv',
      'rowstream-fail-on-bad-row': 'true',
    });
    expect(result.jobId).toBe(jobIdFor('bucket', 'inbound/orders.csv', { versionId: null, etag: 'abc' }));
    expect(new Set(asked)).toEqual(new Set([result.jobId]));
    expect(result.exitCode).toBe(0);
  });

  it('uses the version id when the bucket is versioned', async () => {
    const { deps, asked } = fakeDeps([null], { versionId: 'v1' });
    await runDrop(deps, { ...input, wait: false });
    expect(asked).toEqual([]);
    const { deps: d2 } = fakeDeps([job('COMPLETED')], { versionId: 'v1' });
    const r = await runDrop(d2, { ...input, wait: false });
    expect(r.jobId).toBe(jobIdFor('bucket', 'inbound/orders.csv', { versionId: 'v1', etag: 'abc' }));
  });

  it('exits 3 with rejects and names the rejects object', async () => {
    const { deps, printed } = fakeDeps([
      job('COMPLETED_WITH_REJECTS', {
        rowsDelivered: 8,
        rowsRejected: 2,
        rejectsUri: 's3://bucket/rejected/x',
      }),
    ]);
    const r = await runDrop(deps, input);
    expect(r.exitCode).toBe(3);
    expect(printed.join('\n')).toContain('s3://bucket/rejected/x');
  });

  it('exits 2 with the reason and position for a rejected file', async () => {
    const { deps, printed } = fakeDeps([
      job('REJECTED', { rejection: { reason: 'EMPTY_OBJECT', message: 'empty', position: { byte: 0 } } }),
    ]);
    const r = await runDrop(deps, input);
    expect(r.exitCode).toBe(2);
    expect(printed.at(-1)).toBe('rejected: EMPTY_OBJECT: empty (byte 0)');
  });

  it('says the planner is not running when no job record appears', async () => {
    const { deps } = fakeDeps([null]);
    await expect(runDrop(deps, { ...input, plannerTimeoutMs: 5000 })).rejects.toThrow(EnvironmentError);
    await expect(runDrop(fakeDeps([null]).deps, { ...input, plannerTimeoutMs: 5000 })).rejects.toThrow(
      /planner running/,
    );
  });

  it('says no producer is running when the job stays planned', async () => {
    const { deps } = fakeDeps([job('PLANNED')]);
    await expect(runDrop(deps, { ...input, producerTimeoutMs: 3000 })).rejects.toThrow(/producer running/);
  });

  it('shows progress as the checkpoint moves', async () => {
    const cp = (n: number) => ({
      rowsDone: n,
      rowsDelivered: n,
      rowsRejected: 0,
      nextByteOffset: 0,
      partitions: [],
      updatedAt: 'x',
    });
    const { deps, updates } = fakeDeps([
      job('RUNNING', { checkpoint: cp(2) }),
      job('RUNNING', { checkpoint: cp(6) }),
      job('COMPLETED', { checkpoint: cp(10) }),
    ]);
    await runDrop(deps, input);
    expect(updates).toEqual(['RUNNING 2', 'RUNNING 6', 'COMPLETED 10']);
  });
});

describe('helpers', () => {
  it('strips the quotes S3 puts around ETags', () => {
    expect(bareEtag('"abc-2"')).toBe('abc-2');
  });
  it('sends no metadata for options left to the planner', () => {
    expect(dropMetadata({})).toEqual({});
  });
  it('sends the record format as rowstream-record-headers', () => {
    expect(dropMetadata({ recordHeaders: 'batch', format: 'csv' })).toEqual({
      'rowstream-format': 'csv',
      'rowstream-record-headers': 'batch',
    });
  });
  it('prints a plain line at most every interval, and on every status change', () => {
    let t = 0;
    const lines: string[] = [];
    const view = lineView((l) => lines.push(l), { everyMs: 5000, now: () => t });
    const snap = {
      jobId: 'j',
      rowsDone: 1,
      rowsRejected: 0,
      totalRows: 10,
      rowsPerSecond: 1,
      etaSeconds: 9,
    } as const;
    view.update({ ...snap, status: 'RUNNING' });
    t = 1000;
    view.update({ ...snap, status: 'RUNNING' });
    t = 2000;
    view.update({ ...snap, status: 'COMPLETED' });
    t = 8000;
    view.update({ ...snap, status: 'COMPLETED' });
    expect(lines.length).toBe(3);
  });
});
