import { type BusPort, event, publish } from '../../events/bus.ts';
import type { JobStarted } from '../../events/catalog.ts';
import { eventIdFor } from '../../events/ids.ts';
import type { JobCheckpoint, JobRecord } from '../shared/jobs.ts';
import type { Logger } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import {
  AttemptsExhaustedError,
  BadRowError,
  KafkaRetriesExhaustedError,
  LeaseLostError,
  ProducerError,
  SourceReadError,
} from './errors.ts';
import type {
  JobProducer,
  JobsStore,
  KafkaPort,
  KafkaRange,
  ObjectReader,
  OutRecord,
  PartitionAck,
  Placement,
  RejectsStore,
} from './ports.ts';
import { decodeRow, type RawRow, RowSplitter, rejectLine, valueEncoder } from './rows.ts';

/** Producer settings the core needs (main.ts maps ROWSTREAM_PRODUCER_* onto these). */
export interface ProducerSettings {
  readonly owner: string;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly checkpointRows: number;
  readonly checkpointMs: number;
  readonly transactionRows: number;
  readonly transactionMs: number;
  readonly batchRows: number;
  readonly batchBytes: number;
  readonly maxMessageBytes: number;
  readonly maxAttempts: number;
  readonly kafkaRetries: number;
  readonly readRetries: number;
  readonly retryBaseMs: number;
  readonly progressMs: number;
  /** Overrides the event's failOnBadRow when set. */
  readonly failOnBadRow: boolean | null;
  /** Test hook: SIGKILL-like crash right after the n-th transaction commit of this process (0 = off). */
  readonly crashAfterCommit: number;
}

export interface ProducerDeps {
  readonly jobs: JobsStore;
  readonly kafka: KafkaPort;
  readonly reader: ObjectReader;
  readonly rejects: RejectsStore;
  readonly bus: BusPort;
  readonly metrics: MetricsPort;
  readonly logger: Logger;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Aborted on SIGTERM: finish the transaction, checkpoint, release, return. */
  readonly shutdown: AbortSignal;
  /** Called by the crash hook (the real one SIGKILLs the process). */
  readonly crash?: () => void;
}

export type JobOutcome =
  | {
      readonly kind: 'completed';
      readonly status: 'COMPLETED' | 'COMPLETED_WITH_REJECTS';
      readonly rows: number;
    }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'skipped'; readonly why: 'terminal' | 'busy' }
  | { readonly kind: 'handed-back'; readonly rowsDone: number }
  | { readonly kind: 'lease-lost' };

export const HEADERS = {
  job: 'rowstream-job',
  source: 'rowstream-source',
  row: 'rowstream-row',
  offset: 'rowstream-offset',
} as const;

// Per-record overhead of a Kafka record batch entry with our four headers, rounded up (varints,
// header keys, attributes); a batch must stay below the broker's message.max.bytes.
const RECORD_OVERHEAD = 96;

// Object bytes read ahead of the parser while Kafka is busy (double buffering); bounds memory per job.
const READ_AHEAD_BYTES = 8 << 20;

// Window of the rate behind RowsPerSecond and the ETA.
const RATE_WINDOW_MS = 5_000;

let commitsInProcess = 0;

/** Position of the last row handled (delivered or rejected) and committed. */
interface Position {
  row: number;
  nextByteOffset: number;
}

