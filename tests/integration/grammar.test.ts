/**
 * One CSV grammar through the whole local pipeline: generated files (LF / CRLF / bare CR line ends,
 * BOM, blank lines, quoted fields holding the delimiter, quotes and line ends, literal quotes inside
 * unquoted fields, unicode, ragged rows, every supported delimiter) are put into the stage's bucket;
 * the real S3 notification reaches the planner (in process, as its Lambda entry wires it), its
 * JobStarted reaches a real producer process through the bus rule, and the topic is read back with
 * kafkajs and compared row by row with what Python's csv module reads from the same bytes.
 * Every job must satisfy totalRows == rowsDelivered + rowsRejected.
 *
 * The same run checks that no row data leaves the data path: a sentinel written into data rows (and
 * into the first row of a headerless file and of a file whose first row looks like data) must not
 * appear in any planner or producer log line, any event on the bus, or any item of the stage's tables.
 * And, with the same producer, that an object deleted after planning is not streamed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import type { Message } from '@aws-sdk/client-sqs';
import { parse as parseCsv } from 'csv-parse/sync';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobFailed, JobStarted } from '../../events/catalog.ts';
import { eventIdFor, jobIdFor } from '../../events/ids.ts';
import { runSqsLambda } from '../../local/runner/sqs-lambda.ts';
import { createAlarmRouterService } from '../../services/alarm-router/handler.ts';
import { loadAlarmRouterConfig } from '../../services/alarm-router/settings.ts';
import { createPlanner, type Planner } from '../../services/planner/handler.ts';
import { PlannerEnv } from '../../services/planner/settings.ts';
import { type AwsClients, awsClients } from '../../services/shared/aws.ts';
import { loadConfig } from '../../services/shared/config.ts';
import { SUPPORTED_DELIMITERS } from '../../services/shared/csv.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { createLogger, type Log, type LogAttributes } from '../../services/shared/logger.ts';
import { BufferedMetrics, MemorySink } from '../../services/shared/metrics.ts';
import { serviceRuntime } from '../../services/shared/runtime.ts';
import { rng } from '../../testkit/csv.ts';
import {
  type ProducerProcess,
  REPO,
  readTopic,
  sendJobStarted,
  startProducer,
  type TopicRecord,
  uploadJob,
  waitForJob,
} from '../../testkit/producer.ts';
import { createTestQueue, receiveUntil, tapBus } from '../../testkit/sqs.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

/** Appears in data rows only: nowhere else may it show up. */
const SENTINEL = 'zq-sentinel-5150';

// ---- generated files -----------------------------------------------------------------------------

const EOLS = ['\n', '\r\n', '\r'] as const;
const PLAIN = ['a', 'b', 'Z', '0', '7', ' ', '-', 'é', 'ß', '中', '😀', '\u2028', '.', "'"];

/** A field as written in the file, never holding the delimiter or a line end outside quotes. */
function field(r: () => number, delim: string): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const plain = (min: number, max: number) =>
    Array.from({ length: min + Math.floor(r() * (max - min + 1)) }, () => pick(PLAIN)).join('');
  const k = r();
  if (k < 0.05) return SENTINEL;
  if (k < 0.4) return plain(0, 6);
  if (k < 0.8) {
    // Quoted: the delimiter (and the others), quotes, every line end, the sentinel now and then.
    const parts = [...PLAIN, delim, ',', ';', '\t', '"', '\n', '\r\n', '\r', SENTINEL];
    const content = Array.from({ length: Math.floor(r() * 8) }, () => pick(parts)).join('');
    return `"${content.replaceAll('"', '""')}"`;
  }
  // A literal quote inside an unquoted field (`a"b`, `7""`): never at the field's start.
  let s = plain(1, 3).trimStart() || 'x';
  s += '"';
  for (let i = Math.floor(r() * 4); i > 0; i--) s += r() < 0.3 ? '"' : pick(PLAIN);
  return s;
}

interface GenFile {
  readonly name: string;
  readonly bytes: Buffer;
  readonly delimiter: string;
  readonly metadata: Record<string, string>;
  /** rowstream-header=none: the first row is data. */
  readonly headerless: boolean;
}

