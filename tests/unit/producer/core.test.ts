import { describe, expect, it } from 'vitest';
import { runJob } from '../../../services/producer/core.ts';
import { recordFromJobStarted } from '../../../services/shared/jobs.ts';
import type { Log } from '../../../services/shared/logger.ts';
import { csvOf, jobFor, makeDeps, settings } from './fakes.ts';

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

describe('producer core', () => {
  it('delivers every row once, in order, with row and next-offset headers, and completes', async () => {
    // Prepare
    const csv = csvOf(10);
    const { deps, kafka, jobs, bus } = makeDeps(csv);
    // Act
    const outcome = await runJob(jobFor(csv), deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 10 });
    expect(kafka.rows()).toEqual(range(1, 10));
    expect(JSON.parse(String(kafka.log[0]!.value))).toEqual({ id: '1', name: 'name-1' });
    expect(Number(kafka.log[9]!.headers['rowstream-offset'])).toBe(csv.length);
    expect(kafka.log[2]!.headers['rowstream-source']).toBe('s3://b/inbound/x.csv');
    expect(kafka.commits).toBe(3); // 4 + 4 + 2 rows
    expect(kafka.sends.every((n) => n <= 2)).toBe(true);
    expect(jobs.finished?.status).toBe('COMPLETED');
    expect(jobs.finished?.checkpoint?.nextByteOffset).toBe(csv.length);
    expect(bus.types()).toContain('JobCompleted.v1');
  });

  it('splits batches by bytes so no request exceeds the limit', async () => {
    // Prepare: each record is ~200 bytes with headers; 700 bytes per batch allows 3.
    const csv = csvOf(10);
    const { deps, kafka } = makeDeps(csv);
    // Act
    await runJob(jobFor(csv), deps, settings({ batchRows: 1000, batchBytes: 700, transactionRows: 1000 }));
    // Assess
    expect(kafka.sends.length).toBeGreaterThan(2);
    expect(Math.max(...kafka.sends)).toBeLessThanOrEqual(3);
    expect(kafka.rows()).toEqual(range(1, 10));
  });

  it('checkpoints after commits every M rows, never ahead of the committed rows', async () => {
    // Prepare
    const csv = csvOf(20);
    const { deps, jobs, kafka } = makeDeps(csv);
    // Act
    await runJob(jobFor(csv), deps, settings({ checkpointRows: 8 }));
    // Assess: the placement before the first record (row 0); commits at 4, 8, ...; checkpoints when
    // >= 8 rows since the last, then the final one.
    expect(jobs.checkpoints.map((c) => c.rowsDone)).toEqual([0, 8, 16, 20]);
    expect(kafka.commits).toBe(5);
  });

  it('resumes after the last row committed in Kafka when it is ahead of the checkpoint', async () => {
    // Prepare: a previous run committed rows 1..6 but checkpointed only row 2.
    const csv = csvOf(10);
    const first = makeDeps(csv);
    await runJob(jobFor(csv), first.deps, settings({ transactionRows: 2, checkpointRows: 2 }));
    const job = jobFor(csv);
    const { deps, kafka, jobs, reader } = makeDeps(csv);
    kafka.log.push(...first.kafka.log.slice(0, 6));
    const cp = first.jobs.checkpoints[1]!; // [0] is the placement, written before the first record
    jobs.record = {
      ...first.jobs.record!,
      status: 'RUNNING',
      leaseOwner: 'dead',
      leaseExpiresAt: 0,
      checkpoint: cp,
    };
    // Act
    const outcome = await runJob(job, deps, settings());
    // Assess
    expect(cp.rowsDone).toBe(2);
    expect(outcome.kind).toBe('completed');
    expect(kafka.rows()).toEqual(range(1, 10));
    expect(reader.opens).toEqual([Number(first.kafka.log[5]!.headers['rowstream-offset'])]);
  });

  it('writes bad rows to rejects with row, byte and reason, and completes with rejects', async () => {
    // Prepare
    const csv = Buffer.concat([
      Buffer.from('id,name\n1,a\n2\n3,c\n'),
      Buffer.from([0x34, 0x2c, 0xff, 0x0a]),
      Buffer.from('5,e\n'),
    ]);
    const { deps, kafka, rejects, jobs } = makeDeps(csv);
    // Act
    const outcome = await runJob(jobFor(csv), deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED_WITH_REJECTS', rows: 5 });
    expect(kafka.rows()).toEqual([1, 3, 5]);
    expect(rejects.lines().map((l) => l.split(',').slice(0, 3).join(','))).toEqual([
      `2,${csv.indexOf('2\n')},WRONG_FIELD_COUNT`,
      `4,${csv.indexOf(Buffer.from([0x34, 0x2c, 0xff]))},INVALID_UTF8`,
    ]);
    expect(jobs.finished).toMatchObject({ rowsDelivered: 3, rowsRejected: 2 });
  });

  it('rejects a record larger than the max message size', async () => {
    const csv = Buffer.from(`id,name\n1,a\n2,${'x'.repeat(2000)}\n3,c\n`);
    const { deps, kafka, rejects } = makeDeps(csv);
    await runJob(jobFor(csv), deps, settings({ maxMessageBytes: 1000 }));
    expect(kafka.rows()).toEqual([1, 3]);
    expect(rejects.lines()[0]).toMatch(/^2,\d+,TOO_LARGE,/);
  });

  it('with failOnBadRow, fails at the first bad row with its position, after delivering the rows before it', async () => {
    // Prepare
    const csv = Buffer.from('id,name\n1,a\n2,b\n3\n4,d\n');
    const { deps, kafka, jobs, bus } = makeDeps(csv);
    const job = jobFor(csv, {
      options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: true },
    });
    // Act
    const outcome = await runJob(job, deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'failed', reason: 'BAD_ROW' });
    expect(kafka.rows()).toEqual([1, 2]);
    expect(jobs.finished?.status).toBe('FAILED');
    expect(jobs.finished?.failure?.position).toEqual({ row: 3, byte: csv.indexOf('3\n') });
    const failed = JSON.parse(bus.entries.find((e) => e.detailType === 'JobFailed.v1')!.detail);
    expect(failed.reason).toBe('BAD_ROW');
  });

  it('stops at once when the lease is lost, without a terminal write', async () => {
    // Prepare: a slow reader so the heartbeat fires mid-job.
    const csv = csvOf(200);
    const { deps, kafka, jobs } = makeDeps(csv);
    jobs.loseLeaseAtRenewal = 1;
    const slow = deps.reader;
    const reader = {
      async *open(ref: Parameters<typeof slow.open>[0], from: number) {
        for await (const c of slow.open(ref, from)) {
          await new Promise((r) => setTimeout(r, 2));
          yield c;
        }
      },
    };
    // Act
    const outcome = await runJob(jobFor(csv), { ...deps, reader }, settings({ heartbeatMs: 20 }));
    // Assess
    expect(outcome).toEqual({ kind: 'lease-lost' });
    expect(jobs.finished).toBeNull();
    expect(kafka.rows().length).toBeLessThan(200);
  });

  it('on SIGTERM commits, checkpoints exactly at the last commit and releases the job', async () => {
    // Prepare
    const csv = csvOf(100);
    const { deps, kafka, jobs, shutdown } = makeDeps(csv);
    const slow = deps.reader;
    let chunks = 0;
    const reader = {
      async *open(ref: Parameters<typeof slow.open>[0], from: number) {
        for await (const c of slow.open(ref, from)) {
          if (++chunks === 40) shutdown.abort();
          yield c;
        }
      },
    };
    // Act
    const outcome = await runJob(jobFor(csv), { ...deps, reader }, settings());
    // Assess
    expect(outcome.kind).toBe('handed-back');
    expect(jobs.released).toBe(true);
    expect(jobs.finished).toBeNull();
    const last = jobs.checkpoints.at(-1)!;
    expect(last.rowsDone).toBe(kafka.rows().at(-1));
    expect(kafka.rows()).toEqual(range(1, last.rowsDone));
    expect(last.rowsDone).toBeLessThan(100);
  });

  it('when a commit ack is lost, reads Kafka back instead of re-sending the committed rows', async () => {
    // Prepare
    const csv = csvOf(12);
    const { deps, kafka } = makeDeps(csv);
    kafka.failCommitAt = 2;
    kafka.commitAckLost = true;
    // Act
    const outcome = await runJob(jobFor(csv), deps, settings());
    // Assess
    expect(outcome.kind).toBe('completed');
    expect(kafka.rows()).toEqual(range(1, 12));
    expect(kafka.opens).toBe(2);
  });

  it('retries a failed send from the last commit', async () => {
    const csv = csvOf(12);
    const { deps, kafka, metrics } = makeDeps(csv);
    kafka.failSendAt = 4;
    await runJob(jobFor(csv), deps, settings());
    expect(kafka.rows()).toEqual(range(1, 12));
    expect(metrics.points.filter((p) => p.name === 'Retries').length).toBe(1);
  });

  it('re-opens a broken object stream from the last row boundary', async () => {
    // Prepare
    const csv = csvOf(30);
    const { deps, kafka, reader } = makeDeps(csv);
    reader.breakAfterBytes = 60;
    // Act
    await runJob(jobFor(csv), deps, settings());
    // Assess
    expect(kafka.rows()).toEqual(range(1, 30));
    expect(reader.opens.length).toBe(2);
    expect(csv[reader.opens[1]! - 1]).toBe(0x0a); // a row boundary
  });

  it('acknowledges a JobStarted for a finished job and does nothing', async () => {
    const csv = csvOf(3);
    const { deps, kafka, jobs } = makeDeps(csv);
    await runJob(jobFor(csv), deps, settings());
    const outcome = await runJob(jobFor(csv), deps, settings());
    expect(outcome).toEqual({ kind: 'skipped', why: 'terminal' });
    expect(kafka.rows()).toEqual([1, 2, 3]);
    expect(jobs.record?.attempts).toBe(1);
  });

  it('records metrics per commit, with JobId only on per-job metrics', async () => {
    const csv = csvOf(10);
    const { deps, metrics } = makeDeps(csv);
    await runJob(jobFor(csv), deps, settings());
    const names = new Set(metrics.points.map((p) => p.name));
    for (const n of [
      'RowsProduced',
      'RowsPerSecond',
      'ProgressPercent',
      'KafkaLatencyMs',
      'Checkpoints',
      'JobsCompleted',
    ]) {
      expect(names.has(n), n).toBe(true);
    }
    expect(metrics.points.filter((p) => p.name === 'Checkpoints').every((p) => !('JobId' in p.dims))).toBe(
      true,
    );
    expect(metrics.points.filter((p) => p.name === 'RowsProduced').every((p) => p.dims.JobId === 'j-1')).toBe(
      true,
    );
    // Never per row: at most a few points per commit.
    expect(metrics.points.length).toBeLessThan(10 * 5);
  });
});

