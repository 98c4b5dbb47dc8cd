/**
 * Shared setup of the producer's fault tests on the real local stack (tests/integration/producer-*.test.ts):
 * a fresh stage, producer processes with short clocks, optionally talking to AWS through the fault
 * proxy, jobs of deterministic rows (testkit/rows.ts), and the topic checked row by row per job.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import type { JobStarted } from '../events/catalog.ts';
import { type FaultProxy, startFaultProxy } from '../local/fault-proxy.ts';
import { awsClients } from '../services/shared/aws.ts';
import type { JobRecord } from '../services/shared/jobs.ts';
import type { StackOutputs } from '../topology/topology.ts';
import {
  getJob,
  type ProducerProcess,
  REPO,
  readTopic,
  sendJobStarted,
  startProducer,
  uploadJob,
} from './producer.ts';
import { rowValue, writeRowsFile } from './rows.ts';
import { freshStack } from './stack.ts';

/** Short clocks, so a takeover or a failure happens in seconds. */
export const FAST_PRODUCER_ENV: Readonly<Record<string, string>> = {
  ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
  ROWSTREAM_PRODUCER_SWEEP_MS: '500',
  ROWSTREAM_PRODUCER_LEASE_MS: '3000',
  ROWSTREAM_PRODUCER_HEARTBEAT_MS: '500',
  ROWSTREAM_PRODUCER_CHECKPOINT_MS: '500',
  ROWSTREAM_PRODUCER_RETRY_BASE_MS: '100',
  ROWSTREAM_PRODUCER_RETRY_MAX_MS: '1000',
};

