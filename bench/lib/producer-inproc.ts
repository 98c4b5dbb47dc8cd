/**
 * `npx tsx bench/lib/producer-inproc.ts [--rows 1000000] [--kafka real|encode|fake]
 *   [--metrics off|on] [--flush-ms 10000] [--json]`
 *
 * In-process producer throughput, for quick iteration on the hot path: the real core (`runJob`) reads
 * the bench CSV from memory in S3-sized chunks (no moto, no process start), with in-memory jobs /
 * rejects / bus fakes and either the real Kafka adapter against the local broker, or a fake Kafka that
 * only counts (the upper bound the core itself allows), or one that also encodes and seals (CRC-32C)
 * each batch as the adapter does and sends nothing (`encode`: the producer's own CPU per row, without
 * the broker's noise on a shared machine). Not the headline figure: bench/producer.ts
 * measures end to end. `runInproc` is the same run as a function, for bench/metrics-overhead.ts and
 * bench/eta.ts.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import type { BusPort } from '../../events/bus.ts';
import { type JobStarted, RecordHeaders } from '../../events/catalog.ts';
import { localEndpoints } from '../../local/config.ts';
import { BatchEncoder, sealBatch } from '../../services/producer/adapters/kafka-batch.ts';
import { batchCrc32c, platformaticKafka } from '../../services/producer/adapters/kafka-platformatic.ts';
import { type JobOutcome, runJob } from '../../services/producer/core.ts';
import { lastRecordOnlyHeaders } from '../../services/producer/job/records.ts';
import type { JobProducer, JobsStore, KafkaPort } from '../../services/producer/ports.ts';
import { ProducerEnv } from '../../services/producer/settings.ts';
import { emfSink } from '../../services/shared/emf.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { BufferedMetrics, type MetricsPort, NO_METRICS } from '../../services/shared/metrics.ts';
import { deleteTopics, describeCsv, REPO } from '../../testkit/producer.ts';
import { writeRowsFile } from '../../testkit/rows.ts';

/** The producer's own default flush interval (ROWSTREAM_PRODUCER_METRICS_FLUSH_MS), not a copy of it. */
export const PRODUCER_FLUSH_MS: number =
  ProducerEnv.shape.ROWSTREAM_PRODUCER_METRICS_FLUSH_MS.parse(undefined);

export interface InprocOptions {
  readonly rows: number;
  readonly kafka: 'real' | 'encode' | 'fake';
  readonly brokers?: readonly string[];
  readonly chunkBytes?: number;
  readonly transactionRows?: number;
  readonly batchRows?: number;
  readonly batchBytes?: number;
  /** Produce requests in flight (the adapter's default when absent). */
  readonly maxInflight?: number;
  readonly recordHeaders?: RecordHeaders;
  /** NO_METRICS when absent. */
  readonly metrics?: MetricsPort;
  /** Every checkpoint the core writes (the job record's rate and ETA). */
  readonly onCheckpoint?: (
    at: number,
    rowsDone: number,
    extra: { rowsPerSecond: number; etaSeconds: number | null },
  ) => void;
}

export interface InprocResult {
  readonly kafka: string;
  readonly rows: number;
  readonly bytes: number;
  readonly outcome: JobOutcome;
  /** Wall time of runJob (claim to completion), milliseconds. */
  readonly ms: number;
  /** CPU time (user + system, all threads) of this process during runJob, milliseconds. */
  readonly cpuMs: number;
  /** Share of the job's wall time the main thread was busy (1 = never waiting for I/O). */
  readonly eventLoopUtilization: number;
  readonly startedAt: number;
  /** When runJob returned (after closing the job's Kafka producer). */
  readonly finishedAt: number;
  /** When the terminal status was written (what operators see as the finish; null if none). */
  readonly completedAt: number | null;
}

