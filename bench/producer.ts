/**
 * `npm run bench:producer [-- --rows 1000000,10000000 --encoders fast,library --tx 50000
 *   --inflight 1,5 --headers full,compact,batch --formats json,csv,typed-json,avro --runtime bundle|tsx --repeat 3
 *   --node-options image,--max-semi-space-size=8 --keys none,id --partitions 6 --metrics-compare none]`
 *
 * End-to-end producer throughput on the local stack: the CSV is an object in moto, the clock runs from
 * the JobStarted message to the job's COMPLETED record (all rows acknowledged by the broker inside
 * committed transactions), beside `kcat -P` producing the same file's lines to the same broker in the
 * same run (idempotent, acks=all), and the ratio to it. `--encoders`: the produce path, our record-batch
 * encoder (`fast`, the default) and/or the library's per-message path (`library`); `--inflight` and
 * `--headers` run each combination of produce requests in flight and record format, each right after
 * its own kcat run (`--repeat` rounds), printing the load average with each pair; the label names the
 * @platformatic/kafka version, so runs before and after an upgrade line up. `--formats`: the record
 * values, untyped JSON (the default), csv (the record text as the value), typed JSON and Avro in the Glue Schema Registry wire format (a
 * schema inferred from the rows, registered in the stage's registry, as the planner does); each run
 * also reads its topic back and reports value bytes per row. `--node-options`: NODE_OPTIONS sets of the
 * producer process (`image`: only the image's own flags). `--keys`: un-keyed (`none`) and/or keyed by a
 * column (the key column's values spread over the partitions); `--partitions`: every topic, the job's
 * and kcat's, is created with that many partitions (default 1) before its run is timed. Also peak RSS and CPU seconds of the producer process, how busy
 * the whole machine was during the job (bench/lib/machine.ts), metrics on vs off, and how far the ETA at 10%, 50%
 * and 90% was from the real finish. Installs kcat with apt-get when it is missing (Debian package kcat).
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import type { JobSchema } from '../events/catalog.ts';
import { buildProducer } from '../scripts/build-producer.ts';
import { awsClients } from '../services/shared/aws.ts';
import { committedRecords } from '../services/shared/kafka-committed.ts';
import { avroDefinition } from '../services/shared/schema/definition.ts';
import { inferColumns } from '../services/shared/schema/infer.ts';
import { glueRegistry } from '../services/shared/schema/registry-glue.ts';
import { deleteTopics, getJob, REPO, sendJobStarted, startProducer, uploadJob } from '../testkit/producer.ts';
import { ROWS_HEADER, rowValue, writeRowsFile } from '../testkit/rows.ts';
import { freshStack } from '../testkit/stack.ts';
import { ensureKcat, runKcat as runKcatLines } from './lib/kcat.ts';
import { busyShare, cpuSeconds, loadAverage, machineTicks } from './lib/machine.ts';
import { benchTopics } from './lib/topics.ts';

const opts = new Command('bench:producer')
  .option('--rows <counts>', 'comma-separated file sizes in rows', '1000000,10000000')
  .option('--encoders <list>', 'comma-separated: fast, library', 'fast')
  .option('--tx <n>', 'rows per transaction', '50000')
  .option('--metrics-compare <encoder>', 'encoder of the metrics on/off comparison (none: skip)', 'fast')
  .option('--inflight <list>', 'comma-separated produce requests in flight (1-5)', '5')
  .option('--headers <list>', 'comma-separated record header formats: compact, full, batch', 'compact')
  .option(
    '--runtime <kind>',
    'bundle (what the image runs: npm run build:producer) or tsx (the sources)',
    'bundle',
  )
  .option(
    '--formats <list>',
    'comma-separated record values: json, csv (the record text), typed-json, avro',
    'json',
  )
  .option('--repeat <n>', 'rounds of every variant, each paired with its own kcat run', '1')
  .option(
    '--keep-topics',
    'keep the topics written (default: each is deleted once measured, as the broker keeps them forever)',
  )
  .option('--keys <list>', "comma-separated key columns, one variant each ('none': an un-keyed job)", 'none')
  .option('--partitions <n>', "partitions of every topic (the job's and kcat's), created before the run", '1')
  .option(
    '--node-options <list>',
    "comma-separated NODE_OPTIONS of the producer process, one variant each ('image': the image's own flags)",
    'image',
  )
  .parse()
  .opts<{
    rows: string;
    encoders: string;
    tx: string;
    metricsCompare: string;
    inflight: string;
    headers: string;
    formats: string;
    runtime: string;
    repeat: string;
    keepTopics?: boolean;
    nodeOptions: string;
    keys: string;
    partitions: string;
  }>();
const sizes = opts.rows.split(',').map(Number);
type Encoder = 'fast' | 'library';
const encoders = opts.encoders.split(',') as Encoder[];
const txRows = opts.tx;
// Produce requests in flight (fast encoder) and record headers: each combination is one variant.
const inflights = opts.inflight.split(',').map(Number);
const headerModes = opts.headers.split(',');
type Format = 'json' | 'csv' | 'typed-json' | 'avro';
const formats = opts.formats.split(',') as Format[];
if (!['bundle', 'tsx'].includes(opts.runtime))
  throw new Error(`--runtime: bundle or tsx, not ${opts.runtime}`);
const bundle =
  opts.runtime === 'bundle'
    ? await buildProducer(join('.local', 'bench', 'producer', 'main.mjs'))
    : undefined;
for (const f of formats) {
  if (!['json', 'csv', 'typed-json', 'avro'].includes(f)) throw new Error(`--formats: unknown format ${f}`);
}
const repeat = Number(opts.repeat);
// 'image': no NODE_OPTIONS, so the producer runs with the flags the image's CMD gives it (PRODUCER_NODE_FLAGS).
const nodeOptionSets = opts.nodeOptions.split(',');
const keyColumns = opts.keys.split(',').map((k) => (k === 'none' ? null : k));
for (const k of keyColumns) {
  if (k !== null && !ROWS_HEADER.includes(k))
    throw new Error(`--keys: ${k} is not a column (${ROWS_HEADER})`);
}
const partitions = Number(opts.partitions);
if (!Number.isInteger(partitions) || partitions < 1)
  throw new Error(`--partitions: a count, not ${opts.partitions}`);
const metricsCompare = opts.metricsCompare;
const library = `${opts.runtime}-platformatic-kafka@${JSON.parse(readFileSync(join(REPO, 'node_modules/@platformatic/kafka/package.json'), 'utf8')).version}`;

const { outputs, env } = await freshStack('bench');
const aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
const kcat = ensureKcat();
const brokers = outputs.kafka.brokers.join(',');
const bench = await benchTopics(outputs.kafka.brokers, 'bench-producer');
/** Deletes a measured topic (unless --keep-topics): the local broker would keep it forever. */
async function dropTopic(topic: string): Promise<void> {
  if (!opts.keepTopics) await deleteTopics(outputs.kafka.brokers, [topic]);
}