/** A file mixing everything the grammar knows; deterministic from `seed`. */
function grammarFile(seed: number, delimiter: string, topic: string): GenFile {
  const r = rng(seed);
  const eol = () => EOLS[Math.floor(r() * EOLS.length)]!;
  const columns = 1 + Math.floor(r() * 4);
  // Lossless names: unicode, a quoted name holding the delimiter, names an object would mishandle.
  const names = ['id', 'naïve name', `"a${delimiter}b"`, '__proto__', 'constructor', 'Zoë 😀'];
  let text = r() < 0.4 ? '\ufeff' : '';
  for (let i = Math.floor(r() * 3); i > 0; i--) text += eol();
  text += names.slice(0, columns).join(delimiter) + eol();
  const rows = 25 + Math.floor(r() * 20);
  for (let i = 0; i < rows; i++) {
    if (r() < 0.1) {
      text += eol(); // an empty line: not a row
      continue;
    }
    // Mostly the header's width; now and then one field more or less (a rejected row).
    const width = r() < 0.1 ? Math.max(1, columns + (r() < 0.5 ? -1 : 1)) : columns;
    let rec = Array.from({ length: width }, () => field(r, delimiter)).join(delimiter);
    // One empty unquoted field would be an empty line: a quoted empty field is a row.
    if (rec === '') rec = '""';
    text += rec + (i < rows - 1 || r() < 0.6 ? eol() : '');
  }
  return {
    name: `seed-${seed}`,
    bytes: Buffer.from(text),
    delimiter,
    metadata: {
      'rowstream-topic': topic,
      'rowstream-delimiter': delimiter === '\t' ? 'tab' : delimiter,
    },
    headerless: false,
  };
}

/** Every row Python's csv module reads (empty rows skipped), header included unless `headerless`. */
function pythonRows(f: GenFile): { header: string[] | null; rows: string[][] } {
  const script =
    'import csv,sys,json,io\n' +
    'text=sys.stdin.buffer.read().decode("utf-8-sig")\n' +
    'rows=[r for r in csv.reader(io.StringIO(text, newline=""), delimiter=sys.argv[1]) if r]\n' +
    'print(json.dumps(rows))';
  const all = JSON.parse(
    execFileSync('python3', ['-c', script, f.delimiter], { input: f.bytes }).toString(),
  ) as string[][];
  return f.headerless ? { header: null, rows: all } : { header: all[0] ?? [], rows: all.slice(1) };
}

// ---- the stage -----------------------------------------------------------------------------------

let outputs: StackOutputs;
let clients: AwsClients;
let planner: Planner;
let producer: ProducerProcess;
let producerLog: string;
let everything: { url: string };
/** Every SNS message of the stage's three alert topics. */
let alerts: { url: string; arn: string };
let stackEnv: Record<string, string>;
/** Every line the planner (and the alarm-router) logged, at DEBUG, as JSON. */
const plannerLines: string[] = [];
const logDir = join(REPO, '.local', 'test-logs');

/** A {@link Log} that writes through `inner` and keeps each line (message and attributes) as JSON. */
function recording(inner: Log, keys: LogAttributes = {}): Log {
  const keep =
    (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, attributes?: LogAttributes) => {
      const error = attributes?.error as Error | undefined;
      plannerLines.push(
        JSON.stringify({ level, message, ...keys, ...attributes, error: error?.stack ?? error }),
      );
      inner[level](message, attributes);
    };
  return {
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
    child: (more) => recording(inner.child(more), { ...keys, ...more }),
  };
}

beforeAll(async () => {
  const stack = await freshStack('gr');

  outputs = stack.outputs;
  const config = loadConfig(PlannerEnv, { ...stack.env, LOG_LEVEL: 'DEBUG' });
  clients = awsClients({ region: config.AWS_REGION, endpoint: config.AWS_ENDPOINT_URL });
  planner = createPlanner(
    config,
    serviceRuntime('planner', config, {
      clients,
      log: recording(createLogger('planner', { stage: outputs.stage, level: 'DEBUG' })),
      metrics: new BufferedMetrics({
        sink: new MemorySink(),
        defaultDimensions: { Service: 'planner', Stage: outputs.stage },
      }),
    }),
  );
  // Every rowstream event on the stage's bus, whatever its rule.
  everything = await tapBus(clients, outputs.busName, `${outputs.stage}-all-events`, {
    source: [{ prefix: 'rowstream.' }],
  });
  alerts = await createTestQueue(clients.sqs, `${outputs.stage}-all-alerts`);
  for (const topic of Object.values(outputs.topics)) {
    await clients.sns.send(
      new SubscribeCommand({ TopicArn: topic.arn, Protocol: 'sqs', Endpoint: alerts.arn }),
    );
  }
  stackEnv = stack.env;
  producerLog = join(logDir, `producer-grammar-${outputs.stage}.log`);
  producer = startProducer(
    {
      ...stack.env,
      LOG_LEVEL: 'DEBUG',
      ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
      ROWSTREAM_PRODUCER_SWEEP_MS: '2000',
      // Several jobs at once, a few transactions each: the grammar is the point here, not the pacing.
      ROWSTREAM_PRODUCER_CONCURRENCY: '4',
      ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '20',
      ROWSTREAM_PRODUCER_BATCH_ROWS: '7',
      ROWSTREAM_METRICS_SINK: `file:${join(logDir, `producer-grammar-emf-${outputs.stage}.log`)}`,
    },
    producerLog,
  );
  await producer.waitForLog(/producer started/);
});