describe('producer core: placement', () => {
  it('chooses the placement once, records it before the first record, and opens every producer with it', async () => {
    // Prepare: a send fails once, so the job's producer is opened twice.
    const csv = csvOf(10);
    const { deps, kafka, jobs } = makeDeps(csv);
    kafka.partitionsCount = 6;
    kafka.failSendAt = 2;
    // Act
    const outcome = await runJob(jobFor(csv), deps, settings());
    // Assess
    expect(outcome.kind).toBe('completed');
    expect(kafka.placements).toEqual([{ jobId: jobFor(csv).jobId, topic: jobFor(csv).topic, keyed: false }]);
    const placement = { partitions: 6, partition: 0, keyed: false };
    expect(jobs.checkpoints[0]).toMatchObject({ rowsDone: 0, placement });
    expect(kafka.openedWith).toEqual([placement, placement]);
    expect(jobs.finished?.checkpoint?.placement).toEqual(placement);
  });

  it('reads the topic limits and records the placement while the producer opens, and sends only after both', async () => {
    // Prepare: the limits answer and the placement write each take 40 ms; the topic allows small records only.
    const csv = csvOf(10);
    const { deps, kafka, jobs } = makeDeps(csv);
    const events: string[] = [];
    const later = <T>(what: string, value: T) =>
      new Promise<T>((r) =>
        setTimeout(() => {
          events.push(what);
          r(value);
        }, 40),
      );
    kafka.topicLimits = () => later('limits', { maxMessageBytes: 512 + 60 });
    const checkpoint = jobs.checkpoint.bind(jobs);
    jobs.checkpoint = async (...args) => {
      if (jobs.checkpoints.length === 0) await later('placement recorded', null);
      return checkpoint(...args);
    };
    const openJob = kafka.openJob.bind(kafka);
    kafka.openJob = async (...args) => {
      events.push('open');
      const producer = await openJob(...args);
      const send = producer.send.bind(producer);
      return {
        ...producer,
        send: (records) => {
          events.push('send');
          return send(records);
        },
      };
    };
    // Act
    const outcome = await runJob(jobFor(csv), deps, settings());
    // Assess: the open did not wait for either; the first send waited for both, and the limits applied
    // (every record is over 60 bytes with its headers: all rejected, none sent).
    expect(events.slice(0, 3)).toEqual(['open', 'limits', 'placement recorded']);
    expect(events.slice(3).every((e) => e === 'send')).toBe(true);
    expect(outcome).toMatchObject({ kind: 'completed', status: 'COMPLETED_WITH_REJECTS' });
    expect(kafka.log).toHaveLength(0);
    expect(jobs.checkpoints[0]).toMatchObject({ rowsDone: 0, placement: { partitions: 1, partition: 0 } });
  });

  it('on resume uses the recorded placement and asks the topic nothing, whatever its partition count now', async () => {
    // Prepare: the job started on 3 partitions (keyed); the topic has 6 now.
    const csv = csvOf(10);
    const first = makeDeps(csv);
    first.kafka.partitionsCount = 3;
    await runJob(jobFor(csv), first.deps, settings({ transactionRows: 2, checkpointRows: 2 }));
    const { deps, kafka, jobs } = makeDeps(csv);
    kafka.partitionsCount = 6;
    const cp = first.jobs.checkpoints[2]!;
    jobs.record = {
      ...first.jobs.record!,
      status: 'RUNNING',
      leaseOwner: 'dead',
      leaseExpiresAt: 0,
      checkpoint: cp,
    };
    // Act
    await runJob(jobFor(csv), deps, settings());
    // Assess
    expect(cp.placement).toEqual({ partitions: 3, partition: 0, keyed: false });
    expect(kafka.placements).toEqual([]);
    expect(kafka.openedWith).toEqual([cp.placement]);
  });
});

