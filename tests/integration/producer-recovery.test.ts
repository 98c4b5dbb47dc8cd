import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readTopic } from '../../testkit/producer.ts';
import { checkJobRows, type FaultStage, faultStage } from '../../testkit/producer-faults.ts';

/**
 * Recovery paths of the producer on the real local stack, each made to happen and checked row by
 * row on the topic (testkit/producer-faults.ts): a lost job record, a stalled S3 read taken over by
 * another producer, and a job FAILED by a fault past its budget resumed with `rowstream resume`.
 */

let stage: FaultStage;

beforeAll(async () => {
  stage = await faultStage('precov');
});

afterEach(async () => {
  await stage?.stopProducers();
});

afterAll(async () => {
  await stage?.close();
});

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

const EXACTLY_ONCE = (rows: number) => ({
  delivered: rows,
  duplicated: 0,
  missing: 0,
  outOfOrder: 0,
  badValues: 0,
});

/**
 * A producer SIGKILLs itself right after its 3rd commit (rows 1..6,000 committed, in transactions of
 * 2,000 rows and batches of 500); the job record is then lost (a table restore, a cleared table) and
 * the JobStarted replayed to a second producer, which must re-create the record from Kafka, resume
 * after row 6,000 and send nothing twice. `env` goes to both producers.
 */
async function loseRecordAndRecover(name: string, rows: number, env: Record<string, string> = {}) {
  // Prepare: B, on a queue of its own, is what the replayed JobStarted reaches (started now: a process
  // start takes 10-20 s on a loaded machine).
  const topic = stage.topic(name);
  const job = await stage.job(name, topic, rows);
  const [a, b] = await Promise.all([
    stage.producer(`${name}-a`, {
      ...env,
      ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '2000',
      ROWSTREAM_PRODUCER_BATCH_ROWS: '500',
      ROWSTREAM_PRODUCER_CRASH_AFTER_COMMIT: '3',
    }),
    stage.producer(`${name}-b`, env, { standby: true }),
  ]);
  await stage.start(job);
  expect((await a.exited).signal).toBe('SIGKILL');

  // Act: the job record is lost; the JobStarted is replayed.
  await stage.aws.doc.send(
    new DeleteCommand({ TableName: stage.outputs.tables.jobs, Key: { jobId: job.jobId } }),
  );
  expect(await stage.record(job.jobId)).toBeUndefined();
  const recovering = b.waitForLog(/job record lost; re-creating it/, 60_000);
  await stage.start(job, { plan: false, standby: true });
  const recovered = await recovering;
  const done = await stage.waitFor(job.jobId, (r) => r.status === 'COMPLETED', 60_000, 'COMPLETED');

  // Assess (both callers): re-created from Kafka after the committed rows.
  expect(JSON.parse(recovered).kafkaRow).toBe(6000);
  expect(done).toMatchObject({ recoveredFrom: 'kafka', rowsDelivered: rows, rowsRejected: 0 });
  return { topic, job };
}

