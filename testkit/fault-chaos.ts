/**
 * The fault chaos run, shared by `npm run chaos -- --faults ...` and its CI-sized integration test:
 * several jobs on one shared topic, one producer process at a time talking to AWS through a
 * fault-injecting proxy in front of moto (5xx, throttling, swallowed requests, a stalled S3 body), the
 * Kafka broker SIGKILLed and restarted mid-job, the producer SIGKILLed and restarted. At the end every
 * job must be COMPLETED and the topic must hold, per job, rows 1..N exactly once and in order.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { JobStarted } from '../events/catalog.ts';
import { type FaultProxy, type FaultRule, startFaultProxy } from '../local/fault-proxy.ts';
import { killKafka, startKafkaAgain } from '../local/kafka-restart.ts';
import { awsClients } from '../services/shared/aws.ts';
import type { JobRecord } from '../services/shared/jobs.ts';
import type { StackOutputs } from '../topology/topology.ts';
import {
  deleteTopics,
  getJob,
  type ProducerProcess,
  REPO,
  readTopic,
  sendJobStarted,
  startProducer,
  uploadJob,
  waitForJob,
} from './producer.ts';
import { writeRowsFile } from './rows.ts';

export const FAULTS = ['aws', 'stall', 'broker', 'kill'] as const;
export type Fault = (typeof FAULTS)[number];

export interface FaultChaosOptions {
  readonly outputs: StackOutputs;
  readonly env: Record<string, string>;
  readonly jobs: number;
  readonly rows: number;
  readonly faults: readonly Fault[];
  /** Rate of the random AWS faults (per matching request). */
  readonly awsRate?: number;
  readonly log?: (line: string) => void;
}

export interface JobFigures {
  readonly jobId: string;
  readonly status: string;
  readonly expected: number;
  readonly delivered: number;
  readonly duplicated: number;
  readonly missing: number;
  readonly outOfOrder: number;
  readonly failure: string | null;
}

export interface FaultChaosReport {
  readonly faults: readonly Fault[];
  readonly jobs: readonly JobFigures[];
  readonly rowsExpected: number;
  readonly rowsDelivered: number;
  readonly duplicated: number;
  readonly missing: number;
  readonly outOfOrder: number;
  readonly jobsFailed: number;
  readonly injected: FaultProxy['stats'];
  readonly events: readonly string[];
  readonly wallSeconds: number;
  readonly ok: boolean;
}

/** Random AWS faults on every service the producer uses: 5xx, throttles, resets. */
export function awsFaultRules(rate: number): FaultRule[] {
  return [
    { service: 'dynamodb', kind: 'throttle', rate },
    { service: 'dynamodb', kind: '5xx', rate: rate / 2 },
    { service: 's3', op: 'GET', kind: '5xx', rate },
    { service: 's3', op: 'PUT', kind: '5xx', rate },
    { service: 's3', op: 'GET', kind: 'reset', rate: rate / 4 },
    { service: 'events', kind: '5xx', rate },
    { service: 'events', kind: 'throttle', rate: rate / 2 },
  ];
}