describe('JobStarted against the planner-written record', () => {
  const recording = () => {
    const warnings: { message: string; attrs: Record<string, unknown> }[] = [];
    const log: Log = {
      debug() {},
      info() {},
      error() {},
      warn: (message, attrs) => warnings.push({ message, attrs: { ...attrs } }),
      child: () => log,
    };
    return { log, warnings };
  };

  it('does not warn when only the key order of the options differs (as DynamoDB returns them)', async () => {
    // Prepare: the record's options in another key order than the event's
    const csv = csvOf(3);
    const { log, warnings } = recording();
    const { deps, jobs } = makeDeps(csv, { logger: log });
    const job = jobFor(csv);
    const o = job.options;
    jobs.record = recordFromJobStarted(
      {
        ...job,
        options: {
          failOnBadRow: o.failOnBadRow,
          delimiter: o.delimiter,
          keyColumn: o.keyColumn,
          format: o.format,
        },
      },
      'PLANNED',
      job.occurredAt,
    );
    // Act
    const outcome = await runJob(job, deps, settings());
    // Assess
    expect(outcome.kind).toBe('completed');
    expect(warnings.filter((w) => w.message.includes('differs'))).toEqual([]);
  });

  it('warns, naming the option, and runs the job as recorded when an option really differs', async () => {
    // Prepare: the event says key column "name", the record none
    const csv = csvOf(3);
    const { log, warnings } = recording();
    const { deps, jobs, kafka } = makeDeps(csv, { logger: log });
    const job = jobFor(csv);
    jobs.record = recordFromJobStarted(job, 'PLANNED', job.occurredAt);
    // Act
    await runJob({ ...job, options: { ...job.options, keyColumn: 'name' } }, deps, settings());
    // Assess
    const w = warnings.find((x) => x.message.includes('differs'));
    expect(w?.attrs.fields).toEqual(['options.keyColumn']);
    expect(kafka.log.every((r) => r.key === null)).toBe(true);
  });
});
