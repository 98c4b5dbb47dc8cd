import { describe, expect, it } from 'vitest';
import type { BusEntry, BusPort } from '../../../events/bus.ts';
import { jobIdFor } from '../../../events/ids.ts';
import type { PlannerDeps } from '../../../services/planner/core.ts';
import { plannerFromDeps } from '../../../services/planner/handler.ts';
import { readHeader } from '../../../services/planner/header.ts';
import type { CachedCount, ObjectHead, ObjectStorePort } from '../../../services/planner/ports.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';
import { NO_LOG } from '../../../services/shared/logger.ts';
import { BufferedMetrics, MemorySink } from '../../../services/shared/metrics.ts';

interface FakeObject {
  body: Uint8Array;
  etag: string;
  versionId: string | null;
  metadata?: Record<string, string>;
  tags?: Record<string, string>;
}

function fakes() {
  const objects = new Map<string, FakeObject>();
  const jobs = new Map<string, JobRecord>();
  const cache = new Map<string, CachedCount>();
  const published: BusEntry[] = [];
  let reads = 0;
  let failPublishes = 0;
  // Tags the planner wrote on object versions (its source-fate port), and whether that port fails.
  const fateTags = new Map<string, Record<string, string>>();
  let failTagging = false;
  const store: ObjectStorePort = {
    async head(ref): Promise<ObjectHead | null> {
      const o = objects.get(ref.key);
      if (!o || (ref.versionId && ref.versionId !== o.versionId)) return null;
      return {
        size: o.body.length,
        etag: o.etag,
        versionId: o.versionId,
        contentType: 'text/csv',
        metadata: o.metadata ?? {},
      };
    },
    async *read(ref, start, end) {
      reads++;
      yield objects.get(ref.key)!.body.subarray(start, end);
    },
    async tags(ref) {
      return objects.get(ref.key)?.tags ?? {};
    },
  };
  const bus: BusPort = {
    async putEntries(entries) {
      if (failPublishes > 0) {
        failPublishes--;
        throw new Error('EventBridge unavailable');
      }
      published.push(...entries);
      return entries.map((_, i) => ({ eventId: `e${published.length + i}` }));
    },
  };
  const sink = new MemorySink();
  const plans = new Map<string, Buffer>();
  const deps: PlannerDeps = {
    store,
    bus,
    plans: {
      put: async (bucket, key, body) => void plans.set(`${bucket}/${key}`, Buffer.from(body)),
      get: async (bucket, key) => plans.get(`${bucket}/${key}`) ?? null,
    },
    cache: { get: async (k) => cache.get(k) ?? null, put: async (k, v) => void cache.set(k, v) },
    jobs: {
      get: async (id) => jobs.get(id) ?? null,
      create: async (r) => {
        if (jobs.has(r.jobId)) return false;
        jobs.set(r.jobId, structuredClone(r));
        return true;
      },
      markStartedPublished: async (id) => {
        const j = jobs.get(id);
        if (j && j.status === 'PLANNED' && j.startedEventPublished === false) j.startedEventPublished = true;
      },
    },
    metrics: new BufferedMetrics({ sink, defaultDimensions: { Service: 'planner', Stage: 't' } }),
    log: NO_LOG,
    sourceTags: {
      get: async (ref) => {
        if (failTagging) throw new Error('AccessDenied');
        return fateTags.get(`${ref.key}@${ref.versionId}`) ?? {};
      },
      put: async (ref, tags) => void fateTags.set(`${ref.key}@${ref.versionId}`, { ...tags }),
    },
    settings: {
      inboundPrefix: 'inbound/',
      partSize: 16,
      concurrency: 3,
      defaults: {
        topic: 'rowstream.rows',
        format: 'json',
        keyColumn: null,
        failOnBadRow: false,
        delimiter: ',',
        allowedTopics: { kind: 'list', topics: ['rowstream.rows', 'orders', 'ignored-metadata-wins'] },
      },
    },
    now: () => new Date('2026-11-25T12:00:00Z'),
  };
  const planner = plannerFromDeps(deps);
  return {
    objects,
    jobs,
    cache,
    plans,
    published,
    sink,
    planner,
    fateTags,
    failTagging() {
      failTagging = true;
    },
    get reads() {
      return reads;
    },
    failNextPublishes(n: number) {
      failPublishes = n;
    },
  };
}