export async function runFaultChaos(o: FaultChaosOptions): Promise<FaultChaosReport> {
  const log = o.log ?? (() => {});
  const started = Date.now();
  const events: string[] = [];
  const note = (line: string) => {
    events.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${line}`);
    log(line);
  };
  const endpoint = o.outputs.endpoint;
  if (!endpoint) throw new Error('the fault chaos run needs the local stack (an emulator endpoint)');
  const proxy = await startFaultProxy(endpoint);
  const aws = awsClients({ region: o.outputs.region, endpoint });
  const topic = `faults-${randomBytes(3).toString('hex')}`;
  const file = join(REPO, '.local', 'bench', `faults-${o.rows}.csv`);
  const { size, head } = await writeRowsFile(file, o.rows);
  const jobs: JobStarted[] = [];
  for (let j = 0; j < o.jobs; j++) {
    jobs.push(
      await uploadJob(
        aws.s3,
        o.outputs.bucket,
        `inbound/faults-${j}.csv`,
        { path: file, size, head },
        {
          topic,
          totalRows: o.rows,
        },
      ),
    );
  }
  note(`${o.jobs} jobs of ${o.rows} rows on topic ${topic}; faults: ${o.faults.join(', ')}`);
  const env = {
    ...o.env,
    AWS_ENDPOINT_URL: proxy.url,
    ROWSTREAM_PRODUCER_CONCURRENCY: '2',
    ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
    ROWSTREAM_PRODUCER_SWEEP_MS: '1000',
    ROWSTREAM_PRODUCER_LEASE_MS: '4000',
    ROWSTREAM_PRODUCER_HEARTBEAT_MS: '1000',
    // Above the fence retry and the SDK's DynamoDB timeouts (bounded steps), below the S3 client's 30 s
    // idle timeout, so a stalled S3 body is caught by the progress-aware lease.
    ROWSTREAM_PRODUCER_STALL_MS: '25000',
    ROWSTREAM_PRODUCER_FENCE_RETRY_MS: '20000',
    ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '5000',
    ROWSTREAM_PRODUCER_BATCH_ROWS: '1000',
    ROWSTREAM_PRODUCER_CHECKPOINT_MS: '1000',
    ROWSTREAM_PRODUCER_TRANSACTION_TIMEOUT_MS: '10000',
    // Long enough to ride out a broker restart (~10-40 s here) without failing the job.
    ROWSTREAM_PRODUCER_KAFKA_RETRIES: '10',
    ROWSTREAM_PRODUCER_RETRY_MAX_MS: '5000',
    ROWSTREAM_METRICS_SINK: `file:${join(REPO, '.local', 'test-logs', `faults-emf-${o.outputs.stage}.log`)}`,
  };
  const logFile = join(REPO, '.local', 'test-logs', `faults-${o.outputs.stage}.log`);
  let p: ProducerProcess = startProducer(env, logFile);
  await p.waitForLog(/producer started/, 120_000);
  const s3Stall: FaultRule = { service: 's3', op: 'GET', kind: 'stall-body', count: 1, stallMs: 60_000 };
  if (o.faults.includes('aws') || o.faults.includes('stall')) {
    // The S3 body stall is armed before the jobs start, so it hits the first read of a job whatever
    // the producer's speed: armed at 10% of the rows (as it was), it found no read left once a
    // 60,000-row job took ~1 s, and the CI run saw no stall at all. The stalled job also outlives
    // the broker and producer kills below.
    proxy.setRules([
      ...(o.faults.includes('stall') ? [s3Stall] : []),
      ...(o.faults.includes('aws') ? awsFaultRules(o.awsRate ?? 0.1) : []),
    ]);
    if (o.faults.includes('aws')) note(`AWS faults on (rate ${o.awsRate ?? 0.1})`);
    if (o.faults.includes('stall')) note('S3 body stall armed for the first read');
  }
  for (const job of jobs) {
    await sendJobStarted(aws.sqs, o.outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: o.outputs.tables.jobs,
    });
  }
  const progress = async () => {
    const rows = await Promise.all(
      jobs.map(
        async (j) => (await getJob(aws.doc, o.outputs.tables.jobs, j.jobId))?.checkpoint?.rowsDone ?? 0,
      ),
    );
    return rows.reduce((a, b) => a + b, 0);
  };
  const waitForRows = async (n: number, timeoutMs = 180_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && (await progress()) < n) await new Promise((r) => setTimeout(r, 250));
  };
  const total = o.jobs * o.rows;
  const withAws = (rules: FaultRule[]) =>
    proxy.setRules([...rules, ...(o.faults.includes('aws') ? awsFaultRules(o.awsRate ?? 0.1) : [])]);

  if (o.faults.includes('stall')) {
    await waitForRows(Math.floor(total * 0.1));
    // The S3 body that stops mid-stream (armed above) and one request never answered: the read hangs
    // until the progress-aware lease gives the job up; it is taken over (fenced) and resumed. The
    // stall rule is kept in the list only while it has not fired (setRules re-arms what it is given).
    withAws([
      ...(proxy.stats.injected['stall-body'] === 0 ? [s3Stall] : []),
      { service: 'dynamodb', op: 'UpdateItem', kind: 'timeout', count: 1, stallMs: 60_000 },
    ]);
    note('one DynamoDB request swallowed');
  }
  if (o.faults.includes('broker')) {
    await waitForRows(Math.floor(total * 0.3));
    await killKafka();
    note(`Kafka broker SIGKILLed at ~${await progress()} rows`);
    await new Promise((r) => setTimeout(r, 3000));
    const downMs = await startKafkaAgain(o.outputs.kafka.brokers);
    note(`Kafka broker back (${Math.round(downMs / 1000)} s to restart and answer)`);
  }
  if (o.faults.includes('kill')) {
    await waitForRows(Math.floor(total * 0.5));
    p.kill('SIGKILL');
    await p.exited;
    note(`producer SIGKILLed at ~${await progress()} rows`);
    p = startProducer(env, logFile);
    await p.waitForLog(/producer started/, 120_000);
    note('producer restarted');
  }
  const done: JobRecord[] = [];
  for (const job of jobs) {
    done.push(
      await waitForJob(
        aws.doc,
        o.outputs.tables.jobs,
        job.jobId,
        (r) => ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED'].includes(r.status),
        Math.max(600_000, o.rows * 5),
      ),
    );
  }
  proxy.setRules([]);
  p.kill('SIGTERM');
  await p.exited;
  note(`jobs ended: ${done.map((d) => d.status).join(', ')}`);

  const byJob = new Map(
    jobs.map((j) => [j.jobId, { seen: new Uint8Array(o.rows + 1), next: 1, count: 0, dup: 0, ooo: 0 }]),
  );
  await readTopic(o.outputs.kafka.brokers, topic, 600_000, (r) => {
    const s = byJob.get(r.headers['rowstream-job'] ?? '');
    if (!s) return;
    const row = Number(r.headers['rowstream-row']);
    s.count++;
    if (row >= 1 && row <= o.rows) {
      if (s.seen[row]) s.dup++;
      s.seen[row] = 1;
    }
    if (row !== s.next) s.ooo++;
    s.next = row + 1;
  });
  await proxy.close();
  const figures: JobFigures[] = jobs.map((j, i) => {
    const s = byJob.get(j.jobId)!;
    let missing = 0;
    for (let r = 1; r <= o.rows; r++) if (!s.seen[r]) missing++;
    const rec = done[i]!;
    return {
      jobId: j.jobId,
      status: rec.status,
      expected: o.rows,
      delivered: s.count,
      duplicated: s.dup,
      missing,
      outOfOrder: s.ooo,
      failure: rec.failure ? `${rec.failure.reason}: ${rec.failure.message}` : null,
    };
  });
  const sum = (k: 'delivered' | 'duplicated' | 'missing' | 'outOfOrder') =>
    figures.reduce((a, f) => a + f[k], 0);
  const jobsFailed = figures.filter((f) => f.status !== 'COMPLETED').length;
  const report = {
    faults: o.faults,
    jobs: figures,
    rowsExpected: total,
    rowsDelivered: sum('delivered'),
    duplicated: sum('duplicated'),
    missing: sum('missing'),
    outOfOrder: sum('outOfOrder'),
    jobsFailed,
    injected: proxy.stats,
    events,
    wallSeconds: Math.round((Date.now() - started) / 1000),
    ok:
      jobsFailed === 0 &&
      sum('delivered') === total &&
      sum('duplicated') === 0 &&
      sum('missing') === 0 &&
      sum('outOfOrder') === 0,
  };
  // A passed run's topic is deleted (every row was checked); a failed run's is kept to look at.
  if (report.ok) await deleteTopics(o.outputs.kafka.brokers, [topic]);
  else note(`topic ${topic} kept for inspection`);
  return report;
}