afterAll(async () => {
  producer?.kill('SIGTERM');
  await producer?.exited;
});

async function drainPlanner() {
  const failed: string[] = [];
  await runSqsLambda({
    queueUrl: outputs.queues.planner.url,
    handler: planner.handler,
    sqs: clients.sqs,
    signal: new AbortController().signal,
    waitSeconds: 1,
    stopWhenIdle: 1,
    functionName: 'planner',
    onBatch: (b) => failed.push(...b.failed),
  });
  return failed;
}

async function put(key: string, f: { bytes: Buffer; metadata: Record<string, string> }) {
  const out = await clients.s3.send(
    new PutObjectCommand({
      Bucket: outputs.bucket,
      Key: key,
      Body: f.bytes,
      ContentLength: f.bytes.length,
      Metadata: f.metadata,
    }),
  );
  return jobIdFor(outputs.bucket, key, {
    versionId: out.VersionId ?? null,
    etag: (out.ETag ?? '').replaceAll('"', ''),
  });
}

const done = (r: JobRecord) => r.status !== 'PLANNED' && r.status !== 'RUNNING';

// ---- tests ---------------------------------------------------------------------------------------

describe('one grammar through planner, producer and Kafka, against Python csv', () => {
  const files: GenFile[] = [];
  const topics = new Map<string, string>();
  const jobs = new Map<string, string>();
  const records = new Map<string, TopicRecord[]>();
  const finals = new Map<string, JobRecord>();
  const py = new Map<string, ReturnType<typeof pythonRows>>();
  let rejectedKey = '';

  beforeAll(async () => {
    // Prepare: two files per supported delimiter, and a headerless file (rowstream-header=none)
    // whose first row carries the sentinel.
    const run = randomBytes(3).toString('hex');
    let seed = 1;
    for (const d of SUPPORTED_DELIMITERS) {
      for (let k = 0; k < 2; k++) {
        const topic = `it-grammar-${run}-${seed}`;
        const f = grammarFile(seed++, d, topic);
        files.push(f);
        topics.set(f.name, topic);
      }
    }
    const noHeader = grammarFile(seed++, ',', `it-grammar-${run}-noheader`);
    const firstRow = `${SENTINEL},2026-11-30,42\r\n`;
    const headerless: GenFile = {
      name: 'headerless',
      bytes: Buffer.from(`${firstRow}${SENTINEL}-2,"x\ny",7\n`),
      delimiter: ',',
      metadata: { ...noHeader.metadata, 'rowstream-header': 'none' },
      headerless: true,
    };
    files.push(headerless);
    topics.set(headerless.name, noHeader.metadata['rowstream-topic']!);

    // Act
    for (const f of files) jobs.set(f.name, await put(`inbound/grammar/${f.name}.csv`, f));
    // A first row that looks like data (a date, a number): rejected without quoting it.
    rejectedKey = 'inbound/grammar/looks-like-data.csv';
    jobs.set('looks-like-data', await put(rejectedKey, { bytes: Buffer.from(firstRow), metadata: {} }));
    expect(await drainPlanner()).toEqual([]);
    for (const f of files) {
      py.set(f.name, pythonRows(f));
      finals.set(f.name, await waitForJob(clients.doc, outputs.tables.jobs, jobs.get(f.name)!, done, 90_000));
    }
    // In parallel: each read ends with a quiet period.
    await Promise.all(
      files.map(async (f) =>
        records.set(f.name, await readTopic(outputs.kafka.brokers, topics.get(f.name)!, 60_000)),
      ),
    );
  });

  it('plans and completes every file, totalRows == rowsDelivered + rowsRejected == Python rows', () => {
    for (const f of files) {
      const { rows } = py.get(f.name)!;
      const job = finals.get(f.name)!;
      expect.soft(job.status, f.name).toMatch(/^COMPLETED/);
      expect.soft(job.totalRows, f.name).toBe(rows.length);
      expect.soft((job.rowsDelivered ?? -1) + (job.rowsRejected ?? -1), f.name).toBe(job.totalRows);
    }
  });

  it('delivers exactly the rows Python reads with the header width, in order, field by field', () => {
    let delivered = 0;
    let rejected = 0;
    for (const f of files) {
      const { header: pyHeader, rows } = py.get(f.name)!;
      const header = f.headerless
        ? Array.from({ length: rows[0]!.length }, (_, i) => `col_${i + 1}`)
        : pyHeader!;
      const expected = rows
        .map((fields, i) => ({ row: i + 1, fields }))
        .filter((r) => r.fields.length === header.length);
      const got = records.get(f.name)!;
      expect
        .soft(
          got.map((r) => Number(r.headers['rowstream-row'])),
          f.name,
        )
        .toEqual(expected.map((r) => r.row));
      // The JSON value is an object with every header column, in header order.
      expect
        .soft(
          got.map((r) => Object.entries(JSON.parse(r.value) as Record<string, string>)),
          f.name,
        )
        .toEqual(expected.map((r) => header.map((h, i) => [h, r.fields[i]])));
      expect.soft(finals.get(f.name)!.rowsRejected, f.name).toBe(rows.length - expected.length);
      delivered += expected.length;
      rejected += rows.length - expected.length;
    }
    // The generator did produce both kinds (else this test would prove less than it says).
    expect(delivered).toBeGreaterThan(200);
    expect(rejected).toBeGreaterThan(5);
  });

  it('writes the ragged rows, and only those, to the rejects object with their row numbers', async () => {
    for (const f of files) {
      const { header, rows } = py.get(f.name)!;
      const width = f.headerless ? rows[0]!.length : header!.length;
      const bad = rows.map((r, i) => (r.length === width ? 0 : i + 1)).filter((n) => n > 0);
      const uri = finals.get(f.name)!.rejectsUri;
      if (bad.length === 0) {
        expect.soft(uri ?? null, f.name).toBeNull();
        continue;
      }
      const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri ?? '') ?? [];
      const body = await clients.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const lines = parseCsv(await body.Body!.transformToString(), { columns: true }) as {
        row: string;
        reason: string;
      }[];
      expect
        .soft(
          lines.map((l) => [Number(l.row), l.reason]),
          f.name,
        )
        .toEqual(bad.map((n) => [n, 'WRONG_FIELD_COUNT']));
    }
  });

  it('puts no row data in logs, events, alerts or table items (a sentinel from the data rows is nowhere)', async () => {
    // Prepare: every event the run put on the bus, the alerts the alarm-router sends about them, the
    // tables' items, the services' logs.
    const events = await receiveUntil(
      clients.sqs,
      everything.url,
      (ms: readonly Message[]) =>
        ms.filter((m) => (m.Body ?? '').includes('"JobCompleted.v1"')).length >= files.length,
      15_000,
    );
    const bodies = events.map((m) => m.Body ?? '');
    const routerConfig = loadAlarmRouterConfig({ ...stackEnv, LOG_LEVEL: 'DEBUG' });
    const router = createAlarmRouterService(
      routerConfig,
      serviceRuntime('alarm-router', routerConfig, {
        clients,
        log: recording(createLogger('alarm-router', { stage: outputs.stage, level: 'DEBUG' })),
        metrics: new BufferedMetrics({
          sink: new MemorySink(),
          defaultDimensions: { Service: 'alarm-router', Stage: outputs.stage },
        }),
      }),
    );
    await runSqsLambda({
      queueUrl: outputs.queues.alarmRouter.url,
      handler: router.handler,
      sqs: clients.sqs,
      signal: new AbortController().signal,
      waitSeconds: 1,
      stopWhenIdle: 1,
      functionName: 'alarm-router',
    });
    const sns = (await receiveUntil(clients.sqs, alerts.url, (ms) => ms.length >= 2, 5_000)).map(
      (m) => m.Body ?? '',
    );
    const items: string[] = [];
    for (const table of [outputs.tables.jobs, outputs.tables.counts, outputs.tables.state]) {
      const out = await clients.dynamo.send(new ScanCommand({ TableName: table }));
      items.push(...(out.Items ?? []).map((i) => JSON.stringify(i)));
    }
    const producerLines = readFileSync(producerLog, 'utf8').split('\n');

    // Assess: the probes saw what they had to see, and none holds the sentinel.
    expect(bodies.some((b) => b.includes('"JobStarted.v1"'))).toBe(true);
    expect(bodies.some((b) => b.includes('"JobRejected.v1"') && b.includes('looks-like-data'))).toBe(true);
    // The BAD_HEADER rejection (warning) and the completions with rejects (info) were alerted.
    expect(sns.some((m) => m.includes('looks-like-data'))).toBe(true);
    expect(sns.length).toBeGreaterThanOrEqual(2);
    expect(items.length).toBeGreaterThan(files.length);
    expect(plannerLines.length).toBeGreaterThan(files.length);
    expect(producerLines.some((l) => l.includes('job completed'))).toBe(true);
    const leaks = [
      ...bodies.map((b) => `event ${b}`),
      ...sns.map((m) => `sns ${m}`),
      ...items.map((i) => `item ${i}`),
      ...plannerLines.map((l) => `planner ${l}`),
      ...producerLines.map((l) => `producer ${l}`),
    ].filter((s) => s.includes(SENTINEL));
    expect(leaks).toEqual([]);
  });

  it('rejects the file whose first row looks like data, naming the column, not the value', async () => {
    const final = await waitForJob(
      clients.doc,
      outputs.tables.jobs,
      jobs.get('looks-like-data')!,
      (r) => r.status === 'REJECTED',
      10_000,
    );
    expect(final.rejection?.reason).toBe('BAD_HEADER');
    expect(final.rejection?.message).toMatch(/column 2 is a date/);
    expect(final.rejection?.message).not.toContain('2026');
    expect(final.header ?? []).toEqual([]);
  });
});