export interface FaultStage {
  readonly outputs: StackOutputs;
  /** The stage's service environment (straight to moto). */
  readonly env: Record<string, string>;
  readonly aws: ReturnType<typeof awsClients>;
  readonly proxy: FaultProxy;
  /**
   * A producer process on this stage; `viaProxy` sends its AWS calls through the fault proxy; `standby`
   * makes it poll a queue of its own (it only sweeps, or takes what `start(job, { standby })` sends),
   * so it can be started beside another producer without taking that one's JobStarted.
   */
  producer(
    name: string,
    extra?: Record<string, string>,
    o?: { viaProxy?: boolean; standby?: boolean },
  ): Promise<ProducerProcess>;
  /** A topic name of this test, `<prefix>-<random>`. */
  topic(prefix: string): string;
  /** Uploads `rows` deterministic rows (or `body`) and returns the JobStarted the planner would publish. */
  job(name: string, topic: string, rows: number, body?: Buffer): Promise<JobStarted>;
  /** Writes the planner's record (unless `plan: false`) and puts the JobStarted on the producer queue. */
  start(job: JobStarted, o?: { plan?: boolean; standby?: boolean }): Promise<void>;
  record(jobId: string): Promise<JobRecord | undefined>;
  /** Polls the job record until `done` holds. */
  waitFor(
    jobId: string,
    done: (r: JobRecord) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<JobRecord>;
  /** Runs the rowstream CLI against this stage (its outputs as the stack file). */
  cli(
    args: readonly string[],
    timeoutMs?: number,
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Stops every producer started so far (SIGKILL) and clears the proxy's rules (between tests). */
  stopProducers(): Promise<void>;
  /** stopProducers, and the proxy closed. */
  close(): Promise<void>;
}

export async function faultStage(prefix: string): Promise<FaultStage> {
  const { outputs, env } = await freshStack(prefix);
  const endpoint = outputs.endpoint;
  if (!endpoint) throw new Error('the fault tests need the local stack (an emulator endpoint)');
  const aws = awsClients({ region: outputs.region, endpoint });
  const proxy = await startFaultProxy(endpoint);
  const logDir = join(REPO, '.local', 'test-logs');
  const started: ProducerProcess[] = [];
  const dir = join(REPO, 'test-output', `faults-${outputs.stage}`);
  mkdirSync(dir, { recursive: true });
  const stackFile = join(dir, 'stack.json');
  writeFileSync(stackFile, JSON.stringify(outputs, null, 2));
  const standby = await aws.sqs.send(
    new CreateQueueCommand({ QueueName: `rowstream-${outputs.stage}-producer-standby` }),
  );
  const standbyUrl = standby.QueueUrl ?? '';
  const stopProducers = async () => {
    const all = started.splice(0);
    for (const p of all) p.kill('SIGKILL');
    await Promise.all(all.map((p) => p.exited));
    proxy.setRules([]);
  };
  return {
    outputs,
    env,
    aws,
    proxy,
    async producer(name, extra = {}, o = {}) {
      const p = startProducer(
        {
          ...env,
          ...FAST_PRODUCER_ENV,
          ROWSTREAM_METRICS_SINK: `file:${join(logDir, `${prefix}-${name}-emf-${outputs.stage}.log`)}`,
          ...(o.viaProxy ? { AWS_ENDPOINT_URL: proxy.url } : {}),
          ...(o.standby ? { ROWSTREAM_PRODUCER_QUEUE_URL: standbyUrl } : {}),
          ROWSTREAM_PRODUCER_ID: `${name}-${outputs.stage}`,
          ...extra,
        },
        join(logDir, `${prefix}-${name}-${outputs.stage}.log`),
      );
      started.push(p);
      await p.waitForLog(/producer started/, 120_000);
      return p;
    },
    topic: (p) => `${p}-${randomBytes(3).toString('hex')}`,
    async job(name, topic, rows, body) {
      const key = `inbound/${name}-${randomBytes(3).toString('hex')}.csv`;
      if (body) return uploadJob(aws.s3, outputs.bucket, key, body, { topic, totalRows: rows });
      const file = join(REPO, '.local', 'bench', `faults-test-${rows}.csv`);
      const { size, head } = await writeRowsFile(file, rows);
      return uploadJob(aws.s3, outputs.bucket, key, { path: file, size, head }, { topic, totalRows: rows });
    },
    async start(job, o = {}) {
      await sendJobStarted(
        aws.sqs,
        o.standby ? standbyUrl : outputs.queues.producer.url,
        job,
        o.plan === false ? undefined : { doc: aws.doc, table: outputs.tables.jobs },
      );
    },
    record: (jobId) => getJob(aws.doc, outputs.tables.jobs, jobId),
    async waitFor(jobId, done, timeoutMs = 60_000, what = 'the condition') {
      const deadline = Date.now() + timeoutMs;
      let last: JobRecord | undefined;
      while (Date.now() < deadline) {
        last = await getJob(aws.doc, outputs.tables.jobs, jobId);
        if (last && done(last)) return last;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(
        `job ${jobId}: ${what} not reached in ${timeoutMs} ms; last: ${JSON.stringify(last)?.slice(0, 600)}`,
      );
    },
    cli(args, timeoutMs = 120_000) {
      return new Promise((resolve, reject) => {
        const cliEnv: NodeJS.ProcessEnv = { ...process.env, ROWSTREAM_STACK_FILE: stackFile };
        delete cliEnv.ROWSTREAM_STAGE;
        const child = spawn(process.execPath, [join(REPO, 'bin', 'rowstream.mjs'), ...args], {
          cwd: REPO,
          env: cliEnv,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => {
          stdout += c.toString();
        });
        child.stderr.on('data', (c: Buffer) => {
          stderr += c.toString();
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.once('error', reject);
        child.once('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
    },
    stopProducers,
    async close() {
      await stopProducers();
      await proxy.close();
    },
  };
}

export interface RowCheck {
  readonly delivered: number;
  readonly duplicated: number;
  readonly missing: number;
  readonly outOfOrder: number;
  /** Values that differ from the row's expected JSON (testkit/rows.ts); only with `values`. */
  readonly badValues: number;
}

/**
 * The topic read back (read_committed, testkit/committed.ts) and compared row by row with 1..`rows`
 * for one job: how many records, rows seen twice, rows never seen, rows not following their
 * predecessor; with `values`, every value against the row's expected JSON.
 */
export async function checkJobRows(
  brokers: readonly string[],
  topic: string,
  jobId: string,
  rows: number,
  /**
   * `byValue`: the row is the value's `id` (the rows file's row number) and every record of the topic is
   * the job's: for the record format `batch`, whose records carry no job or row header but the last of
   * each batch.
   */
  o: { values?: boolean; skip?: ReadonlySet<number>; byValue?: boolean } = {},
): Promise<RowCheck> {
  const seen = new Uint8Array(rows + 1);
  let delivered = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let badValues = 0;
  let prev = 0;
  await readTopic(brokers, topic, 120_000, (r) => {
    if (!o.byValue && r.headers['rowstream-job'] !== jobId) return;
    const row = o.byValue
      ? Number((JSON.parse(r.value) as { id?: string }).id)
      : Number(r.headers['rowstream-row']);
    delivered++;
    if (row >= 1 && row <= rows) {
      if (seen[row]) duplicated++;
      seen[row] = 1;
    }
    if (row <= prev) outOfOrder++;
    prev = row;
    if (o.values && JSON.stringify(rowValue(row)) !== r.value) badValues++;
  });
  let missing = 0;
  for (let r = 1; r <= rows; r++) if (!seen[r] && !o.skip?.has(r)) missing++;
  return { delivered, duplicated, missing, outOfOrder, badValues };
}
