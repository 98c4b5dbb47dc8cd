import { describe, expect, it } from 'vitest';
import type { MovedSource } from '../../services/shared/jobs.ts';
import type { Log, LogAttributes } from '../../services/shared/logger.ts';
import {
  type FateJob,
  fateDestination,
  type MoveRecordPort,
  type ObjectMovePort,
  type ObjectTagsPort,
  type SourceMoveDeps,
  settleSourceFate,
} from '../../services/shared/source-fate.ts';

interface Version {
  readonly versionId: string;
  readonly body: string;
  tags: Record<string, string>;
}

/** A versioned bucket: versions per key (the last is current), tags per version; counts copies. */
function fakeBucket() {
  const keys = new Map<string, Version[]>();
  let next = 0;
  const calls = { copies: 0, deletes: 0 };
  const fail: { copy?: Error; delete?: Error } = {};
  const version = (key: string, versionId: string | null) =>
    (keys.get(key) ?? []).find((v) => v.versionId === versionId);
  const put = (key: string, body: string, tags: Record<string, string> = {}) => {
    const v = { versionId: `v${++next}`, body, tags: { ...tags } };
    keys.set(key, [...(keys.get(key) ?? []), v]);
    return v.versionId;
  };
  const tags: ObjectTagsPort = {
    async get(ref) {
      const v = version(ref.key, ref.versionId);
      if (!v) throw Object.assign(new Error('NoSuchVersion'), { name: 'NoSuchVersion' });
      return { ...v.tags };
    },
    async put(ref, t) {
      const v = version(ref.key, ref.versionId);
      if (!v) throw Object.assign(new Error('NoSuchVersion'), { name: 'NoSuchVersion' });
      v.tags = { ...t };
    },
  };
  const objects: ObjectMovePort = {
    async copy(from, toKey) {
      if (fail.copy) throw fail.copy;
      const v = version(from.key, from.versionId);
      if (!v) throw Object.assign(new Error('NoSuchVersion'), { name: 'NoSuchVersion' });
      calls.copies++;
      return { versionId: put(toKey, v.body, v.tags) };
    },
    async findCopy(_bucket, key, fate) {
      const current = (keys.get(key) ?? []).at(-1);
      const ours =
        current?.tags['rowstream-job'] === fate.jobId && current.tags['rowstream-outcome'] === fate.outcome;
      return ours ? current.versionId : null;
    },
    async deleteVersion(ref) {
      if (fail.delete) throw fail.delete;
      calls.deletes++;
      keys.set(
        ref.key,
        (keys.get(ref.key) ?? []).filter((v) => v.versionId !== ref.versionId),
      );
    },
  };
  return { keys, put, version, tags, objects, calls, fail };
}

/** The job record's movedTo with the adapter's compare-and-set (and an optional failure). */
function fakeRecord(status: 'COMPLETED' | 'FAILED' | 'REJECTED' | 'RUNNING' = 'COMPLETED') {
  const state: { movedTo?: MovedSource; status: string; fail?: Error } = { status };
  const records: MoveRecordPort = {
    async recordMove(_jobId, moved, expected) {
      if (state.fail) throw state.fail;
      if (state.status === 'RUNNING') return false;
      if ((state.movedTo?.versionId ?? null) !== (expected?.versionId ?? null)) return false;
      state.movedTo = moved;
      return true;
    },
  };
  return { state, records };
}

function memoryLog() {
  const warnings: { message: string; attrs: LogAttributes }[] = [];
  const log: Log = {
    debug() {},
    info() {},
    warn(message, attrs) {
      warnings.push({ message, attrs: attrs ?? {} });
    },
    error() {},
    child() {
      return log;
    },
  };
  return { log, warnings };
}

const BODY = 'id,name\n1,a\n';