class KafkaStepError extends Error {
  override readonly name = 'KafkaStepError';
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

/**
 * Runs one job to its end, hand-back or loss of lease. Exactly-once rests on Kafka transactions:
 * rows go out in transactions of `transactionRows`; on (re)start the job's producer is opened (fencing
 * a dead predecessor and aborting its open transaction), and the job resumes after the newest committed
 * row found in Kafka or in the DynamoDB checkpoint, whichever is further.
 */
export async function runJob(
  job: JobStarted,
  deps: ProducerDeps,
  cfg: ProducerSettings,
  /** Called once the claim is decided (the message can be acknowledged: the lease holds the job now). */
  onDecided?: () => Promise<void>,
): Promise<JobOutcome> {
  const log = deps.logger.createChild({ persistentKeys: { jobId: job.jobId } });
  const claim = await deps.jobs.claim(job, cfg.owner, cfg.leaseMs);
  await onDecided?.();
  if (claim.kind === 'terminal') {
    log.info('job already terminal; nothing to do', { status: claim.status });
    return { kind: 'skipped', why: 'terminal' };
  }
  if (claim.kind === 'busy') {
    log.info('job leased by another producer', { owner: claim.owner, expiresAt: claim.expiresAt });
    return { kind: 'skipped', why: 'busy' };
  }
  log.info('job claimed', {
    attempts: claim.record.attempts ?? 1,
    checkpointRow: claim.record.checkpoint?.rowsDone ?? 0,
  });
  const run = new JobRun(job, deps, cfg, log, claim.record.checkpoint ?? null, claim.resumed);
  const attempts = claim.record.attempts ?? 1;
  if (attempts > cfg.maxAttempts) return run.fail(new AttemptsExhaustedError(attempts));
  return run.execute();
}

class JobRun {
  private readonly jobId: string;
  private readonly failOnBadRow: boolean;
  private leaseLost: LeaseLostError | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private producer: JobProducer | null = null;
  /** Last committed position (rows delivered or rejected, and committed to Kafka / rejects). */
  private committed: Position;
  private rowsRejected: number;
  private partitions = new Map<number, { firstOffset: string | null; lastOffset: string | null }>();
  /** Where the job's records go: from the checkpoint, or chosen and recorded once (ensurePlacement). */
  private placement: Placement | null;
  private readonly startedAt: number;
  // Rate and ETA from the rows committed over the last RATE_WINDOW_MS (see updateRate).
  private rowRate = 0;
  private byteRate = 0;
  private rateSamples: { at: number; row: number; byte: number }[] = [];
  private lastCheckpointAt: number;
  private lastCheckpointRow: number;
  private lastProgressAt: number;
  private lastProgressDecile: number;

  constructor(
    private readonly job: JobStarted,
    private readonly deps: ProducerDeps,
    private readonly cfg: ProducerSettings,
    private readonly log: Logger,
    private readonly checkpoint: JobCheckpoint | null,
    private readonly resumed: boolean,
  ) {
    this.jobId = job.jobId;
    this.failOnBadRow = cfg.failOnBadRow ?? job.options.failOnBadRow;
    this.committed = checkpoint
      ? { row: checkpoint.rowsDone, nextByteOffset: checkpoint.nextByteOffset }
      : { row: 0, nextByteOffset: job.dataOffset };
    this.rowsRejected = checkpoint?.rowsRejected ?? 0;
    for (const p of checkpoint?.partitions ?? []) this.partitions.set(p.partition, { ...p });
    this.placement = checkpoint?.placement ?? null;
    const now = deps.now();
    this.startedAt = now;
    this.lastCheckpointAt = now;
    this.lastCheckpointRow = this.committed.row;
    this.lastProgressAt = now;
    this.lastProgressDecile = this.decile(this.committed.row);
  }

  async execute(): Promise<JobOutcome> {
    this.startHeartbeat();
    try {
      return await this.stream();
    } catch (e) {
      if (e instanceof LeaseLostError || this.leaseLost) {
        this.log.warn('lease lost; stopping work on the job', { error: (e as Error).message });
        await this.producer?.abort().catch(() => {});
        return { kind: 'lease-lost' };
      }
      // An open transaction would hold the partition's last stable offset back until it times out.
      await this.producer?.abort().catch(() => {});
      if (e instanceof ProducerError) return this.fail(e);
      this.log.error('unexpected error', { error: e as Error });
      return this.fail(new ProducerError('INTERNAL', (e as Error)?.message ?? String(e)));
    } finally {
      this.stopHeartbeat();
      await this.producer?.close().catch(() => {});
      this.producer = null;
    }
  }

