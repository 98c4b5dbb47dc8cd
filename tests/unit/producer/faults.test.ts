import { describe, expect, it } from 'vitest';
import { eventIdFor, jobIdFor } from '../../../events/ids.ts';
import { runJob } from '../../../services/producer/core.ts';
import { csvOf, FakeBus, jobFor, makeDeps, settings } from './fakes.ts';

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
const throttle = () =>
  Object.assign(new Error('Rate exceeded'), {
    name: 'ProvisionedThroughputExceededException',
    $metadata: { httpStatusCode: 400 },
  });
const http503 = () =>
  Object.assign(new Error('Service Unavailable'), {
    name: 'ServiceUnavailable',
    $metadata: { httpStatusCode: 503 },
  });

describe('producer core: transient faults are retried, only a persistent one fails the job', () => {
  it('counts Kafka failures as consecutive: failures spread over a job, each followed by a commit, do not fail it', async () => {
    // Prepare: 40 rows, batches of 2, transactions of 4 rows; a send fails after every commit,
    // 6 failures in all, more than kafkaRetries (3) but never more than 1 in a row.
    const csv = csvOf(40);
    const { deps, kafka } = makeDeps(csv);
    kafka.failSendCalls = [3, 8, 13, 18, 23, 28];
    // Act
    const outcome = await runJob(jobFor(csv, { totalRows: 40 }), deps, settings({ kafkaRetries: 3 }));
    // Assess
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 40 });
    expect(kafka.rows()).toEqual(range(1, 40));
    // More failures than the budget of 3 were met, none of them more than once in a row.
    expect(kafka.opens - 1).toBeGreaterThan(3);
  });

  it('fails with KAFKA_RETRIES_EXHAUSTED and the cause when Kafka fails more times in a row than the budget', async () => {
    const csv = csvOf(10);
    const { deps, kafka, jobs } = makeDeps(csv);
    kafka.failSendCalls = [1, 2, 3, 4, 5];
    kafka.sendError = 'NOT_ENOUGH_REPLICAS: broker down';
    const outcome = await runJob(jobFor(csv), deps, settings({ kafkaRetries: 3 }));
    expect(outcome).toEqual({ kind: 'failed', reason: 'KAFKA_RETRIES_EXHAUSTED' });
    expect(jobs.finished?.failure?.message).toMatch(/send failed after retries: NOT_ENOUGH_REPLICAS/);
  });

  it('retries a throttled checkpoint and a throttled terminal write instead of failing INTERNAL', async () => {
    const csv = csvOf(20);
    const { deps, jobs, kafka } = makeDeps(csv);
    jobs.failNext.checkpoint = [throttle(), throttle()];
    jobs.failNext.finish = [http503()];
    const outcome = await runJob(jobFor(csv, { totalRows: 20 }), deps, settings({ checkpointRows: 8 }));
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 20 });
    expect(jobs.finished?.status).toBe('COMPLETED');
    expect(kafka.rows()).toEqual(range(1, 20));
  });

  it('retries a 5xx on the rejects PUT; the bad row still lands in rejects once', async () => {
    const csv = Buffer.from('id,name\n1,a\n2\n3,c\n');
    const { deps, rejects, kafka } = makeDeps(csv);
    const write = rejects.writePart.bind(rejects);
    let calls = 0;
    rejects.writePart = async (...a) => {
      if (++calls <= 2) throw http503();
      return write(...a);
    };
    const outcome = await runJob(jobFor(csv), deps, settings());
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED_WITH_REJECTS', rows: 3 });
    expect(kafka.rows()).toEqual([1, 3]);
    expect(rejects.lines().map((l) => l.split(',')[0])).toEqual(['2']);
  });

  it('retries a failed JobCompleted publish; the job completes with its rows delivered once', async () => {
    const csv = csvOf(6);
    const bus = new FakeBus();
    let failures = 2;
    const put = bus.putEntries.bind(bus);
    bus.putEntries = async (entries) => {
      if (entries.some((e) => e.detailType === 'JobCompleted.v1') && failures-- > 0) throw http503();
      return put(entries);
    };
    const { deps, kafka, jobs } = makeDeps(csv, { bus });
    const outcome = await runJob(jobFor(csv), deps, settings());
    expect(outcome.kind).toBe('completed');
    expect(bus.types().filter((t) => t === 'JobCompleted.v1')).toHaveLength(1);
    expect(jobs.finished?.status).toBe('COMPLETED');
    expect(kafka.rows()).toEqual(range(1, 6));
  });

  it('fails with AWS_RETRIES_EXHAUSTED, naming the call and the cause, when a fault outlasts the budget', async () => {
    const csv = csvOf(20);
    const { deps, jobs } = makeDeps(csv);
    jobs.failNext.checkpoint = Array.from({ length: 5 }, () => throttle());
    const outcome = await runJob(jobFor(csv), deps, settings({ checkpointRows: 8, awsAttempts: 5 }));
    expect(outcome).toEqual({ kind: 'failed', reason: 'AWS_RETRIES_EXHAUSTED' });
    expect(jobs.finished?.failure?.message).toMatch(
      /checkpoint failed 5 times in a row: ProvisionedThroughput/,
    );
  });
});

