/**
 * The producer chaos run, shared by `npm run chaos` (>= 1M rows, >= 5 kills) and the CI-sized
 * integration test (200k rows, 3 kills): one job, producer processes killed with SIGKILL at random
 * moments (one of them right after a transaction commit, through ROWSTREAM_PRODUCER_CRASH_AFTER_COMMIT),
 * restarted each time; one SIGTERM whose checkpoint is compared with the last committed row in Kafka;
 * at the end the topic must hold rows 1..N exactly once, in order, with the right values.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { readLastCommitted } from '../services/producer/adapters/kafka-scan.ts';
import { awsClients } from '../services/shared/aws.ts';
import type { StackOutputs } from '../topology/topology.ts';
import {
  deleteTopics,
  getJob,
  type ProducerProcess,
  REPO,
  readTopic,
  sendJobStarted,
  startProducer,
  topicEndOffset,
  uploadJob,
  waitForJob,
} from './producer.ts';
import { rowLine, rowValue, writeRowsFile } from './rows.ts';

export interface ChaosOptions {
  readonly outputs: StackOutputs;
  readonly env: Record<string, string>;
  readonly rows: number;
  readonly kills: number;
  /** The produce path: our record-batch encoder (default) or the library's per-message path. */
  readonly fastEncoder?: boolean;
  readonly seed?: number;
  readonly log?: (line: string) => void;
}

