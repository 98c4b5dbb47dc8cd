import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { BusEntry } from '../../../events/bus.ts';
import { JobStartedV1 } from '../../../events/catalog.ts';
import type { PlannerDeps } from '../../../services/planner/core.ts';
import { classifyKey, planObject } from '../../../services/planner/core.ts';
import { MAX_HEADER_JSON_BYTES } from '../../../services/planner/header.ts';
import type { OptionDefaults } from '../../../services/planner/options.ts';
import type { ObjectHead } from '../../../services/planner/ports.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';
import type { Log } from '../../../services/shared/logger.ts';
import { BufferedMetrics, MemorySink } from '../../../services/shared/metrics.ts';
import { decodePlan } from '../../../services/shared/plan.ts';
import { parseTopicPolicy } from '../../../services/shared/topics.ts';

interface Obj {
  body: Buffer;
  metadata?: Record<string, string>;
  /** The key's current version is a delete marker (a plain DELETE in a versioned bucket). */
  deleted?: boolean;
}

function logTo(line: (m: string, a?: Record<string, unknown>) => void): Log {
  return { debug: line, info: line, warn: line, error: line, child: () => logTo(line) };
}

function setup(defaults: Partial<OptionDefaults> = {}) {
  const objects = new Map<string, Obj>();
  const jobs = new Map<string, JobRecord>();
  const published: BusEntry[] = [];
  const logs: string[] = [];
  /** What the planner stored in the counts cache (never read back here). */
  const cached: unknown[] = [];
  const log = (m: string, a?: Record<string, unknown>) => void logs.push(JSON.stringify([m, a ?? {}]));
  /** Plan objects written (bucket/key -> bytes) and every write in order, with the job writes. */
  const plans = new Map<string, Buffer>();
  const writes: string[] = [];
  const deps: PlannerDeps = {
    store: {
      async head(ref): Promise<ObjectHead | null> {
        const o = objects.get(ref.key);
        if (!o) return null;
        return {
          size: o.body.length,
          etag: 'e1',
          versionId: 'v1',
          contentType: null,
          metadata: o.metadata ?? {},
        };
      },
      async deletedSince(ref) {
        return objects.get(ref.key)?.deleted === true;
      },
      async *read(ref, start, end) {
        yield objects.get(ref.key)!.body.subarray(start, end);
      },
      async tags() {
        return {};
      },
    },
    cache: { get: async () => null, put: async (key, value) => void cached.push([key, value]) },
    jobs: {
      get: async (id) => jobs.get(id) ?? null,
      create: async (r) => {
        writes.push(`job ${r.jobId}`);
        if (jobs.has(r.jobId)) return false;
        jobs.set(r.jobId, structuredClone(r));
        return true;
      },
      markStartedPublished: async () => {},
    },
    plans: {
      put: async (bucket, key, body) => {
        writes.push(`plan ${bucket}/${key}`);
        plans.set(`${bucket}/${key}`, Buffer.from(body));
      },
      get: async (bucket, key) => plans.get(`${bucket}/${key}`) ?? null,
    },
    bus: {
      async putEntries(entries) {
        published.push(...entries);
        return entries.map((_, i) => ({ eventId: `e${i}` }));
      },
    },
    metrics: new BufferedMetrics({
      sink: new MemorySink(),
      defaultDimensions: { Service: 'planner', Stage: 't' },
    }),
    log: logTo(log),
    settings: {
      inboundPrefix: 'inbound/',
      partSize: 1 << 20,
      concurrency: 2,
      defaults: {
        topic: 'rowstream.rows',
        format: 'json',
        keyColumn: null,
        failOnBadRow: false,
        delimiter: ',',
        ...defaults,
      },
    },
  };
  const plan = async (
    key: string,
    body: string | Buffer,
    metadata?: Record<string, string>,
    deleted = false,
  ) => {
    objects.set(key, { body: Buffer.isBuffer(body) ? body : Buffer.from(body), metadata, deleted });
    return planObject(deps, {
      bucket: 'b',
      key,
      eventName: 'ObjectCreated:Put',
      size: null,
      etag: 'e1',
      versionId: 'v1',
      sequencer: null,
    });
  };
  const detail = (type: string) =>
    published
      .filter((e) => e.detailType === type)
      .map((e) => JSON.parse(e.detail) as Record<string, unknown>);
  return { plan, detail, jobs, logs, published, cached, plans, writes, deps };
}