/** Runs one job through the real core with the file from memory; see the header of this file. */
export async function runInproc(opts: InprocOptions): Promise<InprocResult> {
  const rows = opts.rows;
  const chunkBytes = opts.chunkBytes ?? 64 * 1024;
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
  const encoder =
    opts.kafka === 'encode'
      ? new BatchEncoder(new Set(), lastRecordOnlyHeaders(opts.recordHeaders ?? 'compact'))
      : null;
  const fakeKafka: KafkaPort = {
    async place(_jobId, _topic, keyed) {
      return { partitions: 1, partition: 0, keyed };
    },
    async openJob(): Promise<JobProducer> {
      return {
        async begin() {},
        async send(records) {
          if (encoder) {
            const { buffer } = encoder.encode(records, null);
            const seal = { producerId: 1n, producerEpoch: 0, baseSequence: sent, transactional: true };
            sealBatch(buffer, { ...seal, timestamp: BigInt(Date.now()) }, batchCrc32c);
          }
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
    async topicLimits() {
      return { maxMessageBytes: null };
    },
    async close() {},
  };
  const settings = {
    brokers: [...(opts.brokers ?? localEndpoints().brokers)],
    clientId: 'inproc-bench',
    transactionTimeoutMs: 15_000,
    fenceRetryMs: 30_000,
    ...(opts.maxInflight ? { maxInflight: opts.maxInflight } : {}),
    ...(opts.recordHeaders ? { recordHeaders: opts.recordHeaders } : {}),
  };
  const kafka =
    opts.kafka !== 'real' ? fakeKafka : platformaticKafka({ ...settings, autocreateTopics: true });

  let record: JobRecord | null = null;
  let completedAt: number | null = null;
  const jobs: JobsStore = {
    async claim(j) {
      record = { jobId: j.jobId, status: 'RUNNING', attempts: 1 } as unknown as JobRecord;
      return { kind: 'claimed', record, resumed: false };
    },
    async recover() {
      return { kind: 'busy', owner: 'none', expiresAt: 0 };
    },
    async renew() {},
    async checkpoint(_jobId, _owner, cp, extra) {
      opts.onCheckpoint?.(Date.now(), cp.rowsDone, extra);
    },
    async finish() {
      completedAt = Date.now();
    },
    async release() {},
  };
  const bus: BusPort = { putEntries: async (entries) => entries.map(() => ({ ok: true })) } as BusPort;

  const startedAt = Date.now();
  // CPU time of this process over the job: what metrics cost is CPU in this process, and CPU time
  // moves far less than wall time when other work shares the 2 cores.
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
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
      metrics: opts.metrics ?? NO_METRICS,
      logger: createLogger('producer', { level: 'WARN' }),
      now: Date.now,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      shutdown: new AbortController().signal,
    },
    {
      owner: 'inproc',
      leaseMs: 60_000,
      heartbeatMs: 30_000,
      stallMs: 600_000,
      awsAttempts: 5,
      retryMaxMs: 10_000,
      scanSkewMs: 300_000,
      checkpointRows: 200_000,
      checkpointMs: 5_000,
      transactionRows: opts.transactionRows ?? 50_000,
      transactionMs: 5_000,
      batchRows: opts.batchRows ?? 5_000,
      batchBytes: opts.batchBytes ?? 900_000,
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
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const finishedAt = Date.now();
  await kafka.close();
  // The local broker keeps a topic until it is deleted (a 1M-row run writes ~200 MB).
  if (opts.kafka === 'real') await deleteTopics(settings.brokers, [job.topic]);
  return {
    kafka: opts.kafka === 'real' ? 'platformatic' : opts.kafka,
    rows,
    bytes: size,
    outcome,
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    eventLoopUtilization: elu,
    startedAt,
    finishedAt,
    completedAt,
  };
}

/** The producer's metrics as main.ts builds them: BufferedMetrics + EMF file sink + its flush interval. */
export function producerMetrics(emfPath: string, flushIntervalMs = PRODUCER_FLUSH_MS): BufferedMetrics {
  return new BufferedMetrics({
    sink: emfSink(`file:${emfPath}`),
    defaultDimensions: { Service: 'producer', Stage: 'bench' },
    flushIntervalMs,
    onSinkError: (e) => console.error(`[inproc] metrics sink failed: ${(e as Error).message}`),
  }).start();
}

/**
 * The time this process spends inside the metrics code: every record() call, and every flush (interval
 * and final) from its call until its write is done. An upper bound of the direct cost, free of the
 * run-to-run noise (the flush's file write is asynchronous, so part of that time does not hold rows up).
 */
function timed(
  m: BufferedMetrics,
  t: { points: number; recordMs: number; flushMs: number; flushes: number },
): MetricsPort {
  const flush = m.flush.bind(m);
  // The interval calls the instance's flush, so it is wrapped on the instance.
  m.flush = async () => {
    const t0 = performance.now();
    await flush();
    t.flushMs += performance.now() - t0;
    t.flushes++;
  };
  return {
    record(name, value, unit, options) {
      const t0 = performance.now();
      m.record(name, value, unit, options);
      t.recordMs += performance.now() - t0;
      t.points++;
    },
    flush: () => m.flush(),
  };
}

async function main() {
  const opts = new Command('producer-inproc')
    .option('--rows <n>', 'rows of the generated file', '1000000')
    .addOption(
      new Option('--kafka <kind>', 'real (the broker), encode (batches encoded, not sent) or fake')
        .choices(['real', 'encode', 'fake'])
        .default('real'),
    )
    .option('--metrics <on|off>', 'record metrics as main.ts does', 'off')
    .option('--flush-ms <n>', 'metrics flush interval', String(PRODUCER_FLUSH_MS))
    .option('--chunk <bytes>', 'read chunk size', String(64 * 1024))
    .option('--brokers <list>', 'comma-separated bootstrap brokers', localEndpoints().brokers.join(','))
    .option('--inflight <n>', 'produce requests in flight (1-5)', '5')
    .addOption(
      new Option('--headers <format>', 'record format (lineage headers)')
        .choices(RecordHeaders.options)
        .default('compact'),
    )
    .option('--tx <n>', 'rows per transaction', '50000')
    .option('--batch-rows <n>', 'rows per produce batch', '5000')
    .option('--batch-bytes <n>', 'bytes per produce batch', '900000')
    .parse()
    .opts<{
      rows: string;
      kafka: 'real' | 'encode' | 'fake';
      metrics: string;
      flushMs: string;
      chunk: string;
      brokers: string;
      tx: string;
      batchRows: string;
      batchBytes: string;
      inflight: string;
      headers: RecordHeaders;
    }>();
  const metricsOn = opts.metrics === 'on';
  const emfPath = join(REPO, '.local', 'bench', `emf-inproc-${process.pid}.log`);
  const buffered = metricsOn ? producerMetrics(emfPath, Number(opts.flushMs)) : null;
  const metricsTime = { points: 0, recordMs: 0, flushMs: 0, flushes: 0 };
  const r = await runInproc({
    rows: Number(opts.rows),
    kafka: opts.kafka,
    chunkBytes: Number(opts.chunk),
    brokers: opts.brokers.split(','),
    maxInflight: Number(opts.inflight),
    recordHeaders: opts.headers,
    transactionRows: Number(opts.tx),
    batchRows: Number(opts.batchRows),
    batchBytes: Number(opts.batchBytes),
    metrics: buffered ? timed(buffered, metricsTime) : NO_METRICS,
  });
  // The final flush is charged to the run: over a job's life every point is serialized and written
  // once, whether by the interval or at shutdown, so leaving it out would hide part of the cost.
  const f0 = performance.now();
  const fcpu0 = process.cpuUsage();
  await buffered?.close();
  const flushMs = performance.now() - f0;
  const fcpu = process.cpuUsage(fcpu0);
  const cpuSeconds = (r.cpuMs + (fcpu.user + fcpu.system) / 1000) / 1000;
  const seconds = (r.ms + flushMs) / 1000;
  console.log(
    JSON.stringify({
      kafka: r.kafka,
      metrics: metricsOn ? 'on' : 'off',
      rows: r.rows,
      outcome: r.outcome,
      seconds: Math.round(seconds * 1000) / 1000,
      finalFlushMs: Math.round(flushMs * 10) / 10,
      rowsPerSecond: Math.round(r.rows / seconds),
      cpuSeconds: Math.round(cpuSeconds * 1000) / 1000,
      rowsPerCpuSecond: Math.round(r.rows / cpuSeconds),
      eventLoopUtilization: Math.round(r.eventLoopUtilization * 1000) / 1000,
      mbPerSecond: Math.round((r.bytes / 1e6 / seconds) * 10) / 10,
      rssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
      ...(metricsOn
        ? {
            emf: emfPath,
            metricsPoints: metricsTime.points,
            metricsMs: Math.round((metricsTime.recordMs + metricsTime.flushMs) * 10) / 10,
            metricsFlushes: metricsTime.flushes,
          }
        : {}),
    }),
  );
  process.exit(r.outcome.kind === 'completed' ? 0 : 1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