  private startHeartbeat() {
    this.heartbeat = setInterval(() => {
      if (this.leaseLost) return;
      this.deps.jobs.renew(this.jobId, this.cfg.owner, this.cfg.leaseMs).catch((e: unknown) => {
        // Any renewal failure stops the job: continuing without a lease risks two writers (Kafka
        // fencing would still keep the topic right, but the checkpoint and status would fight).
        this.leaseLost = e instanceof LeaseLostError ? e : new LeaseLostError(this.jobId, String(e));
      });
    }, this.cfg.heartbeatMs);
    this.heartbeat.unref();
  }

  private stopHeartbeat() {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private checkLease() {
    if (this.leaseLost) throw this.leaseLost;
  }

  private async openProducer(): Promise<JobProducer> {
    const placement = await this.ensurePlacement();
    this.producer = await this.deps.kafka.openJob(this.jobId, this.job.topic, placement);
    return this.producer;
  }

  /**
   * The job's placement (partition count, the un-keyed partition), chosen once and recorded in the
   * checkpoint before the first record goes out, so every later pass, resume or producer uses the
   * same one, whatever happens to the topic's partition count meanwhile.
   */
  private async ensurePlacement(): Promise<Placement> {
    if (this.placement) return this.placement;
    const { keyColumn } = this.job.options;
    const keyed = keyColumn !== null && this.job.header.includes(keyColumn);
    const placement = await this.deps.kafka.place(this.jobId, this.job.topic, keyed).catch((e: unknown) => {
      if (e instanceof ProducerError) throw e;
      throw new KafkaStepError('place', e);
    });
    this.placement = placement;
    await this.deps.jobs.checkpoint(this.jobId, this.cfg.owner, this.checkpointValue(), {
      rowsPerSecond: 0,
      etaSeconds: null,
    });
    this.log.info('job placement recorded', { ...placement });
    return placement;
  }

  /** The stream with Kafka-level retries: any Kafka error rewinds to the last commit and goes again. */
  private async stream(): Promise<JobOutcome> {
    let failures = 0;
    let first = true;
    for (;;) {
      this.checkLease();
      try {
        const producer = await this.openProducer();
        // After any Kafka failure the outcome of the last commit is unknown (the ack may have been lost):
        // only the topic can tell, so every re-open but a fresh job's first one reads it back.
        if (!first || this.resumed || this.checkpoint) await this.resumeFromKafka();
        first = false;
        return await this.pass(producer);
      } catch (e) {
        if (!(e instanceof KafkaStepError)) throw e;
        failures++;
        this.deps.metrics.record('Errors', 1, 'Count');
        await this.producer?.abort().catch(() => {});
        await this.producer?.close().catch(() => {});
        this.producer = null;
        if (failures > this.cfg.kafkaRetries) throw new KafkaRetriesExhaustedError(e.step, e.cause);
        this.deps.metrics.record('Retries', 1, 'Count');
        const delay = backoff(this.cfg.retryBaseMs, failures);
        this.log.warn('kafka step failed; rewinding to the last commit', {
          step: e.step,
          error: e.message,
          attempt: failures,
          delayMs: delay,
          row: this.committed.row,
        });
        await this.deps.sleep(delay);
      }
    }
  }

  private async resumeFromKafka() {
    const last = await this.deps.kafka
      .readLastCommitted(this.jobId, this.job.topic, this.checkpoint?.partitions ?? null)
      .catch((e: unknown) => {
        throw new KafkaStepError('readLastCommitted', e);
      });
    // Kafka is the source of truth for delivered rows; the checkpoint can only lag behind it (it is
    // written after the commit), except when the newest committed rows were all rejects.
    if (last && last.row > this.committed.row) {
      this.log.info('resuming from Kafka, ahead of the checkpoint', {
        kafkaRow: last.row,
        checkpointRow: this.committed.row,
      });
      this.committed = { row: last.row, nextByteOffset: last.nextByteOffset };
      const p = this.partitions.get(last.partition);
      this.partitions.set(last.partition, { firstOffset: p?.firstOffset ?? null, lastOffset: last.offset });
    } else {
      this.log.info('resuming from the checkpoint', { row: this.committed.row, kafkaRow: last?.row ?? null });
    }
  }

  /** One pass from the last commit to EOF (or shutdown). */
  private async pass(producer: JobProducer): Promise<JobOutcome> {
    const { cfg, deps, job } = this;
    const header = job.header;
    const encodeValue = valueEncoder(job.options.format, header);
    const keyIndex = job.options.keyColumn === null ? -1 : header.indexOf(job.options.keyColumn);
    const staticHeaders = { [HEADERS.job]: this.jobId, [HEADERS.source]: job.sourceUri };
    const headerBytes = HEADERS.job.length + this.jobId.length + HEADERS.source.length + job.sourceUri.length;

    let batch: OutRecord[] = [];
    let batchBytes = 0;
    let inflight: Promise<void> | null = null;
    let txOpen = false;
    let txRows = 0;
    let txStartedAt = deps.now();
    let rejectLines: string[] = [];
    let rejectFirstRow = 0;
    let rejectsInTx = 0;
    // Position of the last row put in the batch or rejected (not yet committed).
    let pos: Position = { ...this.committed };

    const sendBatch = async () => {
      if (inflight) await inflight;
      inflight = null;
      if (batch.length === 0) return;
      const records = batch;
      batch = [];
      batchBytes = 0;
      if (!txOpen) {
        await producer.begin().catch((e: unknown) => {
          throw new KafkaStepError('begin', e);
        });
        txOpen = true;
        txStartedAt = deps.now();
      }
      const t0 = deps.now();
      // One send in flight per job (kafkajs issue 1005; ordering); the next batch is parsed meanwhile.
      inflight = producer.send(records).then(
        (acks) => {
          deps.metrics.record('KafkaLatencyMs', deps.now() - t0, 'Milliseconds', {
            dimensions: { JobId: this.jobId },
          });
          this.noteAcks(acks);
        },
        (e: unknown) => {
          throw new KafkaStepError('send', e);
        },
      );
      // Keep the rejection handled until awaited.
      inflight.catch(() => {});
    };

    const commit = async () => {
      await sendBatch();
      if (inflight) await inflight;
      inflight = null;
      // Rejects of the transaction become durable before the commit that moves the resume point past them.
      if (rejectLines.length > 0) {
        await deps.rejects.writePart(this.jobId, rejectFirstRow, pos.row, rejectLines.join(''));
        this.rowsRejected += rejectsInTx;
        deps.metrics.record('RowsRejected', rejectsInTx, 'Count');
        rejectLines = [];
        rejectsInTx = 0;
      }
      if (txOpen) {
        this.checkLease();
        await producer.commit().catch((e: unknown) => {
          throw new KafkaStepError('commit', e);
        });
        txOpen = false;
        commitsInProcess++;
        if (cfg.crashAfterCommit > 0 && commitsInProcess === cfg.crashAfterCommit) deps.crash?.();
      }
      const delivered = pos.row - this.committed.row;
      deps.metrics.record('RowsProcessed', delivered, 'Count');
      this.committed = { ...pos };
      txRows = 0;
      await this.afterCommit(false);
    };

    const rejectRow = (raw: RawRow, reason: string, detail: string) => {
      if (this.failOnBadRow) throw new BadRowError(raw.row, raw.offset, `${reason}: ${detail}`);
      if (rejectLines.length === 0) rejectFirstRow = raw.row;
      rejectLines.push(rejectLine(raw.row, raw.offset, reason, raw.bytes));
      rejectsInTx++;
    };

    let stopped = false;
    try {
      for await (const rows of this.rowsFrom(this.committed)) {
        this.checkLease();
        if (deps.shutdown.aborted) {
          stopped = true;
          break;
        }
        for (const raw of rows) {
          const decoded = decodeRow(raw, header, job.options.delimiter);
          if (!decoded.ok) {
            if (this.failOnBadRow) await commit();
            rejectRow(raw, decoded.reason, decoded.detail);
          } else {
            const value = encodeValue(decoded);
            const key = keyIndex >= 0 ? (decoded.fields[keyIndex] ?? null) : null;
            const rowStr = String(raw.row);
            const offStr = String(raw.nextOffset);
            const size =
              Buffer.byteLength(value) +
              (key === null ? 0 : Buffer.byteLength(key)) +
              headerBytes +
              rowStr.length +
              offStr.length +
              RECORD_OVERHEAD;
            if (size > cfg.maxMessageBytes) {
              if (this.failOnBadRow) await commit();
              rejectRow(raw, 'TOO_LARGE', `record of ${size} bytes exceeds ${cfg.maxMessageBytes}`);
            } else {
              if (batchBytes + size > cfg.batchBytes && batch.length > 0) await sendBatch();
              batch.push({
                key,
                value,
                headers: {
                  [HEADERS.job]: staticHeaders[HEADERS.job]!,
                  [HEADERS.source]: staticHeaders[HEADERS.source]!,
                  [HEADERS.row]: rowStr,
                  [HEADERS.offset]: offStr,
                },
              });
              batchBytes += size;
              txRows++;
            }
          }
          pos = { row: raw.row, nextByteOffset: raw.nextOffset };
          if (batch.length >= cfg.batchRows) await sendBatch();
          if (
            txRows >= cfg.transactionRows ||
            rejectLines.length >= 10_000 ||
            (txOpen && deps.now() - txStartedAt >= cfg.transactionMs)
          ) {
            await commit();
          }
        }
      }
      await commit();
    } catch (e) {
      if (inflight) await (inflight as Promise<void>).catch(() => {});
      throw e;
    }
    if (stopped) return this.handBack();
    return this.complete();
  }

  /** Rows from a position, re-opening the object from the last row boundary when the stream breaks. */
  private async *rowsFrom(from: Position): AsyncGenerator<RawRow[]> {
    let at = { ...from };
    let failures = 0;
    const maxRecordBytes = Math.max(this.cfg.maxMessageBytes * 4, 1 << 20);
    for (;;) {
      const splitter = new RowSplitter({
        rowsBefore: at.row,
        startOffset: at.nextByteOffset,
        delimiter: this.job.options.delimiter,
        maxRecordBytes,
      });
      try {
        const ref = {
          bucket: this.job.bucket,
          key: this.job.key,
          etag: this.job.etag,
          versionId: this.job.versionId,
        };
        for await (const chunk of readAhead(
          this.deps.reader.open(ref, at.nextByteOffset),
          READ_AHEAD_BYTES,
        )) {
          const rows = splitter.push(chunk);
          if (rows.length > 0) {
            const last = rows[rows.length - 1]!;
            at = { row: last.row, nextByteOffset: last.nextOffset };
            failures = 0;
            yield rows;
          }
        }
        const rest = splitter.end();
        if (rest.length > 0) yield rest;
        return;
      } catch (e) {
        if (e instanceof ProducerError || e instanceof KafkaStepError) throw e;
        failures++;
        this.deps.metrics.record('Errors', 1, 'Count');
        if (failures > this.cfg.readRetries) {
          throw new SourceReadError(
            `reading ${this.job.sourceUri} failed: ${(e as Error).message}`,
            at.nextByteOffset,
          );
        }
        this.deps.metrics.record('Retries', 1, 'Count');
        const delay = backoff(this.cfg.retryBaseMs, failures);
        this.log.warn('object stream broke; re-opening from the last row boundary', {
          error: (e as Error).message,
          byte: at.nextByteOffset,
          row: at.row,
          delayMs: delay,
        });
        await this.deps.sleep(delay);
      }
    }
  }

  private noteAcks(acks: readonly PartitionAck[]) {
    let rows = 0;
    for (const a of acks) {
      rows += a.count;
      const p = this.partitions.get(a.partition);
      const last = (BigInt(a.baseOffset) + BigInt(Math.max(a.count - 1, 0))).toString();
      this.partitions.set(a.partition, { firstOffset: p?.firstOffset ?? a.baseOffset, lastOffset: last });
    }
    this.deps.metrics.record('RowsProduced', rows, 'Count', { dimensions: { JobId: this.jobId } });
  }

  private partitionList(): KafkaRange[] {
    return [...this.partitions.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([partition, p]) => ({ partition, firstOffset: p.firstOffset, lastOffset: p.lastOffset }));
  }

  private checkpointValue(): JobCheckpoint {
    return {
      rowsDone: this.committed.row,
      rowsDelivered: Math.max(this.committed.row - this.rowsRejected, 0),
      rowsRejected: this.rowsRejected,
      nextByteOffset: this.committed.nextByteOffset,
      partitions: this.partitionList(),
      ...(this.placement ? { placement: this.placement } : {}),
      updatedAt: new Date(this.deps.now()).toISOString(),
    };
  }

  private decile(row: number) {
    const total = this.job.totalRows;
    return total > 0 ? Math.floor((row * 10) / total) : 0;
  }

  /**
   * Rate over a sliding window of commit points (the newest point at least RATE_WINDOW_MS old is the
   * base). Why not the former EWMA (10 s time constant): it still carried the slow start (process
   * warm-up, fence, first reads) at 10% of a one-minute job, so the ETA there was ~34% off; a window
   * forgets the start as soon as it slides past it, and commit points every ~0.25 s keep it smooth.
   * The first commit point is the window's first base (warm-up): the time before it (fence, resume
   * scan, first S3 bytes, JIT) says nothing about the speed of the rest, so no rate (and no ETA)
   * until the second commit.
   */
  private updateRate() {
    const now = this.deps.now();
    const samples = this.rateSamples;
    samples.push({ at: now, row: this.committed.row, byte: this.committed.nextByteOffset });
    while (samples.length > 2 && now - samples[1]!.at >= RATE_WINDOW_MS) samples.shift();
    const base = samples[0]!;
    if (samples.length < 2) return;
    const dt = (now - base.at) / 1000;
    if (dt <= 0) return;
    this.rowRate = (this.committed.row - base.row) / dt;
    this.byteRate = (this.committed.nextByteOffset - base.byte) / dt;
  }

  private eta(): number | null {
    if (this.rowRate <= 0) return null;
    return Math.max(this.job.totalRows - this.committed.row, 0) / this.rowRate;
  }

  private percent() {
    const total = this.job.totalRows;
    return total > 0 ? Math.min(100, (this.committed.row / total) * 100) : 100;
  }

  private async afterCommit(force: boolean) {
    const { deps, cfg } = this;
    const now = deps.now();
    this.updateRate();
    const dims = { dimensions: { JobId: this.jobId } };
    deps.metrics.record('RowsPerSecond', this.rowRate, 'Count/Second', dims);
    deps.metrics.record('BytesPerSecond', this.byteRate, 'Bytes/Second', dims);
    deps.metrics.record('ProgressPercent', this.percent(), 'Percent', dims);
    const eta = this.eta();
    if (eta !== null) deps.metrics.record('EtaSeconds', eta, 'Seconds', dims);
    if (
      force ||
      this.committed.row - this.lastCheckpointRow >= cfg.checkpointRows ||
      now - this.lastCheckpointAt >= cfg.checkpointMs
    ) {
      await deps.jobs.checkpoint(this.jobId, cfg.owner, this.checkpointValue(), {
        rowsPerSecond: this.rowRate,
        etaSeconds: eta,
      });
      deps.metrics.record('Checkpoints', 1, 'Count');
      this.lastCheckpointAt = now;
      this.lastCheckpointRow = this.committed.row;
    }
    const decile = this.decile(this.committed.row);
    if (!force && (decile > this.lastProgressDecile || now - this.lastProgressAt >= cfg.progressMs)) {
      this.lastProgressDecile = decile;
      this.lastProgressAt = now;
      await this.publishSafe('JobProgress.v1', {
        eventId: eventIdFor('JobProgress', this.jobId, this.committed.row),
        occurredAt: new Date(now).toISOString(),
        jobId: this.jobId,
        rowsDone: this.committed.row,
        rowsRejected: this.rowsRejected,
        totalRows: this.job.totalRows,
        bytesDone: Math.max(this.committed.nextByteOffset - this.job.dataOffset, 0),
        size: this.job.size,
        percent: this.percent(),
        rowsPerSecond: this.rowRate,
        etaSeconds: eta,
      });
    }
  }

  /** Progress events are informational: a bus hiccup must not stop rows. */
  private async publishSafe(type: 'JobProgress.v1', detail: Parameters<typeof event<'JobProgress.v1'>>[1]) {
    try {
      await publish(this.deps.bus, [event(type, detail)]);
    } catch (e) {
      this.log.warn('could not publish progress', { error: (e as Error).message });
    }
  }

  private async handBack(): Promise<JobOutcome> {
    await this.afterCommit(true);
    await this.deps.jobs.release(this.jobId, this.cfg.owner);
    this.log.info('shutdown: committed, checkpointed and released the job', { row: this.committed.row });
    return { kind: 'handed-back', rowsDone: this.committed.row };
  }

  private async complete(): Promise<JobOutcome> {
    const { deps } = this;
    await this.afterCommit(true);
    const rejects = await deps.rejects.combine(this.jobId);
    // The combined object is exact even when a resume re-rejected rows already in a part.
    this.rowsRejected = rejects.rows;
    const rowsDelivered = this.committed.row - rejects.rows;
    const status = rejects.rows > 0 ? 'COMPLETED_WITH_REJECTS' : 'COMPLETED';
    const partitions = this.partitionList();
    const now = deps.now();
    // Publish before the terminal write: a crash in between re-runs the job (a no-op on Kafka) and
    // publishes again with the same eventId, instead of losing the event.
    await publish(deps.bus, [
      event('JobCompleted.v1', {
        eventId: eventIdFor('JobCompleted', this.jobId),
        occurredAt: new Date(now).toISOString(),
        jobId: this.jobId,
        bucket: this.job.bucket,
        key: this.job.key,
        status,
        rowsDelivered,
        rowsRejected: rejects.rows,
        bytes: this.job.size,
        durationMs: Math.max(0, Math.round(now - this.startedAt)),
        topic: this.job.topic,
        partitions,
        rejectsUri: rejects.uri,
      }),
    ]);
    await deps.jobs.finish(this.jobId, this.cfg.owner, {
      status,
      checkpoint: this.checkpointValue(),
      rowsDelivered,
      rowsRejected: rejects.rows,
      rejectsUri: rejects.uri,
      partitions,
    });
    await deps.rejects.cleanup(this.jobId).catch(() => {});
    deps.metrics.record('JobsCompleted', 1, 'Count');
    this.log.info('job completed', { status, rowsDelivered, rowsRejected: rejects.rows });
    return { kind: 'completed', status, rows: this.committed.row };
  }

  async fail(error: ProducerError): Promise<JobOutcome> {
    const { deps } = this;
    this.log.error('job failed', { reason: error.reason, error: error.message, position: error.position });
    const checkpoint = this.checkpointValue();
    await publish(deps.bus, [
      event('JobFailed.v1', {
        eventId: eventIdFor('JobFailed', this.jobId),
        occurredAt: new Date(deps.now()).toISOString(),
        jobId: this.jobId,
        bucket: this.job.bucket,
        key: this.job.key,
        reason: error.reason,
        message: error.message,
        ...(error.position ? { position: error.position } : {}),
        checkpoint: { rowsDone: checkpoint.rowsDone, nextByteOffset: checkpoint.nextByteOffset },
      }),
    ]);
    await deps.jobs.finish(this.jobId, this.cfg.owner, {
      status: 'FAILED',
      checkpoint,
      rowsDelivered: checkpoint.rowsDelivered,
      rowsRejected: checkpoint.rowsRejected,
      rejectsUri: null,
      partitions: checkpoint.partitions,
      failure: {
        reason: error.reason,
        message: error.message,
        ...(error.position ? { position: error.position } : {}),
      },
    });
    deps.metrics.record('JobsFailed', 1, 'Count');
    return { kind: 'failed', reason: error.reason };
  }
}

/** Exponential backoff with full jitter, capped at 30 s. */
export function backoff(baseMs: number, attempt: number): number {
  const cap = Math.min(30_000, baseMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/**
 * Pulls `source` ahead of its consumer into a queue of at most `maxBytes`, so the S3 read overlaps
 * with parsing and the Kafka send instead of waiting for them (the stream alone only reads ahead by
 * the socket's buffers). Backpressure stays: the pump pauses while the queue is full. An error of the
 * source is handed over in order, after the chunks read before it.
 */
export async function* readAhead(source: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const queue: Buffer[] = [];
  const state = {
    queued: 0,
    done: false,
    stopped: false,
    failure: null as { error: unknown } | null,
    wakeConsumer: null as (() => void) | null,
    wakePump: null as (() => void) | null,
  };
  const wake = (which: 'wakeConsumer' | 'wakePump') => {
    const w = state[which];
    state[which] = null;
    w?.();
  };
  void (async () => {
    try {
      while (!state.stopped) {
        if (state.queued >= maxBytes) {
          await new Promise<void>((r) => {
            state.wakePump = r;
          });
          continue;
        }
        const next = await it.next();
        if (next.done) break;
        queue.push(next.value);
        state.queued += next.value.length;
        wake('wakeConsumer');
      }
    } catch (e) {
      state.failure = { error: e };
    } finally {
      state.done = true;
      wake('wakeConsumer');
      if (state.stopped) await it.return?.(undefined).catch(() => {});
    }
  })();
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk) {
        state.queued -= chunk.length;
        wake('wakePump');
        yield chunk;
        continue;
      }
      if (state.done) {
        if (state.failure) throw state.failure.error;
        return;
      }
      await new Promise<void>((r) => {
        state.wakeConsumer = r;
      });
    }
  } finally {
    state.stopped = true;
    wake('wakePump');
  }
}

/**
 * The JobStarted a sweeper acts on for a RUNNING job whose lease expired, rebuilt from its record; null
 * when the record lacks what the producer needs (then only a redelivered JobStarted revives the job).
 */
export function jobStartedFromRecord(r: JobRecord, now: Date): JobStarted | null {
  if (!r.header || r.dataOffset === undefined || !r.topic || !r.options || !r.etag) return null;
  return {
    eventId: `sweep-${r.jobId}`,
    occurredAt: now.toISOString(),
    jobId: r.jobId,
    bucket: r.bucket,
    key: r.key,
    etag: r.etag,
    versionId: r.versionId,
    sourceUri: r.sourceUri,
    size: r.size,
    totalRows: r.totalRows ?? 0,
    header: r.header,
    dataOffset: r.dataOffset,
    topic: r.topic,
    options: r.options,
  };
}