describe('producer recovery on the real local stack', () => {
  it('a lost job record: producer SIGKILLed after 3 commits, record deleted, JobStarted replayed -> resumes from Kafka, every row once', async () => {
    const rows = 30_000;
    const { topic, job } = await loseRecordAndRecover('lost', rows);
    // Assess: nothing sent twice.
    expect(await checkJobRows(stage.outputs.kafka.brokers, topic, job.jobId, rows, { values: true })).toEqual(
      EXACTLY_ONCE(rows),
    );
  }, 120_000);

  it("record format batch (job and row headers on each batch's last record only): a lost job record is re-created from Kafka, every row once", async () => {
    // As above, with ROWSTREAM_PRODUCER_RECORD_HEADERS=batch on both producers: the resume scan has only
    // the last record of each batch to go by, and finds the same resume point.
    const rows = 30_000;
    const { topic, job } = await loseRecordAndRecover('lostbatch', rows, {
      ROWSTREAM_PRODUCER_RECORD_HEADERS: 'batch',
    });

    // Assess: every row once, by value; and the records are the format's: headers on a batch's last
    // record only (A's 12 batches of 500 rows, then B's of up to 5,000).
    expect(
      await checkJobRows(stage.outputs.kafka.brokers, topic, job.jobId, rows, {
        values: true,
        byValue: true,
      }),
    ).toEqual(EXACTLY_ONCE(rows));
    const withHeaders: number[] = [];
    await readTopic(stage.outputs.kafka.brokers, topic, 60_000, (r) => {
      if (r.headers['rowstream-job'] !== undefined) withHeaders.push(Number(r.headers['rowstream-row']));
    });
    expect(withHeaders.length).toBeGreaterThanOrEqual(12 + (rows - 6000) / 5000);
    expect(withHeaders.length).toBeLessThan(rows / 100);
    expect(withHeaders.slice(0, 12)).toEqual(range(1, 12).map((k) => k * 500));
    expect(withHeaders.at(-1)).toBe(rows);
  }, 120_000);

  it('a stalled S3 read: the stuck producer stops renewing, another takes the job over, the stuck one stops; every row once', async () => {
    // Prepare: producer A reads through the fault proxy; its S3 body stops after the first 64 KiB and
    // never ends (longer than the test). Its transaction stays open (no age limit in reach).
    const rows = 20_000;
    const topic = stage.topic('stall');
    const job = await stage.job('stall', topic, rows);
    // B (straight to AWS, on a queue of its own) only sweeps expired leases.
    const [a, b] = await Promise.all([
      stage.producer(
        'stall-a',
        {
          ROWSTREAM_PRODUCER_STALL_MS: '3000',
          ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '100000',
          ROWSTREAM_PRODUCER_TRANSACTION_MS: '600000',
          ROWSTREAM_PRODUCER_BATCH_ROWS: '100',
          // A must not sweep the job back itself once its read is aborted: B is the one to take it.
          ROWSTREAM_PRODUCER_SWEEP_MS: '600000',
        },
        { viaProxy: true },
      ),
      stage.producer('stall-b', {}, { standby: true }),
    ]);
    const stalled = a.waitForLog(/no progress; leaving the lease to expire/, 60_000);
    const stopped = a.waitForLog(/lease lost; stopping work on the job/, 60_000);
    const takenOver = b.waitForLog(/sweeper: taking over a job whose lease expired/, 60_000);
    const completed = b.waitForLog(/job completed/, 60_000);
    stage.proxy.setRules([{ service: 's3', op: 'GET', kind: 'stall-body', count: 1, stallMs: 600_000 }]);
    await stage.start(job);

    // Act: A gets stuck and stops renewing; B takes the expired lease over.
    await stalled;
    const done = await stage.waitFor(job.jobId, (r) => r.status === 'COMPLETED', 60_000, 'COMPLETED');

    // Assess: the stall really happened, A gave the job up and stopped, B finished it.
    expect(stage.proxy.stats.injected['stall-body']).toBe(1);
    await Promise.all([stopped, takenOver, completed]);
    expect(done.rowsDelivered).toBe(rows);
    expect(await checkJobRows(stage.outputs.kafka.brokers, topic, job.jobId, rows, { values: true })).toEqual(
      EXACTLY_ONCE(rows),
    );
  }, 120_000);

  /** Drives a job to FAILED: the first S3 body breaks after 64 KiB, then every S3 GET answers 503. */
  async function failedJob(name: string, rows: number) {
    const topic = stage.topic(name);
    const job = await stage.job(name, topic, rows);
    await stage.producer(
      `${name}-a`,
      {
        ROWSTREAM_PRODUCER_READ_RETRIES: '1',
        ROWSTREAM_PRODUCER_TRANSACTION_MS: '300',
        ROWSTREAM_PRODUCER_BATCH_ROWS: '100',
      },
      { viaProxy: true },
    );
    stage.proxy.setRules([
      { service: 's3', op: 'GET', kind: 'stall-body', count: 1, stallMs: 1500 },
      { service: 's3', op: 'GET', kind: '5xx' },
    ]);
    await stage.start(job);
    const failed = await stage.waitFor(job.jobId, (r) => r.status === 'FAILED', 60_000, 'FAILED');
    return { topic, job, failed };
  }

  it('rowstream resume <jobId>: a job FAILED by an S3 outage past its budget is resumed after its last committed row', async () => {
    // Prepare: rows before the break are committed (the slow-read rule), then the S3 outage outlasts
    // READ_RETRIES: the job fails.
    const rows = 20_000;
    const { topic, job, failed } = await failedJob('resume', rows);
    expect(failed.failure?.reason).toBe('SOURCE_UNREADABLE');
    const committedBefore = failed.checkpoint?.rowsDone ?? 0;
    expect(committedBefore).toBeGreaterThan(0);
    expect(committedBefore).toBeLessThan(rows);

    // Act: the outage ends; the operator resumes the job from the CLI and follows it.
    stage.proxy.setRules([]);
    const cli = await stage.cli(['resume', job.jobId, '--timeout', '90'], 120_000);

    // Assess
    expect(cli.stdout).toContain(`resumed ${job.jobId} (was FAILED: SOURCE_UNREADABLE)`);
    expect(cli.stdout).toContain(`COMPLETED: ${rows} rows delivered, 0 rejected`);
    expect(cli.code).toBe(0);
    const done = await stage.record(job.jobId);
    expect(done).toMatchObject({ status: 'COMPLETED', resumes: 1 });
    expect(await checkJobRows(stage.outputs.kafka.brokers, topic, job.jobId, rows, { values: true })).toEqual(
      EXACTLY_ONCE(rows),
    );
  }, 150_000);

  it('a replayed JobStarted (the runbook remedy) resumes a FAILED job after its last committed row', async () => {
    const rows = 20_000;
    const { topic, job, failed } = await failedJob('replay', rows);
    expect(failed.failure?.reason).toBe('SOURCE_UNREADABLE');
    expect(failed.checkpoint?.rowsDone ?? 0).toBeGreaterThan(0);

    // Act: the outage ends; the JobStarted is delivered again (an archive replay, a re-drive).
    stage.proxy.setRules([]);
    await stage.start(job, { plan: false });
    const done = await stage.waitFor(job.jobId, (r) => r.status === 'COMPLETED', 60_000, 'COMPLETED');

    // Assess
    expect(done).toMatchObject({
      rowsDelivered: rows,
      resumes: 1,
      lastFailure: { reason: 'SOURCE_UNREADABLE' },
    });
    expect(await checkJobRows(stage.outputs.kafka.brokers, topic, job.jobId, rows, { values: true })).toEqual(
      EXACTLY_ONCE(rows),
    );
  }, 150_000);
});