export interface ChaosReport {
  readonly rows: number;
  readonly kills: { kind: string; atRow: number | null; takeoverMs: number | null }[];
  readonly sigterm: { checkpointRow: number; kafkaRow: number; batchRows: number; exitCode: number | null };
  readonly topicRecords: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly outOfOrder: number;
  readonly badValues: number;
  readonly status: string;
  readonly wallSeconds: number;
  readonly ok: boolean;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  const log = o.log ?? (() => {});
  const started = Date.now();
  let seed = o.seed ?? Date.now() % 100_000;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const aws = awsClients({ region: o.outputs.region, endpoint: o.outputs.endpoint ?? undefined });
  const file = join(REPO, '.local', 'bench', `chaos-${o.rows}.csv`);
  log(`writing ${o.rows} rows to ${file}`);
  const { size, head } = await writeRowsFile(file, o.rows);
  const topic = `chaos-${o.fastEncoder === false ? 'library' : 'fast'}-${randomBytes(3).toString('hex')}`;
  log(`uploading ${(size / 1e6).toFixed(1)} MB to s3://${o.outputs.bucket}/inbound/chaos.csv`);
  const job = await uploadJob(
    aws.s3,
    o.outputs.bucket,
    'inbound/chaos.csv',
    { path: file, size, head },
    {
      topic,
      totalRows: o.rows,
    },
  );
  const batchRows = 2000;
  const leaseMs = 3000;
  const baseEnv = {
    ...o.env,
    ROWSTREAM_PRODUCER_FAST_ENCODER: o.fastEncoder === false ? 'false' : 'true',
    ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
    ROWSTREAM_PRODUCER_SWEEP_MS: '1000',
    ROWSTREAM_PRODUCER_LEASE_MS: String(leaseMs),
    ROWSTREAM_PRODUCER_HEARTBEAT_MS: '1000',
    ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '10000',
    ROWSTREAM_PRODUCER_BATCH_ROWS: String(batchRows),
    ROWSTREAM_PRODUCER_CHECKPOINT_MS: '2000',
    ROWSTREAM_PRODUCER_TRANSACTION_TIMEOUT_MS: '10000',
    ROWSTREAM_METRICS_SINK: `file:${join(REPO, '.local', 'test-logs', `chaos-emf-${o.outputs.stage}.log`)}`,
  };
  const logFile = join(REPO, '.local', 'test-logs', `chaos-${o.outputs.stage}.log`);
  const kills: ChaosReport['kills'] = [];
  let p: ProducerProcess = startProducer(baseEnv, logFile);
  await p.waitForLog(/producer started/);
  await sendJobStarted(aws.sqs, o.outputs.queues.producer.url, job, {
    doc: aws.doc,
    table: o.outputs.tables.jobs,
  });
  const rowNow = async () =>
    (await getJob(aws.doc, o.outputs.tables.jobs, job.jobId))?.checkpoint?.rowsDone ?? 0;
  const admin = new Kafka({
    clientId: 'chaos-progress',
    brokers: [...o.outputs.kafka.brokers],
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  // A run that throws midway (a timeout waiting for a log line, a failed job) leaves neither its
  // producer process nor its admin connection behind.
  let done: Awaited<ReturnType<typeof waitForJob>>;
  let sigterm: ChaosReport['sigterm'];
  try {
    const endOffset = () => topicEndOffset(admin, topic);
    /** Returns once `share` of the remaining rows more are on the topic (or the job has ended). */
    const progressBy = async (share: number) => {
      const remaining = Math.max(o.rows - (await rowNow()), 0);
      const target = (await endOffset()) + Math.floor(share * remaining);
      const deadline = Date.now() + 120_000;
      while ((await endOffset()) < target && Date.now() < deadline) {
        const state = await getJob(aws.doc, o.outputs.tables.jobs, job.jobId);
        if (state && state.status !== 'RUNNING' && state.status !== 'PLANNED') return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    for (let k = 0; k < o.kills; k++) {
      const afterCommit = k === 1; // the second kill: right after a produce ack + commit
      if (afterCommit) {
        // This process is replaced by one that SIGKILLs itself right after its n-th commit.
        p.kill('SIGKILL');
        await p.exited;
        const n = 2 + Math.floor(rand() * 4);
        p = startProducer({ ...baseEnv, ROWSTREAM_PRODUCER_CRASH_AFTER_COMMIT: String(n) }, logFile);
        const t0 = Date.now();
        await p.waitForLog(/taking over|resuming/, 60_000);
        await p.exited;
        kills.push({
          kind: `SIGKILL after commit #${n}`,
          atRow: await rowNow(),
          takeoverMs: Date.now() - t0,
        });
      } else {
        await p.waitForLog(/job claimed/, 60_000).catch(() => {});
        // A random point of this kill's share of the remaining rows, by the topic's progress, not by time:
        // a fixed time window put the kills mid-job at 60-90k rows/s and after the end at 300k. The
        // topic's end offset counts the records written since the claim (aborted ones of earlier runs
        // stay behind it); the checkpoint lags by up to CHECKPOINT_MS, so it cannot be the clock.
        await progressBy(rand() / (o.kills - k + 1));
        p.kill('SIGKILL');
        await p.exited;
        kills.push({ kind: 'SIGKILL at a random moment', atRow: await rowNow(), takeoverMs: null });
      }
      log(`kill ${k + 1}/${o.kills}: ${kills.at(-1)?.kind} (checkpoint row ${kills.at(-1)?.atRow})`);
      const state = await getJob(aws.doc, o.outputs.tables.jobs, job.jobId);
      if (state && state.status !== 'RUNNING') {
        log(`the job finished (${state.status}) before kill ${k + 2}; stopping the kills`);
        // The SIGTERM check below needs a live producer, not the one just killed.
        p = startProducer(baseEnv, logFile);
        await p.waitForLog(/producer started/, 60_000);
        break;
      }
      const t0 = Date.now();
      p = startProducer(baseEnv, logFile);
      await p.waitForLog(/taking over a job/, 60_000);
      const last = kills.at(-1)!;
      if (last.takeoverMs === null) kills[kills.length - 1] = { ...last, takeoverMs: Date.now() - t0 };
    }

    // SIGTERM mid-job (at a random point of the first half of what is left): the producer commits,
    // checkpoints and releases; the checkpoint must match Kafka.
    await progressBy(rand() / 2);
    p.kill('SIGTERM');
    const exit = await p.exited;
    const record = await getJob(aws.doc, o.outputs.tables.jobs, job.jobId);
    const kafkaLast = await readLastCommitted({ brokers: o.outputs.kafka.brokers }, job.jobId, topic, {
      floor: null,
      sinceMs: null,
      partitions: null,
    });
    sigterm = {
      checkpointRow: record?.checkpoint?.rowsDone ?? 0,
      kafkaRow: kafkaLast?.row ?? 0,
      batchRows,
      exitCode: exit.code,
    };
    log(
      `SIGTERM: exit ${exit.code}, checkpoint row ${sigterm.checkpointRow}, Kafka last committed row ${sigterm.kafkaRow}`,
    );

    // Finish the job.
    p = startProducer(baseEnv, logFile);
    done = await waitForJob(
      aws.doc,
      o.outputs.tables.jobs,
      job.jobId,
      (r) => ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED'].includes(r.status),
      Math.max(300_000, o.rows * 2),
    );
    p.kill('SIGTERM');
    await p.exited;
  } catch (e) {
    p.kill('SIGKILL');
    throw e;
  } finally {
    await admin.disconnect().catch(() => {});
  }
  log(`job ${done.status}; reading the topic back`);

  let count = 0;
  let expected = 1;
  const seen = new Uint8Array(o.rows + 1);
  let duplicates = 0;
  let outOfOrder = 0;
  let badValues = 0;
  await readTopic(o.outputs.kafka.brokers, topic, 600_000, (r) => {
    count++;
    const row = Number(r.headers['rowstream-row']);
    if (row >= 1 && row <= o.rows) {
      if (seen[row]) duplicates++;
      seen[row] = 1;
    }
    if (row !== expected) outOfOrder++;
    expected = row + 1;
    // Every 97th value fully compared (JSON parse is the slow part), all by the id field.
    if (row % 97 === 0) {
      if (r.value !== JSON.stringify(rowValue(row))) badValues++;
    } else if (!r.value.startsWith(`{"id":"${row}",`)) badValues++;
  });
  let missing = 0;
  for (let i = 1; i <= o.rows; i++) if (!seen[i]) missing++;
  void rowLine;
  const report: ChaosReport = {
    rows: o.rows,
    kills,
    sigterm,
    topicRecords: count,
    duplicates,
    missing,
    outOfOrder,
    badValues,
    status: done.status,
    wallSeconds: Math.round((Date.now() - started) / 1000),
    ok:
      done.status === 'COMPLETED' &&
      count === o.rows &&
      duplicates === 0 &&
      missing === 0 &&
      outOfOrder === 0 &&
      badValues === 0 &&
      sigterm.exitCode === 0 &&
      kills.length >= o.kills &&
      sigterm.kafkaRow - sigterm.checkpointRow <= batchRows,
  };
  // A passed run's topic is deleted (its rows were all checked); a failed run's is kept to look at.
  if (report.ok) await deleteTopics(o.outputs.kafka.brokers, [topic]);
  else log(`topic ${topic} kept for inspection`);
  return report;
}