/** Every topic, the job's and kcat's, with `--partitions` partitions, created before its run is timed. */
async function createTopic(topic: string): Promise<void> {
  await bench.createTopic(topic, partitions);
}

interface RunResult {
  label: string;
  rows: number;
  bytes: number;
  seconds: number;
  rowsPerSecond: number;
  mbPerSecond: number;
  peakRssMb: number | null;
  /** Producer runs only: its CPU seconds during the job and the machine's busy share (1 = all cores). */
  producerCpuSeconds?: number | null;
  machineBusy?: number;
  eta: { at: number; errorPercentOfRemaining: number; errorPercentOfTotal: number }[];
  /** Seconds since JobStarted when each 10% was checkpointed: shows warm-up and stalls behind ETA errors. */
  deciles?: number[];
  /** Record value bytes per row on the topic (read back, read_committed). */
  valueBytesPerRow?: number;
}

/**
 * The job's schema for a format, as the planner would give it: inferred from the first 10,000 rows;
 * for Avro registered as `<topic>-value` in the stage's registry.
 */
async function schemaFor(format: Format, topic: string): Promise<JobSchema | undefined> {
  if (format === 'json' || format === 'csv') return undefined;
  const sample = Array.from({ length: 10_000 }, (_, i) => ROWS_HEADER.map((h) => rowValue(i + 1)[h]!));
  const definition = avroDefinition(inferColumns(ROWS_HEADER, sample));
  if (format === 'typed-json') {
    return {
      source: 'inferred',
      registry: null,
      schemaName: null,
      version: null,
      versionId: null,
      definition,
    };
  }
  const registry = glueRegistry(aws.glue, outputs.schemaRegistry);
  const r = await registry.register(`${topic}-value`, definition, 'BACKWARD');
  return {
    source: 'inferred',
    registry: r.registry,
    schemaName: r.schemaName,
    version: r.version,
    versionId: r.versionId,
    definition,
  };
}

/** Records read back to measure value bytes per row: all of a small run, a sample of a big one. */
const VALUE_SAMPLE_RECORDS = 1_000_000;