describe('producer core: resume, lost records and trust', () => {
  it('resumes a FAILED job after its last committed row (a replayed JobStarted or `rowstream resume`)', async () => {
    // Prepare: the first run fails on a Kafka outage after 8 committed rows.
    const csv = csvOf(20);
    const { deps, kafka, jobs, bus } = makeDeps(csv);
    kafka.failSendCalls = [5, 6, 7, 8];
    const first = await runJob(jobFor(csv, { totalRows: 20 }), deps, settings({ kafkaRetries: 2 }));
    expect(first).toEqual({ kind: 'failed', reason: 'KAFKA_RETRIES_EXHAUSTED' });
    expect(jobs.record?.status).toBe('FAILED');
    // Act: the same JobStarted again.
    const second = await runJob(jobFor(csv, { totalRows: 20 }), deps, settings({ kafkaRetries: 2 }));
    // Assess
    expect(second).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 20 });
    expect(kafka.rows()).toEqual(range(1, 20));
    expect(jobs.record?.resumes).toBe(1);
    const ids = bus.entries
      .filter((e) => e.detailType === 'JobFailed.v1')
      .map((e) => JSON.parse(e.detail).eventId);
    expect(ids).toEqual([eventIdFor('JobFailed', 'j-1')]);
  });

  it('refuses a JobStarted without a planner-written record when Kafka holds nothing of the job', async () => {
    const csv = csvOf(5);
    const { deps, kafka, jobs } = makeDeps(csv);
    jobs.plannerRecord = false;
    const jobId = jobIdFor('b', 'inbound/x.csv', { versionId: null, etag: 'etag' });
    const outcome = await runJob(jobFor(csv, { jobId }), deps, settings());
    expect(outcome).toMatchObject({ kind: 'refused' });
    expect(kafka.rows()).toEqual([]);
    expect(jobs.record).toBeNull();
  });

  it('refuses a JobStarted whose jobId does not derive from its bucket, key and version', async () => {
    const csv = csvOf(5);
    const { deps, kafka, jobs } = makeDeps(csv);
    jobs.plannerRecord = false;
    const outcome = await runJob(jobFor(csv, { jobId: 'j-forged' }), deps, settings());
    expect(outcome).toMatchObject({ kind: 'refused', why: expect.stringMatching(/jobId/) });
    expect(kafka.opens).toBe(0);
  });

  it('after a lost job record, resumes after the rows Kafka holds instead of sending them again', async () => {
    // Prepare: a first run delivered everything; then the table was cleared.
    const csv = csvOf(12);
    const jobId = jobIdFor('b', 'inbound/x.csv', { versionId: null, etag: 'etag' });
    const job = jobFor(csv, { jobId, totalRows: 12 });
    const { deps, kafka, jobs } = makeDeps(csv);
    kafka.failSendCalls = [3, 4, 5, 6, 7];
    await runJob(job, deps, settings({ kafkaRetries: 2 }));
    const committed = kafka.rows().length;
    expect(committed).toBe(4);
    jobs.record = null;
    jobs.plannerRecord = false;
    // Act: an archive replay of the JobStarted.
    const outcome = await runJob(job, deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 12 });
    expect(kafka.rows()).toEqual(range(1, 12));
    expect(jobs.recovered?.rowsDone).toBe(4);
    expect(jobs.record).toMatchObject({ recoveredFrom: 'kafka' });
  });

  it('runs the job as the planner recorded it, not as the event says', async () => {
    const csv = csvOf(3);
    const { deps, kafka, jobs } = makeDeps(csv);
    const planned = jobFor(csv);
    await jobs.claim(planned, 'nobody');
    jobs.record = { ...jobs.record!, status: 'PLANNED', leaseOwner: undefined, attempts: 0 };
    let topic = '';
    const open = kafka.openJob.bind(kafka);
    kafka.openJob = async (_id: string, t: string) => {
      topic = t;
      return open();
    };
    await runJob({ ...planned, topic: 'somewhere-else' }, deps, settings());
    expect(topic).toBe('t');
  });

  it('scans only the job own partition, from the checkpoint floor and the job start', async () => {
    const csv = csvOf(20);
    const { deps, kafka, jobs } = makeDeps(csv);
    kafka.failSendAt = 5;
    await runJob(jobFor(csv, { totalRows: 20 }), deps, settings({ checkpointRows: 2, scanSkewMs: 1000 }));
    const hint = kafka.scanHints.at(-1)!;
    expect(hint.partitions).toEqual([0]);
    expect(hint.floor?.[0]?.lastOffset).not.toBeNull();
    expect(hint.sinceMs).toBe(Date.parse(jobs.record!.createdAt) - 1000);
  });
});

