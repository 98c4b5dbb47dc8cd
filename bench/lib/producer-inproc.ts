/**
 * `npx tsx bench/lib/producer-inproc.ts [--rows 1000000] [--kafka real|fake] [--client platformatic|kafkajs]`
 *
 * In-process producer throughput, for quick iteration on the hot path: the real core (`runJob`) reads
 * the bench CSV from memory in S3-sized chunks (no moto, no process start), with in-memory jobs /
 * rejects / bus fakes and either the real Kafka adapter against the local broker or a fake Kafka that
 * only counts (the upper bound the core itself allows). Not the headline figure: bench/producer.ts
 * measures end to end.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BusPort } from '../../events/bus.ts';
import type { JobStarted } from '../../events/catalog.ts';
import { kafkajsKafka } from '../../services/producer/adapters/kafka-kafkajs.ts';
import { platformaticKafka } from '../../services/producer/adapters/kafka-platformatic.ts';
import { runJob } from '../../services/producer/core.ts';
import type { JobProducer, JobsStore, KafkaPort } from '../../services/producer/ports.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { NO_METRICS } from '../../services/shared/metrics.ts';
import { describeCsv, REPO } from './producer-harness.ts';
import { writeRowsFile } from './producer-rows.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
};
const rows = Number(arg('rows', '1000000'));
const kafkaKind = arg('kafka', 'real');
const client = arg('client', 'platformatic');
const chunkBytes = Number(arg('chunk', String(64 * 1024)));
const brokers = arg('brokers', '127.0.0.1:9092').split(',');

const path = join(REPO, '.local', 'bench', `chaos-${rows}.csv`);
const { size } = await writeRowsFile(path, rows);
const body = readFileSync(path);
const { header, dataOffset } = describeCsv(body.subarray(0, 64 * 1024));
const jobId = `inproc-${randomBytes(4).toString('hex')}`;
const job: JobStarted = {
  eventId: `e-${jobId}`,
  occurredAt: new Date().toISOString(),
  jobId,
  bucket: 'bench',
  key: `inbound/${jobId}.csv`,
  etag: 'x',
  versionId: null,
  sourceUri: `s3://bench/inbound/${jobId}.csv`,
  size,
  totalRows: rows,
  header,
  dataOffset,
  topic: `inproc-${randomBytes(3).toString('hex')}`,
  options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: false },
};

let sent = 0;
const fakeKafka: KafkaPort = {
  async openJob(): Promise<JobProducer> {
    return {
      async begin() {},
      async send(records) {
        sent += records.length;
        return [{ partition: 0, baseOffset: String(sent - records.length), count: records.length }];
      },
      async commit() {},
      async abort() {},
      async close() {},
    };
  },
  async readLastCommitted() {
    return null;
  },
  async close() {},
};
const settings = { brokers, clientId: 'inproc-bench', transactionTimeoutMs: 15_000, fenceRetryMs: 30_000 };
const kafka =
  kafkaKind === 'fake'
    ? fakeKafka
    : client === 'kafkajs'
      ? kafkajsKafka(settings)
      : platformaticKafka(settings);

let record: JobRecord | null = null;
const jobs: JobsStore = {
  async claim(j) {
    record = { jobId: j.jobId, status: 'RUNNING', attempts: 1 } as unknown as JobRecord;
    return { kind: 'claimed', record, resumed: false };
  },
  async renew() {},
  async checkpoint() {},
  async finish() {},
  async release() {},
};
const bus: BusPort = { putEntries: async (entries) => entries.map(() => ({ ok: true })) } as BusPort;

const t0 = performance.now();
const outcome = await runJob(
  job,
  {
    jobs,
    kafka,
    reader: {
      async *open(_ref, from) {
        for (let i = from; i < body.length; i += chunkBytes) yield body.subarray(i, i + chunkBytes);
      },
    },
    rejects: {
      async writePart() {},
      async combine() {
        return { uri: null, rows: 0 };
      },
      async cleanup() {},
    },
    bus,
    metrics: NO_METRICS,
    logger: createLogger('producer', { level: 'WARN' }),
    now: Date.now,
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    shutdown: new AbortController().signal,
  },
  {
    owner: 'inproc',
    leaseMs: 60_000,
    heartbeatMs: 30_000,
    checkpointRows: 200_000,
    checkpointMs: 5_000,
    transactionRows: Number(arg('tx', '50000')),
    transactionMs: 5_000,
    batchRows: Number(arg('batch-rows', '5000')),
    batchBytes: Number(arg('batch-bytes', '900000')),
    maxMessageBytes: 1_000_000,
    maxAttempts: 20,
    kafkaRetries: 5,
    readRetries: 5,
    retryBaseMs: 200,
    progressMs: 60_000,
    failOnBadRow: null,
    crashAfterCommit: 0,
  },
);
const seconds = (performance.now() - t0) / 1000;
await kafka.close();
console.log(
  JSON.stringify({
    kafka: kafkaKind === 'fake' ? 'fake' : client,
    rows,
    outcome,
    seconds: Math.round(seconds * 100) / 100,
    rowsPerSecond: Math.round(rows / seconds),
    mbPerSecond: Math.round((size / 1e6 / seconds) * 10) / 10,
    rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
  }),
);
process.exit(0);