async function valueBytesPerRow(topic: string, rows: number): Promise<number> {
  // Reading a 20M-row topic back (~4 GB) took longer than producing it; the first million records
  // (the bench's rows repeat their shapes) give the same average to the tenth of a byte.
  const want = Math.min(rows, VALUE_SAMPLE_RECORDS);
  let bytes = 0;
  let seen = 0;
  for await (const r of committedRecords({ bootstrapBrokers: [...outputs.kafka.brokers] }, topic)) {
    bytes += r.bytes.length;
    if (++seen >= want) break;
  }
  return Math.round((bytes / Math.max(seen, 1)) * 10) / 10;
}

function rssMb(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(s);
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

async function runProducer(
  label: string,
  encoder: Encoder,
  rows: number,
  file: { path: string; size: number; head: Buffer },
  metrics: boolean,
  variant: {
    inflight: number;
    headers: string;
    format: Format;
    nodeOptions: string;
    keyColumn: string | null;
  } = {
    inflight: 5,
    headers: 'compact',
    format: 'json',
    nodeOptions: 'image',
    keyColumn: null,
  },
): Promise<RunResult> {
  const topic = `bench-${encoder}-${randomBytes(3).toString('hex')}`;
  const key = `inbound/bench-${rows}-${randomBytes(2).toString('hex')}.csv`;
  await createTopic(topic);
  const uploaded = await uploadJob(aws.s3, outputs.bucket, key, file, {
    topic,
    totalRows: rows,
    options: { keyColumn: variant.keyColumn },
  });
  const schema = await schemaFor(variant.format, topic);
  const job = {
    ...uploaded,
    options: {
      ...uploaded.options,
      format: variant.format === 'avro' || variant.format === 'csv' ? variant.format : ('json' as const),
    },
    ...(schema ? { schema } : {}),
  };
  const p = startProducer(
    {
      ...env,
      ROWSTREAM_PRODUCER_FAST_ENCODER: encoder === 'fast' ? 'true' : 'false',
      ROWSTREAM_PRODUCER_MAX_INFLIGHT: String(variant.inflight),
      ROWSTREAM_PRODUCER_RECORD_HEADERS: variant.headers,
      ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
      ROWSTREAM_PRODUCER_TRANSACTION_ROWS: txRows,
      ROWSTREAM_PRODUCER_METRICS: metrics ? 'true' : 'false',
      ROWSTREAM_PRODUCER_METRICS_FLUSH_MS: '5000',
      ROWSTREAM_METRICS_SINK: `file:${join(REPO, '.local', 'bench', `emf-${label}.log`)}`,
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'WARN',
      NODE_OPTIONS: variant.nodeOptions === 'image' ? '' : variant.nodeOptions,
    },
    join(REPO, '.local', 'bench', `producer-${label}.log`),
    bundle ? { bundle } : {},
  );
  await new Promise((r) => setTimeout(r, 2500)); // process start (tsx) is not part of the measure
  const t0 = Date.now();
  const cpu0 = cpuSeconds(p.child.pid ?? 0);
  const machine0 = machineTicks();
  await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
    doc: aws.doc,
    table: outputs.tables.jobs,
  });
  const samples: { t: number; done: number; eta: number | null }[] = [];
  let rec = await getJob(aws.doc, outputs.tables.jobs, job.jobId);
  let peak: number | null = null;
  while (!rec || !['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED'].includes(rec.status)) {
    await new Promise((r) => setTimeout(r, 250));
    rec = await getJob(aws.doc, outputs.tables.jobs, job.jobId);
    if (rec?.checkpoint)
      samples.push({ t: Date.now(), done: rec.checkpoint.rowsDone, eta: rec.etaSeconds ?? null });
    peak = rssMb(p.child.pid ?? 0) ?? peak;
  }
  const t1 = Date.now();
  peak = rssMb(p.child.pid ?? 0) ?? peak;
  const cpu1 = cpuSeconds(p.child.pid ?? 0);
  const machine1 = machineTicks();
  p.kill('SIGTERM');
  await p.exited;
  if (rec.status === 'FAILED') throw new Error(`${label}: job failed: ${JSON.stringify(rec.failure)}`);
  const seconds = (t1 - t0) / 1000;
  const eta = [0.1, 0.5, 0.9].flatMap((at) => {
    const s = samples.find((x) => x.done >= at * rows && x.eta !== null);
    if (!s || s.eta === null) return [];
    const predicted = s.t + s.eta * 1000;
    return [
      {
        at,
        errorPercentOfRemaining: Math.round((Math.abs(predicted - t1) / Math.max(1, t1 - s.t)) * 1000) / 10,
        errorPercentOfTotal: Math.round((Math.abs(predicted - t1) / (t1 - t0)) * 1000) / 10,
      },
    ];
  });
  const deciles = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((d) => {
    const s = samples.find((x) => x.done >= (d / 10) * rows);
    return s ? Math.round((s.t - t0) / 100) / 10 : -1;
  });
  return {
    label,
    rows,
    bytes: file.size,
    seconds,
    deciles,
    rowsPerSecond: Math.round(rows / seconds),
    mbPerSecond: Math.round((file.size / 1e6 / seconds) * 10) / 10,
    peakRssMb: peak,
    // The producer's CPU seconds over the job, and how busy the whole machine was (all cores, 1 = full).
    producerCpuSeconds: cpu0 === null || cpu1 === null ? null : Math.round((cpu1 - cpu0) * 100) / 100,
    machineBusy: busyShare(machine0, machine1),
    eta,
    valueBytesPerRow: await valueBytesPerRow(topic, rows).finally(() => dropTopic(topic)),
  };
}