describe('producer core: rows the broker refuses', () => {
  it("learns the topic's max.message.bytes at job start and rejects larger rows with the broker's reason", async () => {
    const csv = Buffer.from(`id,name\n1,a\n2,${'x'.repeat(3000)}\n3,c\n`);
    const { deps, kafka, rejects } = makeDeps(csv);
    kafka.maxMessageBytes = 2048 + 512;
    const outcome = await runJob(jobFor(csv), deps, settings({ maxMessageBytes: 1_000_000 }));
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED_WITH_REJECTS', rows: 3 });
    expect(kafka.rows()).toEqual([1, 3]);
    expect(rejects.lines()[0]).toMatch(/^2,\d+,MESSAGE_TOO_LARGE,/);
  });

  it('learns the limit again when the broker refuses a batch mid-job (limit lowered), and goes on', async () => {
    const csv = Buffer.from(`id,name\n1,a\n2,b\n3,${'x'.repeat(3000)}\n4,d\n`);
    const { deps, kafka, rejects } = makeDeps(csv);
    kafka.failSendAt = 2;
    kafka.sendError = 'MESSAGE_TOO_LARGE: The request included a message larger than the max message size';
    // The topic's limit was lowered after the job started: unknown at start, 2560 when asked again.
    let asked = 0;
    kafka.topicLimits = async () => ({ maxMessageBytes: asked++ === 0 ? null : 2048 + 512 });
    const outcome = await runJob(jobFor(csv), deps, settings({ batchRows: 2 }));
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED_WITH_REJECTS', rows: 4 });
    expect(kafka.rows()).toEqual([1, 2, 4]);
    expect(rejects.lines()[0]).toMatch(/^3,\d+,MESSAGE_TOO_LARGE,/);
  });
});