function setup(status: 'COMPLETED' | 'FAILED' | 'REJECTED' | 'RUNNING' = 'COMPLETED') {
  const bucket = fakeBucket();
  const versionId = bucket.put('inbound/day/a.csv', BODY, { team: 'ingest' });
  const record = fakeRecord(status);
  const move: SourceMoveDeps = {
    objects: bucket.objects,
    records: record.records,
    now: () => new Date('2026-12-01T00:00:00Z'),
  };
  const job = (): FateJob => ({
    jobId: 'j1',
    bucket: 'b',
    key: 'inbound/day/a.csv',
    versionId,
    movedTo: record.state.movedTo,
  });
  return { bucket, versionId, record, move, job, ...memoryLog() };
}

describe('source fate: moving the object', () => {
  it('maps outcomes to processed/ and failed/, keeping the key after inbound/', () => {
    expect(fateDestination('inbound/day/a.csv', 'COMPLETED')).toBe('processed/day/a.csv');
    expect(fateDestination('inbound/day/a.csv', 'FAILED')).toBe('failed/day/a.csv');
    expect(fateDestination('inbound/day/a.csv', 'REJECTED')).toBe('failed/day/a.csv');
    expect(fateDestination('drop/a.csv', 'COMPLETED', 'drop/')).toBe('processed/a.csv');
  });

  it('a completed job: copied to processed/ with its tags, recorded, then only its version deleted', async () => {
    // Prepare
    const t = setup();
    const other = t.bucket.put('inbound/day/a.csv', 'id\n9\n'); // a newer upload of the key: its own job
    // Act
    const result = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    // Assess
    expect(result.kind).toBe('moved');
    const copy = t.bucket.keys.get('processed/day/a.csv')!;
    expect(copy).toHaveLength(1);
    expect(copy[0]!.body).toBe(BODY);
    expect(copy[0]!.tags).toEqual({
      team: 'ingest',
      'rowstream-job': 'j1',
      'rowstream-outcome': 'COMPLETED',
    });
    expect(t.record.state.movedTo).toEqual({
      key: 'processed/day/a.csv',
      versionId: copy[0]!.versionId,
      outcome: 'COMPLETED',
      from: { key: 'inbound/day/a.csv', versionId: t.versionId },
      movedAt: '2026-12-01T00:00:00.000Z',
    });
    expect(t.bucket.keys.get('inbound/day/a.csv')!.map((v) => v.versionId)).toEqual([other]);
    expect(t.warnings).toEqual([]);
  });

  it.each(['FAILED', 'REJECTED'] as const)('a %s job goes to failed/', async (outcome) => {
    // Prepare
    const t = setup(outcome);
    // Act
    await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), outcome, t.log);
    // Assess
    expect(t.record.state.movedTo?.key).toBe('failed/day/a.csv');
    expect(t.bucket.keys.get('failed/day/a.csv')![0]!.tags['rowstream-outcome']).toBe(outcome);
    expect(t.bucket.keys.get('inbound/day/a.csv')).toEqual([]);
  });

  it('tag mode (no move dependencies) only tags', async () => {
    // Prepare
    const t = setup();
    // Act
    const result = await settleSourceFate({ tags: t.bucket.tags, move: null }, t.job(), 'COMPLETED', t.log);
    // Assess
    expect(result).toEqual({ kind: 'tagged', tags: 'tagged' });
    expect(t.bucket.version('inbound/day/a.csv', t.versionId)?.tags['rowstream-outcome']).toBe('COMPLETED');
    expect(t.bucket.keys.has('processed/day/a.csv')).toBe(false);
  });

  it('a crash between copy and record: the source stays readable, the next run adopts the copy', async () => {
    // Prepare: the record write fails once (the process "dies" after the copy)
    const t = setup();
    t.record.state.fail = new Error('ProvisionedThroughputExceededException');
    // Act
    const first = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    const between = {
      movedTo: t.record.state.movedTo,
      source: t.bucket.version('inbound/day/a.csv', t.versionId)?.body,
    };
    t.record.state.fail = undefined;
    const second = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    // Assess
    expect(first.kind).toBe('not-moved');
    expect(between).toEqual({ movedTo: undefined, source: BODY });
    expect(second.kind).toBe('moved');
    expect(t.bucket.calls.copies).toBe(1);
    expect(t.bucket.keys.get('processed/day/a.csv')).toHaveLength(1);
    expect(t.record.state.movedTo?.versionId).toBe(t.bucket.keys.get('processed/day/a.csv')![0]!.versionId);
    expect(t.bucket.keys.get('inbound/day/a.csv')).toEqual([]);
    expect(t.warnings.map((w) => w.attrs.jobId)).toEqual(['j1']);
  });

  it('a crash between record and delete: the record names the copy, the next run only deletes', async () => {
    // Prepare
    const t = setup();
    t.bucket.fail.delete = new Error('SlowDown');
    // Act
    const first = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    const recorded = t.record.state.movedTo;
    t.bucket.fail.delete = undefined;
    const second = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    const third = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    // Assess
    expect(first.kind).toBe('moved');
    expect(recorded?.key).toBe('processed/day/a.csv');
    expect(second).toEqual({ kind: 'already-moved', to: recorded });
    expect(third).toEqual({ kind: 'already-moved', to: recorded });
    expect(t.bucket.calls.copies).toBe(1);
    expect(t.bucket.keys.get('inbound/day/a.csv')).toEqual([]);
    expect(t.bucket.keys.get('processed/day/a.csv')).toHaveLength(1);
  });

  it('a job resumed meanwhile keeps its source: the record refuses the move, nothing is deleted', async () => {
    // Prepare
    const t = setup('RUNNING');
    // Act
    const result = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'FAILED', t.log);
    // Assess
    expect(result).toEqual({ kind: 'not-moved', why: 'record changed' });
    expect(t.bucket.version('inbound/day/a.csv', t.versionId)?.body).toBe(BODY);
    expect(t.record.state.movedTo).toBeUndefined();
  });

  it('a failed job resumed from failed/ that completes moves on to processed/ and leaves failed/ empty', async () => {
    // Prepare: failed first
    const t = setup('FAILED');
    await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'FAILED', t.log);
    const failedCopy = t.record.state.movedTo!;
    t.record.state.status = 'COMPLETED';
    // Act
    const result = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    // Assess
    expect(result.kind).toBe('moved');
    expect(t.record.state.movedTo).toMatchObject({
      key: 'processed/day/a.csv',
      outcome: 'COMPLETED',
      from: { key: 'failed/day/a.csv', versionId: failedCopy.versionId },
    });
    expect(t.bucket.keys.get('failed/day/a.csv')).toEqual([]);
    expect(t.bucket.keys.get('processed/day/a.csv')![0]!.tags).toEqual({
      team: 'ingest',
      'rowstream-job': 'j1',
      'rowstream-outcome': 'COMPLETED',
    });
  });

  it('an unversioned source is tagged, not moved, and says why', async () => {
    // Prepare
    const t = setup();
    // Act
    const result = await settleSourceFate(
      { tags: null, move: t.move },
      { ...t.job(), versionId: null },
      'COMPLETED',
      t.log,
    );
    // Assess
    expect(result).toEqual({ kind: 'not-moved', why: 'unversioned' });
    expect(t.warnings[0]?.message).toMatch(/versioned bucket/);
    expect(t.bucket.calls.copies).toBe(0);
  });

  it('a failing copy leaves everything where the record says and names the cause', async () => {
    // Prepare
    const t = setup();
    t.bucket.fail.copy = new Error('AccessDenied: s3:PutObject on processed/day/a.csv');
    // Act
    const result = await settleSourceFate({ tags: t.bucket.tags, move: t.move }, t.job(), 'COMPLETED', t.log);
    // Assess
    expect(result.kind).toBe('not-moved');
    expect(t.warnings[0]).toMatchObject({
      message: expect.stringMatching(/could not move/),
      attrs: { jobId: 'j1', error: expect.stringMatching(/AccessDenied/) },
    });
    expect(t.bucket.version('inbound/day/a.csv', t.versionId)?.body).toBe(BODY);
  });
});