async function runKcat(rows: number, path: string, size: number): Promise<RunResult> {
  const { topic, ...k } = await runKcatLines({ kcat, brokers, rows, path, size, createTopic });
  await dropTopic(topic);
  return { ...k, peakRssMb: null, eta: [] };
}

const results: RunResult[] = [];
for (const rows of sizes) {
  const path = join(REPO, '.local', 'bench', `chaos-${rows}.csv`);
  console.log(`[bench] ${rows} rows: writing ${path}`);
  const file = { path, ...(await writeRowsFile(path, rows)) };
  // Each variant right after its own kcat run: the ratio is taken pair by pair.
  for (let round = 1; round <= repeat; round++) {
    for (const encoder of encoders) {
      for (const inflight of encoder === 'fast' ? inflights : [1]) {
        for (const headers of headerModes) {
          for (const format of formats) {
            for (const nodeOptions of nodeOptionSets) {
              for (const keyColumn of keyColumns) {
                const k = await runKcat(rows, path, file.size);
                results.push(k);
                const node = nodeOptions === 'image' ? '' : `-node[${nodeOptions}]`;
                const keyed = keyColumn === null ? '' : `-key[${keyColumn}]`;
                const parts = partitions > 1 ? `-p${partitions}` : '';
                const label = `${library}-${encoder}-inflight${inflight}-${headers}-${format}${node}${keyed}${parts}-${rows}-r${round}`;
                const r = await runProducer(label, encoder, rows, file, true, {
                  inflight,
                  headers,
                  format,
                  nodeOptions,
                  keyColumn,
                });
                results.push(r);
                console.log(
                  `[bench] round ${round} ${label}: ${r.rowsPerSecond} rows/s, ${r.mbPerSecond} MB/s, ${r.valueBytesPerRow} value bytes/row | kcat -P ${k.rowsPerSecond} rows/s | ${(r.rowsPerSecond / k.rowsPerSecond).toFixed(2)}x kcat | peak RSS ${r.peakRssMb} MB | producer CPU ${r.producerCpuSeconds} s, machine busy ${r.machineBusy} | load ${loadAverage()} | 10%..90% at ${JSON.stringify(r.deciles)} s`,
                );
              }
            }
          }
        }
      }
    }
  }
  if (encoders.includes(metricsCompare as Encoder)) {
    const variant = {
      inflight: inflights[0]!,
      headers: headerModes[0]!,
      format: formats[0]!,
      nodeOptions: nodeOptionSets[0]!,
      keyColumn: keyColumns[0]!,
    };
    const on = await runProducer(
      `${library}-${metricsCompare}-${rows}-metrics`,
      metricsCompare as Encoder,
      rows,
      file,
      true,
      variant,
    );
    const off = await runProducer(
      `${library}-${metricsCompare}-${rows}-nometrics`,
      metricsCompare as Encoder,
      rows,
      file,
      false,
      variant,
    );
    results.push(on, off);
    console.log(
      `[bench] metrics off: ${off.rowsPerSecond} rows/s vs on ${on.rowsPerSecond} rows/s (${(((off.rowsPerSecond - on.rowsPerSecond) / off.rowsPerSecond) * 100).toFixed(1)}% apart; single pair, see bench:metrics)`,
    );
  }
}
console.log(
  JSON.stringify({ library, node: process.version, transactionRows: Number(txRows), results }, null, 2),
);
await bench.admin.disconnect();
process.exit(0);