describe('producer core: progress-aware lease', () => {
  it('gives the lease up when nothing moves (a hung read), interrupts the read and stops without writing', async () => {
    // Prepare: the reader yields a few chunks, then hangs until aborted.
    const csv = csvOf(50);
    const { deps, jobs, kafka } = makeDeps(csv);
    let renewals = 0;
    jobs.renew = async () => {
      renewals++;
    };
    let aborted = false;
    const reader = {
      async *open(_ref: unknown, from: number, signal?: AbortSignal) {
        yield csv.subarray(from, from + 40);
        await new Promise<void>((_, reject) =>
          signal?.addEventListener('abort', () => {
            aborted = true;
            reject(signal.reason);
          }),
        );
      },
    };
    // Act
    const outcome = await runJob(
      jobFor(csv),
      { ...deps, reader },
      settings({ heartbeatMs: 10, stallMs: 60, transactionMs: 1_000_000, transactionRows: 100 }),
    );
    // Assess
    expect(outcome).toEqual({ kind: 'lease-lost' });
    expect(aborted).toBe(true);
    expect(jobs.finished).toBeNull();
    expect(renewals).toBeLessThan(10);
    expect(kafka.commits).toBe(0);
  });

  it('keeps the lease through a resume scan longer than the stall clock, as long as the scan reports progress', async () => {
    // Prepare: a Kafka failure makes the job rewind and scan; the scan takes 10x the stall clock in
    // small fetches (a busy shared topic), each one reported.
    const csv = csvOf(20);
    const { deps, kafka } = makeDeps(csv);
    kafka.failSendAt = 2;
    const scan = kafka.readLastCommitted.bind(kafka);
    kafka.readLastCommitted = async (jobId, topic, hint, onProgress?: () => void) => {
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 20));
        onProgress?.();
      }
      return scan(jobId, topic, hint);
    };
    // Act
    const outcome = await runJob(
      jobFor(csv, { totalRows: 20 }),
      deps,
      settings({ heartbeatMs: 10, stallMs: 60, batchRows: 3, transactionRows: 6 }),
    );
    // Assess: not taken for a hang; every row once.
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 20 });
    expect(kafka.rows()).toEqual(range(1, 20));
  });

  it('keeps the lease through a renewal that fails transiently', async () => {
    const csv = csvOf(200);
    const { deps, jobs } = makeDeps(csv);
    jobs.failNext.renew = [throttle()];
    const slow = deps.reader;
    const reader = {
      async *open(ref: Parameters<typeof slow.open>[0], from: number) {
        for await (const c of slow.open(ref, from)) {
          await new Promise((r) => setTimeout(r, 1));
          yield c;
        }
      },
    };
    const outcome = await runJob(
      jobFor(csv),
      { ...deps, reader },
      settings({ heartbeatMs: 20, leaseMs: 10_000 }),
    );
    expect(outcome.kind).toBe('completed');
  });

  it('commits the open transaction when a read is slower than the transaction age limit', async () => {
    const csv = csvOf(6);
    const { deps, kafka } = makeDeps(csv);
    const reader = {
      async *open(_ref: unknown, from: number) {
        const mid = csv.indexOf('4,');
        yield csv.subarray(from, mid);
        await new Promise((r) => setTimeout(r, 150));
        yield csv.subarray(mid);
      },
    };
    await runJob(jobFor(csv), { ...deps, reader }, settings({ transactionMs: 50, transactionRows: 100 }));
    // The first 3 rows were committed while the read was stalled, the rest at the end.
    expect(kafka.commits).toBe(2);
    expect(kafka.rows()).toEqual(range(1, 6));
  });

  it('SIGTERM interrupts a hung read and hands the job back at the last commit', async () => {
    const csv = csvOf(10);
    const { deps, jobs, kafka, shutdown } = makeDeps(csv);
    const reader = {
      async *open(_ref: unknown, from: number, signal?: AbortSignal) {
        yield csv.subarray(from, csv.indexOf('5,'));
        setTimeout(() => shutdown.abort(), 20);
        await new Promise<void>((_, reject) =>
          signal?.addEventListener('abort', () => reject(signal.reason)),
        );
      },
    };
    const outcome = await runJob(jobFor(csv), { ...deps, reader }, settings({ transactionRows: 100 }));
    expect(outcome).toEqual({ kind: 'handed-back', rowsDone: 4 });
    expect(jobs.released).toBe(true);
    expect(kafka.rows()).toEqual(range(1, 4));
  });
});