describe('an object deleted between planning and producing is not streamed', () => {
  it('fails the job OBJECT_NOT_FOUND, before any row, for a delete marker and for a deleted version', async () => {
    // Prepare: two planned jobs (record written, as the planner does), each object then deleted: one
    // with a plain DELETE (a delete marker; the version stays readable), one version for good.
    const topic = `it-grammar-vanished-${randomBytes(3).toString('hex')}`;
    const body = Buffer.from(`id,note\n1,${SENTINEL}\n2,b\n`);
    const planned: JobStarted[] = [];
    for (const how of ['marker', 'version'] as const) {
      const key = `inbound/vanished/${how}.csv`;
      const base = await uploadJob(clients.s3, outputs.bucket, key, body, { topic, totalRows: 2 });
      const { VersionId } = await clients.s3.send(
        new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: body }),
      );
      const versionId = VersionId ?? null;
      const jobId = jobIdFor(outputs.bucket, key, { versionId, etag: base.etag });
      const job = { ...base, jobId, versionId, eventId: eventIdFor('JobStarted', jobId) };
      expect(versionId).toBeTruthy();
      await clients.s3.send(
        new DeleteObjectCommand({
          Bucket: outputs.bucket,
          Key: key,
          ...(how === 'version' ? { VersionId: versionId! } : {}),
        }),
      );
      planned.push(job);
    }

    // Act
    for (const job of planned)
      await sendJobStarted(clients.sqs, outputs.queues.producer.url, job, {
        doc: clients.doc,
        table: outputs.tables.jobs,
      });
    const finals = [];
    for (const job of planned)
      finals.push(await waitForJob(clients.doc, outputs.tables.jobs, job.jobId, done, 60_000));
    const failed = await receiveUntil(
      clients.sqs,
      everything.url,
      (ms) => planned.every((j) => ms.some((m) => (m.Body ?? '').includes(`"jobId":"${j.jobId}"`))),
      15_000,
    );

    // Assess
    for (const [i, final] of finals.entries()) {
      const job = planned[i]!;
      expect(final).toMatchObject({
        status: 'FAILED',
        rowsDelivered: 0,
        failure: { reason: 'OBJECT_NOT_FOUND' },
      });
      expect(final.failure?.message).toMatch(
        new RegExp(
          `${job.key}.*\\(version ${job.versionId}\\) no longer exists: it was deleted after it was planned`,
        ),
      );
      const events = failed
        .map((m) => JSON.parse(m.Body ?? '{}') as { 'detail-type': string; detail: JobFailed })
        .filter((e) => e['detail-type'] === 'JobFailed.v1' && e.detail.jobId === job.jobId);
      expect(events.map((e) => [e.detail.reason, e.detail.message])).toEqual([
        ['OBJECT_NOT_FOUND', final.failure?.message],
      ]);
    }
    // Not a row was sent: the job's topic was never even created (the producer may create topics here).
    const admin = new Kafka({ brokers: [...outputs.kafka.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const existing = await admin.listTopics().finally(() => admin.disconnect());
    expect(existing.some((t) => t.startsWith('it-grammar-'))).toBe(true);
    expect(existing).not.toContain(topic);
  });
});