const put = (
  f: ReturnType<typeof fakes>,
  key: string,
  text: string | Uint8Array,
  extra: Partial<FakeObject> = {},
) =>
  f.objects.set(key, {
    body: typeof text === 'string' ? new TextEncoder().encode(text) : text,
    etag: extra.etag ?? 'etag1',
    versionId: extra.versionId ?? 'v1',
    ...extra,
  });

const notification = (key: string, extra: Record<string, unknown> = {}) => ({
  messageId: `m-${key}`,
  body: JSON.stringify({
    Records: [
      {
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        s3: {
          bucket: { name: 'b' },
          object: {
            key: encodeURIComponent(key).replace(/%20/g, '+'),
            eTag: 'etag1',
            versionId: 'v1',
            ...extra,
          },
        },
      },
    ],
  }),
});

const details = (f: ReturnType<typeof fakes>, type: string) =>
  f.published.filter((e) => e.detailType === type).map((e) => JSON.parse(e.detail));

describe('planner core', () => {
  it('plans a CSV: job record, JobStarted with counts, header, dataOffset and defaults', async () => {
    // Prepare
    const f = fakes();
    const text = '\uFEFFid,name\r\n1,"a\r\nb"\r\n\r\n2,c\r\n';
    put(f, 'inbound/my file.csv', text);
    // Act
    const res = await f.planner.handler({ Records: [notification('inbound/my file.csv')] });
    // Assess
    expect(res.batchItemFailures).toEqual([]);
    const [started] = details(f, 'JobStarted.v1');
    const jobId = jobIdFor('b', 'inbound/my file.csv', { versionId: 'v1', etag: 'etag1' });
    expect(started).toMatchObject({
      jobId,
      key: 'inbound/my file.csv',
      totalRows: 2,
      header: ['id', 'name'],
      topic: 'rowstream.rows',
    });
    expect(started.dataOffset).toBe(new TextEncoder().encode('\uFEFFid,name\r\n').length);
    expect(started.options).toEqual({ format: 'json', keyColumn: null, failOnBadRow: false, delimiter: ',' });
    expect(f.jobs.get(jobId)).toMatchObject({ status: 'PLANNED', startedEventPublished: true, totalRows: 2 });
    await f.planner.deps.metrics.flush();
    expect(f.sink.values('FilesPlanned')).toEqual([1]);
    expect(f.sink.values('RowsCounted')).toEqual([2]);
  });

  it('a duplicate notification makes one job and one JobStarted, and reads nothing again', async () => {
    // Prepare
    const f = fakes();
    put(f, 'inbound/a.csv', 'h\n1\n2\n');
    await f.planner.handler({ Records: [notification('inbound/a.csv')] });
    const readsAfterFirst = f.reads;
    // Act
    await f.planner.handler({ Records: [notification('inbound/a.csv'), notification('inbound/a.csv')] });
    // Assess
    expect(details(f, 'JobStarted.v1')).toHaveLength(1);
    expect(f.jobs.size).toBe(1);
    expect(f.reads).toBe(readsAfterFirst);
  });

  it('a copy that loses the create race to a concurrent copy does not publish (the winner does)', async () => {
    // Prepare: two deliveries of one notification in one batch, processed concurrently
    const f = fakes();
    put(f, 'inbound/a.csv', 'h\n1\n2\n');
    // Act
    const out = await f.planner.handler({
      Records: [notification('inbound/a.csv'), { ...notification('inbound/a.csv'), messageId: 'm-copy' }],
    });
    // Assess
    expect(out.batchItemFailures).toEqual([]);
    expect(details(f, 'JobStarted.v1')).toHaveLength(1);
    expect(f.jobs.size).toBe(1);
  });

  it("one upload notified twice at once (moto's Put + CompleteMultipartUpload) is read and counted once", async () => {
    // Prepare: the two events one multipart upload gets from moto, in one batch, processed concurrently
    const f = fakes();
    put(f, 'inbound/a.csv', 'h\n1\n2\n');
    // Act
    const out = await f.planner.handler({
      Records: [
        notification('inbound/a.csv'),
        {
          ...notification('inbound/a.csv'),
          messageId: 'm-complete',
          body: notification('inbound/a.csv').body.replace(
            'ObjectCreated:Put',
            'ObjectCreated:CompleteMultipartUpload',
          ),
        },
      ],
    });
    // Assess: both messages succeed, one job, one JobStarted, the object read by one plan only
    expect(out.batchItemFailures).toEqual([]);
    expect(details(f, 'JobStarted.v1')).toHaveLength(1);
    expect(f.jobs.size).toBe(1);
    const single = fakes();
    put(single, 'inbound/a.csv', 'h\n1\n2\n');
    await single.planner.handler({ Records: [notification('inbound/a.csv')] });
    expect(f.reads).toBe(single.reads);
  });

  it('outbox: when PutEvents failed after the record was written, the redelivery publishes it', async () => {
    // Prepare: the first attempt writes the record, then PutEvents throws -> the message fails
    const f = fakes();
    put(f, 'inbound/a.csv', 'h\n1\n');
    f.failNextPublishes(1);
    const first = await f.planner.handler({ Records: [notification('inbound/a.csv')] });
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm-inbound/a.csv' }]);
    const jobId = [...f.jobs.keys()][0]!;
    expect(f.jobs.get(jobId)?.startedEventPublished).toBe(false);
    // Act
    const second = await f.planner.handler({ Records: [notification('inbound/a.csv')] });
    // Assess
    expect(second.batchItemFailures).toEqual([]);
    expect(details(f, 'JobStarted.v1')).toHaveLength(1);
    expect(f.jobs.get(jobId)?.startedEventPublished).toBe(true);
  }, 20_000);

  it('outbox: a JobStarted whose plan is referenced is re-published with the same reference', async () => {
    // Prepare: a wide header (about 45 KB of JSON), PutEvents fails once after the record is written
    const f = fakes();
    const header = Array.from({ length: 1500 }, (_, i) => `outbox_measurement_${i}`);
    put(f, 'inbound/w.csv', `${header.join(',')}\n${header.map(() => 1).join(',')}\n`);
    f.failNextPublishes(1);
    await f.planner.handler({ Records: [notification('inbound/w.csv')] });
    const jobId = [...f.jobs.keys()][0]!;
    const planRef = f.jobs.get(jobId)?.planRef;
    expect(planRef?.columns).toBe(1500);
    // Act: the notification comes back (the outbox path re-publishes from the record)
    await f.planner.handler({ Records: [notification('inbound/w.csv')] });
    // Assess
    const [started] = details(f, 'JobStarted.v1');
    expect(started.planRef).toEqual(planRef);
    expect(started.header).toBeUndefined();
    expect(f.jobs.get(jobId)?.startedEventPublished).toBe(true);
    expect(f.plans.size).toBe(1);
  }, 20_000);

  it('a cache hit skips reading; a new ETag counts again', async () => {
    // Prepare
    const f = fakes();
    put(f, 'inbound/a.csv', 'h\n1\n', { versionId: 'v1' });
    await f.planner.handler({ Records: [notification('inbound/a.csv')] });
    f.jobs.clear(); // same version planned again (e.g. job table restored): the cache answers
    const reads = f.reads;
    // Act
    await f.planner.handler({ Records: [notification('inbound/a.csv')] });
    // Assess
    expect(f.reads).toBe(reads);
    await f.planner.deps.metrics.flush();
    expect(f.sink.values('CacheHits')).toEqual([1]);
    // Act: overwrite
    put(f, 'inbound/a.csv', 'h\n1\n2\n3\n', { versionId: 'v2', etag: 'etag2' });
    await f.planner.handler({ Records: [notification('inbound/a.csv', { versionId: 'v2', eTag: 'etag2' })] });
    // Assess
    expect(details(f, 'JobStarted.v1').map((d) => d.totalRows)).toEqual([1, 1, 3]);
  });

  it('a cache hit on a wide header re-reads only the header (not a recount) and plans it by reference', async () => {
    // Prepare: 1,500 columns (about 40 KB of JSON: above INLINE_PLAN_BYTES), 300 rows
    const f = fakes();
    const header = Array.from({ length: 1500 }, (_, i) => `measurement_column_${i}`);
    const rows = Array.from({ length: 300 }, (_, r) => header.map(() => r).join(','));
    const text = `${header.join(',')}\n${rows.join('\n')}\n`;
    put(f, 'inbound/wide.csv', text);
    await f.planner.handler({ Records: [notification('inbound/wide.csv')] });
    const [cached] = [...f.cache.values()];
    expect(cached?.header).toBeUndefined();
    expect(cached?.headerRef).toMatchObject({ columns: 1500 });
    f.jobs.clear();
    const reads = f.reads;
    // Act
    await f.planner.handler({ Records: [notification('inbound/wide.csv')] });
    // Assess: one read (the header), counted from the cache, the header by reference again
    expect(f.reads).toBe(reads + 1);
    await f.planner.deps.metrics.flush();
    expect(f.sink.values('CacheHits')).toEqual([1]);
    const [first, second] = details(f, 'JobStarted.v1');
    expect(second.totalRows).toBe(300);
    expect(second.planRef).toEqual(first.planRef);
    expect(second.header).toBeUndefined();
    const plan = JSON.parse(f.plans.get(`b/${second.planRef.key}`)!.toString());
    expect(plan.header).toEqual(header);
  });

  const bad: [string, string | Uint8Array, string][] = [
    ['zero bytes', '', 'EMPTY_OBJECT'],
    ['only blank lines', '\r\n\n\n', 'NO_HEADER'],
    ['only a BOM', '\uFEFF', 'NO_HEADER'],
    ['binary (NUL)', Uint8Array.of(0x50, 0x4b, 3, 4, 0, 0, 10), 'NOT_TEXT'],
    ['invalid UTF-8 header', Uint8Array.of(0x61, 0x2c, 0xff, 0xfe, 0x0a, 0x31, 0x0a), 'NOT_TEXT'],
    ['duplicate column names', 'a,b,a\n1,2,3\n', 'BAD_HEADER'],
    ['empty column name', 'a,,c\n1,2,3\n', 'BAD_HEADER'],
  ];
  for (const [name, body, reason] of bad) {
    it(`rejects ${name} as ${reason}, acknowledges the message, no JobStarted`, async () => {
      // Prepare
      const f = fakes();
      put(f, 'inbound/bad.csv', body);
      // Act
      const res = await f.planner.handler({ Records: [notification('inbound/bad.csv')] });
      // Assess
      expect(res.batchItemFailures).toEqual([]);
      expect(details(f, 'JobStarted.v1')).toHaveLength(0);
      const [rej] = details(f, 'JobRejected.v1');
      expect(rej).toMatchObject({ reason, key: 'inbound/bad.csv' });
      expect(rej.message.length).toBeGreaterThan(10);
      expect([...f.jobs.values()][0]).toMatchObject({ status: 'REJECTED', rejection: { reason } });
    });
  }

  it('a vanished object is OBJECT_NOT_FOUND with the jobId from the notification', async () => {
    // Prepare
    const f = fakes();
    // Act
    await f.planner.handler({ Records: [notification('inbound/gone.csv')] });
    // Assess
    const [rej] = details(f, 'JobRejected.v1');
    expect(rej).toMatchObject({
      reason: 'OBJECT_NOT_FOUND',
      jobId: jobIdFor('b', 'inbound/gone.csv', { versionId: 'v1', etag: 'etag1' }),
    });
  });

  it('gzip and other keys under inbound/ are rejected as NOT_CSV; keys outside and test events are ignored', async () => {
    // Prepare
    const f = fakes();
    put(f, 'inbound/a.csv.gz', 'whatever');
    put(f, 'inbound/a.txt', 'h\n1\n');
    put(f, 'other/a.csv', 'h\n1\n');
    // Act
    const res = await f.planner.handler({
      Records: [
        notification('inbound/a.csv.gz'),
        notification('inbound/a.txt'),
        notification('other/a.csv'),
        { messageId: 't', body: JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent' }) },
      ],
    });
    // Assess
    expect(res.batchItemFailures).toEqual([]);
    expect(details(f, 'JobRejected.v1').map((d) => d.reason)).toEqual(['NOT_CSV', 'NOT_CSV']);
    expect(f.jobs.size).toBe(2);
  });

  it('a rejected object version is tagged with its job id and REJECTED; a planned one is not', async () => {
    // Prepare
    const f = fakes();
    put(f, 'inbound/a.txt', 'h\n1\n');
    put(f, 'inbound/b.csv', 'h\n1\n');
    // Act
    await f.planner.handler({ Records: [notification('inbound/a.txt'), notification('inbound/b.csv')] });
    await f.planner.handler({ Records: [notification('inbound/a.txt')] });
    // Assess
    expect(Object.fromEntries(f.fateTags)).toEqual({
      'inbound/a.txt@v1': {
        'rowstream-job': jobIdFor('b', 'inbound/a.txt', { versionId: 'v1', etag: 'etag1' }),
        'rowstream-outcome': 'REJECTED',
      },
    });
  });

  it('a failure to tag a rejected object changes nothing else', async () => {
    // Prepare
    const f = fakes();
    f.failTagging();
    put(f, 'inbound/a.txt', 'h\n1\n');
    // Act
    const res = await f.planner.handler({ Records: [notification('inbound/a.txt')] });
    // Assess
    expect(res.batchItemFailures).toEqual([]);
    expect(details(f, 'JobRejected.v1').map((d) => d.reason)).toEqual(['NOT_CSV']);
    expect([...f.jobs.values()].map((j) => j.status)).toEqual(['REJECTED']);
  });

  it('metadata and tags override topic and options; a bad override is BAD_OPTIONS', async () => {
    // Prepare
    const f = fakes();
    put(f, 'inbound/a.csv', 'id;name\n1;x\n', {
      metadata: { 'rowstream-topic': 'orders', 'rowstream-delimiter': ';', 'rowstream-key-column': 'id' },
      tags: { 'rowstream-format': 'csv', 'rowstream-topic': 'ignored-metadata-wins' },
    });
    put(f, 'inbound/b.csv', 'id\n1\n', { metadata: { 'rowstream-key-column': 'nope' } });
    put(f, 'inbound/c.csv', 'id\n1\n', { metadata: { 'rowstream-topic': 'bad topic!' } });
    // Act
    await f.planner.handler({
      Records: [notification('inbound/a.csv'), notification('inbound/b.csv'), notification('inbound/c.csv')],
    });
    // Assess
    const [started] = details(f, 'JobStarted.v1');
    expect(started).toMatchObject({
      topic: 'orders',
      header: ['id', 'name'],
      options: { format: 'csv', keyColumn: 'id', delimiter: ';' },
    });
    const rejected = details(f, 'JobRejected.v1');
    expect(rejected.map((r) => r.reason)).toEqual(['BAD_OPTIONS', 'BAD_OPTIONS']);
    expect(rejected[0].message).toContain('rowstream-key-column');
    expect(rejected[1].message).toContain('rowstream-topic');
  });

  it('takes a record format per object into the job options; absent, the options carry none; a bad one is BAD_OPTIONS', async () => {
    // Prepare
    const f = fakes();
    put(f, 'inbound/lean.csv', 'id\n1\n', { metadata: { 'rowstream-record-headers': 'Batch' } });
    put(f, 'inbound/plain.csv', 'id\n1\n');
    put(f, 'inbound/bad.csv', 'id\n1\n', { tags: { 'rowstream-record-headers': 'none' } });
    // Act
    await f.planner.handler({
      Records: [
        notification('inbound/lean.csv'),
        notification('inbound/plain.csv'),
        notification('inbound/bad.csv'),
      ],
    });
    // Assess
    const started = details(f, 'JobStarted.v1');
    expect(started.map((s) => [s.key, s.options.recordHeaders])).toEqual([
      ['inbound/lean.csv', 'batch'],
      ['inbound/plain.csv', undefined],
    ]);
    expect(Object.keys(started[1].options)).not.toContain('recordHeaders');
    const rejected = details(f, 'JobRejected.v1');
    expect(rejected.map((r) => r.reason)).toEqual(['BAD_OPTIONS']);
    expect(rejected[0].message).toContain('rowstream-record-headers must be one of compact, full, batch');
  });

  it('a message that is not an S3 notification fails (-> DLQ), the others in the batch succeed', async () => {
    // Prepare
    const f = fakes();
    put(f, 'inbound/a.csv', 'h\n1\n');
    // Act
    const res = await f.planner.handler({
      Records: [{ messageId: 'junk', body: '{"hello":1}' }, notification('inbound/a.csv')],
    });
    // Assess
    expect(res.batchItemFailures).toEqual([{ itemIdentifier: 'junk' }]);
    expect(details(f, 'JobStarted.v1')).toHaveLength(1);
  });
});

describe('readHeader', () => {
  it('header without final newline: 0 rows, dataOffset = size', () => {
    const b = new TextEncoder().encode('a,"b\nc"');
    expect(readHeader(b, b.length)).toMatchObject({ header: ['a', 'b\nc'], dataOffset: b.length });
  });
  it('reports the byte of invalid UTF-8', () => {
    const b = Uint8Array.of(0x0a, 0x61, 0xc3, 0x28, 0x0a);
    expect(() => readHeader(b, b.length)).toThrow(/byte 2/);
  });
});