describe('every object under inbound/ gets an outcome', () => {
  it('classifies keys: .csv read, compressed / other extensions / folder markers refused, outside ignored', () => {
    expect(classifyKey('inbound/a.CSV', 'inbound/')).toEqual({ kind: 'csv' });
    expect(classifyKey('elsewhere/a.csv', 'inbound/')).toEqual({ kind: 'outside' });
    for (const key of ['inbound/a.csv.gz', 'inbound/a.csv.zst', 'inbound/a.zip', 'inbound/a.csv.bz2']) {
      expect(classifyKey(key, 'inbound/')).toMatchObject({ kind: 'refused', message: /compressed/ });
    }
    expect(classifyKey('inbound/dir/', 'inbound/')).toMatchObject({
      kind: 'refused',
      message: /folder marker/,
    });
    expect(classifyKey('inbound/a.txt', 'inbound/')).toMatchObject({ kind: 'refused', message: /\.csv/ });
    expect(classifyKey('inbound/csv', 'inbound/')).toMatchObject({ kind: 'refused' });
  });

  it('a refused key becomes a REJECTED job and a JobRejected NOT_CSV with the reason', async () => {
    // Prepare
    const t = setup();
    // Act
    const outcomes = [
      await t.plan('inbound/x.csv.zst', 'h\n1\n'),
      await t.plan('inbound/folder/', ''),
      await t.plan('inbound/x.tsv', 'h\n1\n'),
    ];
    // Assess
    expect(outcomes.map((o) => o.kind)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(t.detail('JobRejected.v1').map((d) => [d.reason, d.key])).toEqual([
      ['NOT_CSV', 'inbound/x.csv.zst'],
      ['NOT_CSV', 'inbound/folder/'],
      ['NOT_CSV', 'inbound/x.tsv'],
    ]);
    expect([...t.jobs.values()].every((j) => j.status === 'REJECTED')).toBe(true);
  });

  it('a version whose key now carries a delete marker is rejected as vanished, not streamed', async () => {
    // Prepare
    const t = setup();
    // Act
    const outcome = await t.plan('inbound/gone.csv', 'h\n1\n', undefined, true);
    // Assess
    expect(outcome).toMatchObject({ kind: 'rejected', reason: 'OBJECT_NOT_FOUND' });
    expect(t.detail('JobStarted.v1')).toEqual([]);
    expect(t.detail('JobRejected.v1')[0]?.message).toMatch(/no longer exists/);
  });
});

describe('topics', () => {
  it('an override outside the allow-list is BAD_OPTIONS naming the option; the allow-list passes', async () => {
    // Prepare
    const t = setup({ allowedTopics: parseTopicPolicy('orders, refunds', 'rowstream.rows') });
    // Act
    await t.plan('inbound/a.csv', 'id\n1\n', { 'rowstream-topic': 'payments' });
    await t.plan('inbound/b.csv', 'id\n1\n', { 'rowstream-topic': 'refunds' });
    await t.plan('inbound/c.csv', 'id\n1\n');
    // Assess
    const rejected = t.detail('JobRejected.v1');
    expect(rejected.map((r) => r.reason)).toEqual(['BAD_OPTIONS']);
    expect(rejected[0]?.message).toMatch(/rowstream-topic "payments" is not allowed/);
    expect(t.detail('JobStarted.v1').map((d) => d.topic)).toEqual(['refunds', 'rowstream.rows']);
  });

  it('with no allow-list only the default topic; Kafka internal topics never, not even with *', async () => {
    // Prepare
    const only = setup();
    const any = setup({ allowedTopics: parseTopicPolicy('*', 'rowstream.rows') });
    // Act
    await only.plan('inbound/a.csv', 'id\n1\n', { 'rowstream-topic': 'other' });
    await any.plan('inbound/a.csv', 'id\n1\n', { 'rowstream-topic': 'other' });
    await any.plan('inbound/b.csv', 'id\n1\n', { 'rowstream-topic': '__consumer_offsets' });
    await any.plan('inbound/c.csv', 'id\n1\n', { 'rowstream-topic': '__transaction_state' });
    // Assess
    expect(only.detail('JobRejected.v1').map((r) => r.reason)).toEqual(['BAD_OPTIONS']);
    expect(any.detail('JobStarted.v1').map((d) => d.topic)).toEqual(['other']);
    expect(any.detail('JobRejected.v1').map((r) => r.message)).toEqual([
      expect.stringMatching(/internal topics/),
      expect.stringMatching(/internal topics/),
    ]);
  });
});

describe('delimiters', () => {
  it('only the supported set; a multi-byte or other delimiter is BAD_OPTIONS naming the option', async () => {
    // Prepare
    const t = setup();
    // Act
    for (const [i, d] of ['€', 'ab', '"', '\n', ' ', 'x'].entries()) {
      await t.plan(`inbound/bad${i}.csv`, 'a€b\n1€2\n', { 'rowstream-delimiter': d });
    }
    for (const [i, d] of [';', 'tab', '|', ':', ','].entries()) {
      await t.plan(`inbound/ok${i}.csv`, 'a\n1\n', { 'rowstream-delimiter': d });
    }
    // Assess
    const rejected = t.detail('JobRejected.v1');
    expect(rejected.map((r) => r.reason)).toEqual(Array(6).fill('BAD_OPTIONS'));
    for (const r of rejected) expect(r.message).toMatch(/^rowstream-delimiter must be one of/);
    expect(t.detail('JobStarted.v1')).toHaveLength(5);
  });
});

describe('no row data in events, records and logs', () => {
  const ROW = '4711,2019-03-14,alice@example.com,99.5';

  it('a first row that looks like data is rejected without quoting it', async () => {
    // Prepare
    const t = setup();
    // Act
    const outcome = await t.plan('inbound/headerless.csv', `${ROW}\n4712,2026-12-01,bob@example.com,1\n`);
    // Assess
    expect(outcome).toMatchObject({ kind: 'rejected', reason: 'BAD_HEADER' });
    const everything = JSON.stringify([t.published, [...t.jobs.values()], t.logs, t.cached]);
    expect(t.cached).toEqual([]);
    for (const value of ROW.split(',')) expect(everything).not.toContain(value);
    expect(t.detail('JobRejected.v1')[0]?.message).toMatch(/column 1 is a number.*rowstream-header=none/);
  });

  it('rowstream-header=none: columns col_1..col_N, the first row is data; =present: taken as is', async () => {
    // Prepare
    const t = setup();
    // Act
    const none = await t.plan('inbound/n.csv', `${ROW}\n4712,2026-12-01,bob@example.com,1\n`, {
      'rowstream-header': 'none',
    });
    const present = await t.plan('inbound/p.csv', 'id,2026\n1,2\n', { 'rowstream-header': 'present' });
    const bad = await t.plan('inbound/b.csv', 'id\n1\n', { 'rowstream-header': 'maybe' });
    // Assess
    expect(none).toMatchObject({ kind: 'planned', totalRows: 2 });
    expect(present).toMatchObject({ kind: 'planned', totalRows: 1 });
    expect(bad).toMatchObject({ kind: 'rejected', reason: 'BAD_OPTIONS' });
    const [n, p] = t.detail('JobStarted.v1');
    expect(n).toMatchObject({ header: ['col_1', 'col_2', 'col_3', 'col_4'], dataOffset: 0 });
    expect(p).toMatchObject({ header: ['id', '2026'] });
    expect(JSON.stringify([t.published, [...t.jobs.values()]])).not.toContain('alice');
  });

  it('other data-like first rows: dates, UUIDs, booleans, e-mails; names like id,name pass', async () => {
    const t = setup();
    const cases = [
      ['2026-11-30,x', 'BAD_HEADER'],
      ['id,0b6c2f4e-4a1e-4f3a-9d7e-2f6f0e1c9a10', 'BAD_HEADER'],
      ['true,name', 'BAD_HEADER'],
      ['a@b.io,name', 'BAD_HEADER'],
      ['id,name,created_at,amount_2026', 'planned'],
    ];
    for (const [i, [header, want]] of cases.entries()) {
      const o = await t.plan(`inbound/${i}.csv`, `${header}\n`);
      expect(o.kind === 'rejected' ? o.reason : o.kind, header).toBe(want);
    }
  });

  it('a duplicate or BAD_OPTIONS key column is reported by position / option, not by value', async () => {
    const t = setup();
    await t.plan('inbound/d.csv', 'secret,secret\n1,2\n');
    await t.plan('inbound/k.csv', 'id,name\n1,2\n', { 'rowstream-key-column': 'nope' });
    const messages = t.detail('JobRejected.v1').map((r) => r.message as string);
    expect(messages[0]).toMatch(/column 2 repeats the name of column 1/);
    expect(messages[1]).toMatch(/rowstream-key-column does not name a column/);
    expect(messages.join()).not.toMatch(/secret|nope/);
  });

  it('a header above MAX_HEADER_JSON_BYTES is rejected with the reason and position; one just under is planned', async () => {
    // Prepare: names of 9 characters + 3 bytes of JSON each
    const t = setup();
    const names = (n: number) => Array.from({ length: n }, (_, i) => `c${String(i).padStart(8, '0')}`);
    const fits = Math.floor((MAX_HEADER_JSON_BYTES - 1) / 12);
    // Act
    const big = await t.plan('inbound/wide.csv', `${names(fits + 10).join(',')}\n1\n`);
    const ok = await t.plan('inbound/ok.csv', `${names(fits).join(',')}\n`);
    // Assess
    expect(big).toMatchObject({ kind: 'rejected', reason: 'BAD_HEADER' });
    const rejected = t.detail('JobRejected.v1')[0];
    expect(rejected?.message).toMatch(/too large: 87391 columns, 1048693 bytes as JSON \(limit 1048576/);
    expect(rejected?.position).toEqual({ row: 0, byte: 0 });
    expect(ok.kind).toBe('planned');
  });
});

describe('large plans are kept in S3 and referenced', () => {
  /** A header of `n` columns with 40-character names: about 43 bytes of JSON each. */
  const wide = (n: number) =>
    Array.from({ length: n }, (_, i) => `a_rather_long_column_name_number_${String(i).padStart(7, '0')}`);

  it('a header above INLINE_PLAN_BYTES: the plan object first, then the record and JobStarted carrying planRef', async () => {
    // Prepare: 8,000 columns, about 344 KB as JSON (over EventBridge's 256 KB entry)
    const t = setup();
    const header = wide(8000);
    const csv = `${header.join(',')}\n${header.map((_, i) => i).join(',')}\n`;
    // Act
    const out = await t.plan('inbound/wide.csv', csv);
    // Assess: planned, the plan object written before the job record
    expect(out.kind).toBe('planned');
    const jobId = (out as { jobId: string }).jobId;
    expect(t.writes).toEqual([`plan b/plans/${jobId}.json`, `job ${jobId}`]);
    const body = t.plans.get(`b/plans/${jobId}.json`)!;
    const record = t.jobs.get(jobId)!;
    expect(record.header).toBeUndefined();
    expect(record.planRef).toEqual({
      key: `plans/${jobId}.json`,
      sha256: createHash('sha256').update(body).digest('hex'),
      bytes: body.length,
      columns: 8000,
    });
    expect(decodePlan(body, record.planRef!, 'b', jobId).header).toEqual(header);
    const started = t.published.find((e) => e.detailType === 'JobStarted.v1')!;
    const detail = JSON.parse(started.detail);
    expect(detail.header).toBeUndefined();
    expect(detail.planRef).toEqual(record.planRef);
    expect(JobStartedV1.safeParse(detail).success).toBe(true);
    // Inside the limits, with room to spare
    expect(Buffer.byteLength(started.detail)).toBeLessThan(8 * 1024);
    expect(Buffer.byteLength(JSON.stringify(record))).toBeLessThan(8 * 1024);
    // The counts cache item names the header instead of holding it
    const [, cachedItem] = t.cached[0] as [string, Record<string, unknown>];
    expect(cachedItem.header).toBeUndefined();
    expect(cachedItem.headerRef).toMatchObject({ columns: 8000 });
    expect(Buffer.byteLength(JSON.stringify(cachedItem))).toBeLessThan(1024);
  });

  it('a retried planner (record never written) rewrites the same plan bytes', async () => {
    // Prepare: the first attempt wrote the plan, then the job write failed
    const t = setup();
    const csv = `${wide(2000).join(',')}\n1\n`;
    const create = t.deps.jobs.create;
    let failOnce = true;
    (t.deps.jobs as { create: typeof create }).create = async (r) => {
      if (failOnce) {
        failOnce = false;
        t.writes.push(`job ${r.jobId} (failed)`);
        throw new Error('ProvisionedThroughputExceededException');
      }
      return create(r);
    };
    await expect(t.plan('inbound/retry.csv', csv)).rejects.toThrow(/ProvisionedThroughput/);
    const [key] = [...t.plans.keys()];
    const first = Buffer.from(t.plans.get(key!)!);
    // Act: the message comes back
    const out = await t.plan('inbound/retry.csv', csv);
    // Assess
    expect(out.kind).toBe('planned');
    expect(t.plans.size).toBe(1);
    expect(t.plans.get(key!)!.equals(first)).toBe(true);
    expect(t.jobs.get((out as { jobId: string }).jobId)!.planRef!.sha256).toBe(
      createHash('sha256').update(first).digest('hex'),
    );
  });

  it('a small plan stays inline exactly as before: no plan object, header in record and event', async () => {
    const t = setup();
    const out = await t.plan('inbound/small.csv', 'id,name\n1,a\n');
    expect(out.kind).toBe('planned');
    expect(t.plans.size).toBe(0);
    const record = [...t.jobs.values()][0]!;
    expect(record.header).toEqual(['id', 'name']);
    expect(record.planRef).toBeUndefined();
    const detail = t.detail('JobStarted.v1')[0]!;
    expect(detail.header).toEqual(['id', 'name']);
    expect(detail.planRef).toBeUndefined();
  });
});
