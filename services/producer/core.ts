import { type BusPort, event, publish } from '../../events/bus.ts';
import type { JobStarted, JobStartedEvent } from '../../events/catalog.ts';
import { eventIdFor, jobIdFor } from '../../events/ids.ts';
import { type JobCheckpoint, type JobRecord, type MovedSource, sourceLocation } from '../shared/jobs.ts';
import type { Log } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import type { PlanStorePort } from '../shared/plan.ts';
import { backoffDelay, retry } from '../shared/retry.ts';
import { type RawRow, RowSplitter } from '../shared/rows.ts';
import type { SchemaReaderPort } from '../shared/schema/registry.ts';
import {
  fateDestination,
  type ObjectTagsPort,
  type SourceMoveDeps,
  settleSourceFate,
} from '../shared/source-fate.ts';
import { type TopicPolicy, topicRefusal } from '../shared/topics.ts';
import {
  AttemptsExhaustedError,
  AwsRetriesExhaustedError,
  BadRowError,
  KafkaRetriesExhaustedError,
  LeaseLostError,
  ObjectVanishedError,
  ProducerError,
  SourceReadError,
  TopicNotAllowedError,
} from './errors.ts';
import { LeaseKeeper } from './job/lease.ts';
import { withPlan } from './job/plan.ts';
import { Cadence, RateWindow } from './job/progress.ts';
import { readAhead } from './job/read-ahead.ts';
import { BATCH_OVERHEAD, type BuiltRecord, RecordBuilder } from './job/records.ts';
import { KafkaStepError, type Position, TransactionWriter } from './job/transaction.ts';
import type {
  ClaimResult,
  JobProducer,
  JobsStore,
  KafkaPort,
  KafkaRange,
  ObjectReader,
  PartitionAck,
  Placement,
  RejectsStore,
  ScanHint,
} from './ports.ts';
import { type TypedValueEncoder, typedEncoderFor } from './typed.ts';

export { readAhead } from './job/read-ahead.ts';
export { HEADERS } from './job/records.ts';

/** Producer settings the core needs (settings.ts maps ROWSTREAM_PRODUCER_* onto these). */
export interface ProducerSettings {
  readonly owner: string;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  /** No progress for this long: the lease is no longer renewed and the job stops (see job/lease.ts). */
  readonly stallMs: number;
  readonly checkpointRows: number;
  readonly checkpointMs: number;
  readonly transactionRows: number;
  readonly transactionMs: number;
  readonly batchRows: number;
  readonly batchBytes: number;
  readonly maxMessageBytes: number;
  readonly maxAttempts: number;
  /** Consecutive Kafka failures (reset by every commit) before KAFKA_RETRIES_EXHAUSTED. */
  readonly kafkaRetries: number;
  readonly readRetries: number;
  /** Tries of one DynamoDB / S3 / EventBridge call of the job before AWS_RETRIES_EXHAUSTED. */
  readonly awsAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Clock-skew margin below the job's start when the resume scan seeks by timestamp. */
  readonly scanSkewMs: number;
  readonly progressMs: number;
  /** Overrides the event's failOnBadRow when set. */
  readonly failOnBadRow: boolean | null;
  /** Test hook: SIGKILL-like crash right after the n-th transaction commit of this process (0 = off). */
  readonly crashAfterCommit: number;
  /** Topics jobs may write to (defence in depth: the planner checks first); unset = not checked. */
  readonly topicPolicy?: TopicPolicy;
}

export interface ProducerDeps {
  readonly jobs: JobsStore;
  readonly kafka: KafkaPort;
  readonly reader: ObjectReader;
  readonly rejects: RejectsStore;
  readonly bus: BusPort;
  readonly metrics: MetricsPort;
  readonly logger: Log;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /** Aborted on SIGTERM: finish the transaction, checkpoint, release, return. */
  readonly shutdown: AbortSignal;
  /** Called by the crash hook (the real one SIGKILLs the process). */
  readonly crash?: () => void;
  readonly random?: () => number;
  /** Where schemas too large for the event are looked up (by version id). */
  readonly schemaRegistry?: SchemaReaderPort | null;
  /** Tags the source object version with the job id and outcome when the job ends (best effort). */
  readonly sourceTags?: ObjectTagsPort | null;
  /** Moves the source to processed/ or failed/ after tagging (ROWSTREAM_SOURCE_FATE=move); null: tags only. */
  readonly sourceMove?: SourceMoveDeps | null;
  /** Where referenced plans are read (plans/ in the job's bucket); absent: such a job fails PLAN_UNREADABLE. */
  readonly plans?: PlanStorePort | null;
}

export type JobOutcome =
  | {
      readonly kind: 'completed';
      readonly status: 'COMPLETED' | 'COMPLETED_WITH_REJECTS';
      readonly rows: number;
    }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'skipped'; readonly why: 'terminal' | 'busy' }
  /** A JobStarted without a planner-written record and without any committed row of the job in Kafka. */
  | { readonly kind: 'refused'; readonly why: string }
  | { readonly kind: 'handed-back'; readonly rowsDone: number }
  | { readonly kind: 'lease-lost' };

// Object bytes read ahead of the parser while Kafka is busy (double buffering); bounds memory per job.
const READ_AHEAD_BYTES = 8 << 20;
const REJECTS_PER_TRANSACTION = 10_000;
const TOO_LARGE = /MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE|too large/i;

let commitsInProcess = 0;

/** A transient AWS error (throttle, 5xx, timeout, connection): worth another try. */
export function isTransientAws(e: unknown): boolean {
  if (e instanceof ProducerError) return false;
  const err = e as {
    name?: string;
    code?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  if (err?.$retryable) return true;
  const status = err?.$metadata?.httpStatusCode;
  if (status !== undefined)
    return (
      status >= 500 ||
      status === 429 ||
      /Throttl|Throughput|Limit|SlowDown|RequestTimeout/i.test(err.name ?? '')
    );
  // No HTTP status: the request never got an answer (timeout, reset, refused).
  return true;
}

/**
 * Runs one job to its end, hand-back or loss of lease. Exactly-once rests on Kafka transactions:
 * rows go out in transactions of `transactionRows`; on (re)start the job's producer is opened (fencing
 * a dead predecessor and aborting its open transaction), and the job resumes after the newest committed
 * row found in Kafka or in the DynamoDB checkpoint, whichever is further.
 *
 * Trust: the producer acts only on a job the planner wrote a record for, and runs it from that record
 * (not from the event). Without a record, the event is either forged or the record was lost; only the
 * job's own committed rows in Kafka (written under `transactional.id = rowstream-<jobId>` by a producer,
 * which only a planned job ever had) tell the two apart: then the record is re-created from the event
 * and Kafka's position, and the job resumes after its last committed row (never from row 1).
 */
export async function runJob(
  event: JobStartedEvent,
  deps: ProducerDeps,
  cfg: ProducerSettings,
  /** Called once the claim is decided (the message can be acknowledged: the lease holds the job now). */
  onDecided?: () => Promise<void>,
): Promise<JobOutcome> {
  const log = deps.logger.child({ jobId: event.jobId });
  let claim: ClaimResult = await awsCall(deps, cfg, log, 'claim', () =>
    deps.jobs.claim(event, cfg.owner, cfg.leaseMs),
  );
  if (claim.kind === 'no-record') {
    const recovered = await recoverLostRecord(event, deps, cfg, log);
    if (recovered.kind === 'refused') {
      await onDecided?.();
      return recovered;
    }
    claim = recovered.claim;
  }
  await onDecided?.();
  if (claim.kind === 'terminal') {
    log.info('job already terminal; nothing to do', { status: claim.status });
    // A replayed or redelivered JobStarted finishes an end-of-job step a crash interrupted (a no-op
    // once the object is tagged and moved).
    if (claim.record && (claim.status === 'COMPLETED' || claim.status === 'COMPLETED_WITH_REJECTS'))
      await settleSourceFate(
        { tags: deps.sourceTags, move: deps.sourceMove },
        claim.record,
        'COMPLETED',
        log,
      );
    return { kind: 'skipped', why: 'terminal' };
  }
  if (claim.kind === 'busy') {
    log.info('job leased by another producer', { owner: claim.owner, expiresAt: claim.expiresAt });
    return { kind: 'skipped', why: 'busy' };
  }
  if (claim.kind !== 'claimed') return { kind: 'skipped', why: 'busy' };
  const record = claim.record;
  // The plan before anything reads the header; an unavailable plan fails the job (the lease is ours).
  const trusted = trustedJob(event, record, log);
  let job: JobStarted;
  let planProblem: ProducerError | null = null;
  try {
    job = await planOf(trusted, deps, cfg, log);
  } catch (e) {
    if (!(e instanceof ProducerError)) throw e;
    planProblem = e;
    // No columns: the run exists only to record the failure (FAILED, JobFailed with the cause).
    job = { ...trusted, header: [] };
  }
  log.info('job claimed', {
    attempts: record.attempts ?? 1,
    resumes: record.resumes ?? 0,
    checkpointRow: record.checkpoint?.rowsDone ?? 0,
  });
  const startedAt = Date.parse(record.startedAt ?? record.createdAt ?? job.occurredAt);
  const run = new JobRun(
    job,
    deps,
    cfg,
    log,
    record.checkpoint ?? null,
    claim.resumed,
    startedAt,
    record.resumes ?? 0,
    record.movedTo,
  );
  if (planProblem) return run.fail(planProblem);
  const attempts = record.attempts ?? 1;
  if (attempts > cfg.maxAttempts) return run.fail(new AttemptsExhaustedError(attempts));
  const refusal = cfg.topicPolicy ? topicRefusal(job.topic, cfg.topicPolicy) : null;
  if (refusal) return run.fail(new TopicNotAllowedError(job.topic, refusal));
  // Deleted after planning: nothing of it is sent. Only before the first row: once rows are in Kafka
  // the job finishes what it started (the version it reads is pinned either way).
  const ref = { bucket: job.bucket, etag: job.etag, ...sourceLocation({ ...job, movedTo: record.movedTo }) };
  if (!record.checkpoint?.rowsDone && deps.reader.vanished) {
    if (await awsCall(deps, cfg, log, 'vanished', () => deps.reader.vanished!(ref)))
      return run.fail(new ObjectVanishedError(job.sourceUri, job.versionId));
  }
  try {
    run.useSchema(await typedEncoderFor(job, record, deps.schemaRegistry ?? null));
  } catch (e) {
    if (e instanceof ProducerError) return run.fail(e);
    throw e;
  }
  return run.execute();
}

/**
 * The job with its plan at hand (a referenced plan read from S3 and checked); throws a ProducerError
 * (PLAN_*, or AWS_RETRIES_EXHAUSTED) naming the plan object.
 */
async function planOf(
  job: JobStartedEvent,
  deps: ProducerDeps,
  cfg: ProducerSettings,
  log: Log,
): Promise<JobStarted> {
  const store = deps.plans;
  const planned = await withPlan(
    job,
    store ? (key) => awsCall(deps, cfg, log, 'readPlan', () => store.get(job.bucket, key)) : null,
  );
  if (job.planRef) {
    log.info('plan read from S3 and checked', {
      plan: `s3://${job.bucket}/${job.planRef.key}`,
      bytes: job.planRef.bytes,
      columns: job.planRef.columns,
    });
  }
  return planned;
}

/** The job as the planner recorded it; the event only names it. */
function trustedJob(event: JobStartedEvent, record: JobRecord, log: Log): JobStartedEvent {
  const fromRecord = jobStartedFromRecord(record, new Date(Date.parse(event.occurredAt)));
  if (!fromRecord) return event;
  const differs: string[] = (['bucket', 'key', 'etag', 'topic', 'dataOffset'] as const).filter(
    (k) => fromRecord[k] !== event[k],
  );
  if (fromRecord.planRef?.sha256 !== event.planRef?.sha256) differs.push('planRef');
  // Option by option: DynamoDB does not keep the event's key order, so the objects' JSON texts differ
  // for the same options (that warned on every job).
  const a = fromRecord.options as Record<string, unknown>;
  const b = event.options as Record<string, unknown>;
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
    if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) differs.push(`options.${k}`);
  if (differs.length > 0) {
    log.warn('JobStarted differs from the planner-written record; running the job as recorded', {
      fields: differs,
    });
  }
  return { ...fromRecord, eventId: event.eventId, occurredAt: event.occurredAt };
}

async function recoverLostRecord(
  sent: JobStartedEvent,
  deps: ProducerDeps,
  cfg: ProducerSettings,
  log: Log,
): Promise<{ kind: 'refused'; why: string } | { kind: 'recovered'; claim: ClaimResult }> {
  const refuse = (why: string) => {
    log.warn('refusing a JobStarted without a planner-written job record', { why });
    deps.metrics.record('Errors', 1, 'Count');
    return { kind: 'refused' as const, why };
  };
  const expectedId = jobIdFor(sent.bucket, sent.key, { versionId: sent.versionId, etag: sent.etag });
  if (expectedId !== sent.jobId) return refuse('jobId does not match bucket, key and version');
  // No record to fail: a plan that cannot be had refuses the event, with the plan object named.
  let event: JobStarted;
  try {
    event = await planOf(sent, deps, cfg, log);
  } catch (e) {
    if (e instanceof ProducerError) return refuse(e.message);
    throw e;
  }
  // Fence first, so every transaction of the job is closed by a marker before the scan decides (the
  // placement only serves the open: nothing is produced here).
  const { keyColumn } = event.options;
  const placement = await deps.kafka.place(
    event.jobId,
    event.topic,
    keyColumn !== null && event.header.includes(keyColumn),
  );
  const producer = await deps.kafka.openJob(event.jobId, event.topic, placement);
  try {
    const since = Date.parse(event.occurredAt);
    const last = await deps.kafka.readLastCommitted(event.jobId, event.topic, {
      floor: null,
      sinceMs: Number.isFinite(since) ? since - cfg.scanSkewMs : null,
      partitions: null,
    });
    if (!last) return refuse('no record and no committed row of the job in Kafka');
    log.warn('job record lost; re-creating it from the JobStarted and the rows committed in Kafka', {
      kafkaRow: last.row,
    });
    const checkpoint: JobCheckpoint = {
      rowsDone: last.row,
      rowsDelivered: last.row,
      rowsRejected: 0,
      nextByteOffset: last.nextByteOffset,
      partitions: [{ partition: last.partition, firstOffset: null, lastOffset: last.offset }],
      updatedAt: new Date(deps.now()).toISOString(),
    };
    const movedTo = await findMovedSource(event, deps, log);
    const claim = await awsCall(deps, cfg, log, 'recover', () =>
      deps.jobs.recover(event, cfg.owner, cfg.leaseMs, checkpoint, movedTo ?? undefined),
    );
    return { kind: 'recovered', claim };
  } finally {
    await producer.close().catch(() => {});
  }
}

/**
 * Where a job whose record was lost had moved its source (move mode): the copy in processed/ or failed/
 * whose tags name the job, if it is that key's current version. The record said where the object was; the
 * tags on the copy are the only other witness. null: not moved (or not findable), read the original.
 */
async function findMovedSource(event: JobStarted, deps: ProducerDeps, log: Log): Promise<MovedSource | null> {
  const move = deps.sourceMove;
  if (!move || !event.versionId) return null;
  for (const outcome of ['COMPLETED', 'FAILED'] as const) {
    const key = fateDestination(event.key, outcome, move.inboundPrefix);
    const versionId = await move.objects
      .findCopy(event.bucket, key, { jobId: event.jobId, outcome })
      .catch((e: unknown) => {
        log.warn('could not look for a moved source of the lost record', {
          key,
          error: (e as Error).message,
        });
        return null;
      });
    if (versionId) {
      log.warn('the lost record had moved the source; reading it from the copy', { key, versionId });
      return {
        key,
        versionId,
        outcome,
        from: { key: event.key, versionId: event.versionId },
        movedAt: new Date(deps.now()).toISOString(),
      };
    }
  }
  return null;
}

/** One AWS call of the job, retried with backoff and jitter past the SDK's own retries. */
function awsCall<T>(
  deps: ProducerDeps,
  cfg: ProducerSettings,
  log: Log,
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  return retry(fn, {
    attempts: cfg.awsAttempts,
    baseMs: cfg.retryBaseMs,
    maxMs: cfg.retryMaxMs,
    isRetryable: isTransientAws,
    sleep: deps.sleep,
    ...(deps.random ? { random: deps.random } : {}),
    onRetry: ({ error, attempt, delayMs }) => {
      deps.metrics.record('Retries', 1, 'Count');
      log.warn('transient AWS error; retrying', { call: what, attempt, delayMs, error: String(error) });
    },
  }).catch((e: unknown) => {
    if (e instanceof ProducerError || !isTransientAws(e)) throw e;
    throw new AwsRetriesExhaustedError(what, cfg.awsAttempts, e);
  });
}

class JobRun {
  private readonly jobId: string;
  private readonly failOnBadRow: boolean;
  private readonly lease: LeaseKeeper;
  /** Aborted on SIGTERM or when the lease is lost: interrupts a hung read. */
  private readonly stopSignal: AbortSignal;
  private producer: JobProducer | null = null;
  /** Last committed position (rows delivered or rejected, and committed to Kafka / rejects). */
  private committed: Position;
  private rowsRejected: number;
  /** Offsets of the job's COMMITTED records per partition (the resume scan's floor, the checkpoint's). */
  private partitions = new Map<number, { firstOffset: string | null; lastOffset: string | null }>();
  /**
   * Offsets acknowledged in the open transaction, merged into `partitions` only once it commits: a
   * floor raised by acks of a transaction whose commit answer was lost would make the resume scan
   * start above that transaction's records, miss that it committed, and send its rows again.
   */
  private acked = new Map<number, { firstOffset: string | null; lastOffset: string }>();
  /** Where the job's records go: from the checkpoint, or chosen and recorded once (ensurePlacement). */
  private placement: Placement | null;
  /** The checkpoint write that records a newly chosen placement (settled at once when there was one). */
  private placementRecorded: Promise<void> = Promise.resolve();
  private readonly startedAt: number;
  private readonly rate = new RateWindow();
  private readonly cadence: Cadence;
  /** Consecutive Kafka failures since the last commit. */
  private kafkaFailures = 0;
  private builder: RecordBuilder;
  /** The job's schema encoder (typed JSON, Avro); null = the untyped encoders. */
  private typed: TypedValueEncoder | null = null;
  private batchBytes: number;
  /** The object was read to its end (as opposed to a read stopped by shutdown). */
  private eof = false;

  constructor(
    private readonly job: JobStarted,
    private readonly deps: ProducerDeps,
    private readonly cfg: ProducerSettings,
    private readonly log: Log,
    private readonly checkpoint: JobCheckpoint | null,
    private readonly resumed: boolean,
    /** When the job was first claimed: nothing of it is in Kafka before this. */
    private readonly jobStartedAt: number,
    private readonly resumes: number,
    /** Where the source was moved when an earlier run of the job ended (a resumed job reads it there). */
    private readonly movedTo?: MovedSource,
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
    this.cadence = new Cadence(now, this.committed.row, job.totalRows, cfg);
    this.lease = new LeaseKeeper(job.jobId, deps.jobs, cfg, deps.now, log);
    this.stopSignal = AbortSignal.any([deps.shutdown, this.lease.signal]);
    this.builder = new RecordBuilder(
      job,
      cfg.maxMessageBytes,
      'TOO_LARGE',
      'ROWSTREAM_PRODUCER_MAX_MESSAGE_BYTES',
    );
    this.batchBytes = cfg.batchBytes;
  }

  useSchema(typed: TypedValueEncoder | null) {
    this.typed = typed;
    this.builder = new RecordBuilder(
      this.job,
      this.cfg.maxMessageBytes,
      'TOO_LARGE',
      'ROWSTREAM_PRODUCER_MAX_MESSAGE_BYTES',
      typed,
    );
  }

  async execute(): Promise<JobOutcome> {
    this.lease.start();
    // The topic's limits are read while the job is placed and its producer opened (each a round trip
    // or more); the pass waits for them before its first row. learnLimits does not reject.
    const limits = this.learnLimits();
    try {
      return await this.stream(limits);
    } catch (e) {
      // An open transaction would hold the partition's last stable offset back until it times out.
      await this.producer?.abort().catch(() => {});
      if (e instanceof LeaseLostError || this.lease.isLost) {
        this.log.warn('lease lost; stopping work on the job', { error: (e as Error).message });
        return { kind: 'lease-lost' };
      }
      if (e instanceof ProducerError) return this.fail(e);
      this.log.error('unexpected error', { error: e as Error });
      return this.fail(new ProducerError('INTERNAL', (e as Error)?.message ?? String(e)));
    } finally {
      this.lease.stop();
      await this.producer?.close().catch(() => {});
      this.producer = null;
    }
  }

  /**
   * The topic's max.message.bytes bounds both one record and one batch (a v2 record batch is one
   * "message" to the broker): rows above it are rejected with the broker's reason before any send.
   */
  private async learnLimits() {
    const limits = await this.deps.kafka.topicLimits(this.job.topic).catch((e: unknown) => {
      this.log.warn('could not read the topic limits; using the configured ones', { error: String(e) });
      return { maxMessageBytes: null };
    });
    const topicMax = limits.maxMessageBytes === null ? null : limits.maxMessageBytes - BATCH_OVERHEAD;
    if (topicMax !== null && topicMax < this.cfg.maxMessageBytes) {
      this.builder = new RecordBuilder(
        this.job,
        topicMax,
        'MESSAGE_TOO_LARGE',
        `topic ${this.job.topic} max.message.bytes ${limits.maxMessageBytes}`,
        this.typed,
      );
    }
    if (topicMax !== null) this.batchBytes = Math.min(this.batchBytes, topicMax);
    this.log.info('topic limits', {
      maxMessageBytes: limits.maxMessageBytes,
      recordLimit: Math.min(this.cfg.maxMessageBytes, topicMax ?? Number.POSITIVE_INFINITY),
      batchBytes: this.batchBytes,
    });
  }

  /** The stream with Kafka-level retries: any Kafka error rewinds to the last commit and goes again. */
  private async stream(limits: Promise<void>): Promise<JobOutcome> {
    let first = true;
    for (;;) {
      this.lease.check();
      // Each (re)start of the pass is a step forward: the stall clock measures the steps that follow.
      this.lease.progress();
      try {
        const placement = await this.ensurePlacement();
        this.producer = await this.deps.kafka
          .openJob(this.jobId, this.job.topic, placement, this.job.options.recordHeaders)
          .catch((e: unknown) => {
            throw new KafkaStepError('open', e);
          });
        // The placement is in the checkpoint before anything is produced or read back.
        await this.placementRecorded;
        await limits;
        this.lease.progress();
        // After any Kafka failure the outcome of the last commit is unknown (the ack may have been lost):
        // only the topic can tell, so every re-open but a fresh job's first one reads it back.
        if (!first || this.resumed || this.checkpoint) await this.resumeFromKafka();
        this.lease.progress();
        first = false;
        return await this.pass(this.producer);
      } catch (e) {
        if (!(e instanceof KafkaStepError)) throw e;
        await this.onKafkaFailure(e);
      }
    }
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
    // Written while the producer opens (InitProducerId); stream() awaits it before the pass.
    const cp = this.checkpointValue();
    this.placementRecorded = this.aws('checkpoint', () =>
      this.deps.jobs.checkpoint(this.jobId, this.cfg.owner, cp, { rowsPerSecond: 0, etaSeconds: null }),
    ).then(() => this.log.info('job placement recorded', { ...placement }));
    // Handled here too: an open that fails first leaves it unawaited until the next try awaits it.
    this.placementRecorded.catch(() => {});
    return placement;
  }

  private async onKafkaFailure(e: KafkaStepError) {
    this.kafkaFailures++;
    // The open transaction's outcome is unknown (aborted, or committed with its answer lost): its acks
    // do not move the scan's floor; the scan reads them back if they committed.
    this.acked.clear();
    this.deps.metrics.record('Errors', 1, 'Count');
    await this.producer?.abort().catch(() => {});
    await this.producer?.close().catch(() => {});
    this.producer = null;
    if (this.kafkaFailures > this.cfg.kafkaRetries) throw new KafkaRetriesExhaustedError(e.step, e.cause);
    if (TOO_LARGE.test(e.message)) {
      // The broker refused a batch: the topic's limit may have been lowered mid-job. Learn it again and
      // send smaller batches; a row above the new limit then goes to rejects.
      this.batchBytes = Math.max(Math.floor(this.batchBytes / 2), 64 * 1024);
      await this.learnLimits();
    }
    this.deps.metrics.record('Retries', 1, 'Count');
    const delay = backoffDelay(
      this.kafkaFailures - 1,
      this.cfg.retryBaseMs,
      this.cfg.retryMaxMs,
      this.deps.random,
    );
    this.log.warn('kafka step failed; rewinding to the last commit', {
      step: e.step,
      error: e.message,
      consecutiveFailures: this.kafkaFailures,
      delayMs: delay,
      row: this.committed.row,
    });
    await this.deps.sleep(delay);
    this.lease.progress();
  }

  private scanHint(): ScanHint {
    const floor = this.partitionList();
    // An un-keyed job writes to its placement's one partition: only that partition is read.
    const own = this.placement && !this.placement.keyed ? [this.placement.partition] : null;
    return {
      floor: floor.length > 0 ? floor : null,
      sinceMs: Number.isFinite(this.jobStartedAt) ? this.jobStartedAt - this.cfg.scanSkewMs : null,
      partitions: own,
    };
  }

  private async resumeFromKafka() {
    const last = await this.deps.kafka
      .readLastCommitted(this.jobId, this.job.topic, this.scanHint(), () => this.lease.progress())
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
    const tx = this.writer(producer);
    const rows = this.rowsFrom(this.committed)[Symbol.asyncIterator]();
    let stopped = false;
    try {
      for (;;) {
        const next = await this.nextRows(rows, tx);
        this.lease.check();
        if (next.done) break;
        if (this.deps.shutdown.aborted) {
          stopped = true;
          break;
        }
        for (const raw of next.value) {
          const sending = this.take(raw, tx);
          if (sending) await sending;
          if (tx.due(this.deps.now())) await this.commit(tx);
        }
      }
      await this.commit(tx);
    } catch (e) {
      await tx.drain();
      throw e;
    } finally {
      await rows.return?.(undefined).catch(() => {});
    }
    if (stopped || !this.eof) return this.handBack();
    return this.complete();
  }

  private writer(producer: JobProducer): TransactionWriter {
    return new TransactionWriter(
      producer,
      {
        batchRows: this.cfg.batchRows,
        batchBytes: this.batchBytes,
        transactionRows: this.cfg.transactionRows,
        transactionMs: this.cfg.transactionMs,
        rejectsPerTransaction: REJECTS_PER_TRANSACTION,
      },
      {
        now: this.deps.now,
        onAcks: (acks, latencyMs) => this.noteAcks(acks, latencyMs),
        writeRejects: async (firstRow, lastRow, lines, count) => {
          await this.aws('writeRejects', () =>
            this.deps.rejects.writePart(this.jobId, firstRow, lastRow, lines),
          );
          this.rowsRejected += count;
          this.deps.metrics.record('RowsRejected', count, 'Count');
        },
        checkLease: () => this.lease.check(),
      },
      this.committed,
    );
  }

  /**
   * The next rows, but a read slower than the open transaction's age limit does not leave that
   * transaction open until the broker's transaction.timeout.ms aborts it: it is committed meanwhile.
   */
  private async nextRows(
    rows: AsyncIterator<RawRow[]>,
    tx: TransactionWriter,
  ): Promise<IteratorResult<RawRow[]>> {
    const next = rows.next();
    const wait = tx.msUntilDue(this.deps.now());
    if (wait === null) return next;
    next.catch(() => {});
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<'slow'>((r) => {
      timer = setTimeout(() => r('slow'), wait);
    });
    const first = await Promise.race([next, slow]);
    clearTimeout(timer);
    if (first !== 'slow') return first;
    this.log.info('slow read: committing the open transaction before it ages out', {
      row: tx.position.row,
    });
    await this.commit(tx);
    return next;
  }

  /** Takes one row into the transaction; returns a promise only when the row needs waiting for. */
  private take(raw: RawRow, tx: TransactionWriter): Promise<void> | null {
    const built = this.builder.build(raw);
    if (built.ok) return tx.add(raw, built.record, built.size);
    return this.takeBad(raw, built, tx);
  }

  private async takeBad(raw: RawRow, built: BuiltRecord & { ok: false }, tx: TransactionWriter) {
    if (this.failOnBadRow) {
      // The rows before the bad one are committed, then the job fails at it.
      await this.commit(tx);
      throw new BadRowError(raw.row, raw.offset, `${built.reason}: ${built.detail}`);
    }
    tx.reject(raw, built.reason, built.detail);
  }

  private async commit(tx: TransactionWriter) {
    const { position, committedTx } = await tx.commit();
    for (const [partition, a] of this.acked) {
      const p = this.partitions.get(partition);
      this.partitions.set(partition, {
        firstOffset: p?.firstOffset ?? a.firstOffset,
        lastOffset: a.lastOffset,
      });
    }
    this.acked.clear();
    if (committedTx) {
      commitsInProcess++;
      if (this.cfg.crashAfterCommit > 0 && commitsInProcess === this.cfg.crashAfterCommit)
        this.deps.crash?.();
    }
    this.deps.metrics.record('RowsProcessed', position.row - this.committed.row, 'Count');
    this.committed = position;
    this.kafkaFailures = 0;
    this.lease.progress();
    await this.afterCommit(false);
  }

  /** Rows from a position, re-opening the object from the last row boundary when the stream breaks. */
  private async *rowsFrom(from: Position): AsyncGenerator<RawRow[]> {
    let at = { ...from };
    let failures = 0;
    const maxRecordBytes = Math.max(this.cfg.maxMessageBytes * 4, 1 << 20);
    const ref = {
      bucket: this.job.bucket,
      etag: this.job.etag,
      ...sourceLocation({ ...this.job, movedTo: this.movedTo }),
    };
    for (;;) {
      const splitter = new RowSplitter({
        rowsBefore: at.row,
        startOffset: at.nextByteOffset,
        delimiter: this.job.options.delimiter,
        maxRecordBytes,
      });
      try {
        const source = this.deps.reader.open(ref, at.nextByteOffset, this.stopSignal);
        for await (const chunk of readAhead(source, READ_AHEAD_BYTES, this.stopSignal)) {
          this.lease.progress();
          const rows = splitter.push(chunk);
          if (rows.length > 0) {
            const last = rows[rows.length - 1]!;
            at = { row: last.row, nextByteOffset: last.nextOffset };
            failures = 0;
            yield rows;
          }
        }
        const rest = splitter.end();
        this.eof = true;
        if (rest.length > 0) yield rest;
        return;
      } catch (e) {
        if (e instanceof ProducerError || e instanceof KafkaStepError) throw e;
        // SIGTERM during a (possibly hung) read: stop here, the rows taken so far are committed.
        if (this.deps.shutdown.aborted) return;
        this.lease.check();
        failures++;
        this.deps.metrics.record('Errors', 1, 'Count');
        if (failures > this.cfg.readRetries) {
          throw new SourceReadError(
            `reading ${this.job.sourceUri} failed ${failures} times in a row: ${(e as Error).message}`,
            at.nextByteOffset,
          );
        }
        this.deps.metrics.record('Retries', 1, 'Count');
        const delay = backoffDelay(failures - 1, this.cfg.retryBaseMs, this.cfg.retryMaxMs, this.deps.random);
        this.log.warn('object stream broke; re-opening from the last row boundary', {
          error: (e as Error).message,
          byte: at.nextByteOffset,
          row: at.row,
          delayMs: delay,
        });
        await this.deps.sleep(delay);
        this.lease.progress();
      }
    }
  }

  private noteAcks(acks: readonly PartitionAck[], latencyMs: number) {
    const dims = { dimensions: { JobId: this.jobId } };
    this.deps.metrics.record('KafkaLatencyMs', latencyMs, 'Milliseconds', dims);
    let rows = 0;
    for (const a of acks) {
      rows += a.count;
      const p = this.acked.get(a.partition);
      const last = (BigInt(a.baseOffset) + BigInt(Math.max(a.count - 1, 0))).toString();
      this.acked.set(a.partition, { firstOffset: p?.firstOffset ?? a.baseOffset, lastOffset: last });
    }
    this.lease.progress();
    this.deps.metrics.record('RowsProduced', rows, 'Count', dims);
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

  private percent() {
    const total = this.job.totalRows;
    return total > 0 ? Math.min(100, (this.committed.row / total) * 100) : 100;
  }

  private aws<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return awsCall(this.deps, this.cfg, this.log, what, fn);
  }

  private async afterCommit(force: boolean) {
    const { deps, cfg } = this;
    const now = deps.now();
    const row = this.committed.row;
    this.rate.add(now, row, this.committed.nextByteOffset);
    const dims = { dimensions: { JobId: this.jobId } };
    deps.metrics.record('RowsPerSecond', this.rate.rowRate, 'Count/Second', dims);
    deps.metrics.record('BytesPerSecond', this.rate.byteRate, 'Bytes/Second', dims);
    deps.metrics.record('ProgressPercent', this.percent(), 'Percent', dims);
    const eta = this.rate.eta(this.job.totalRows - row);
    if (eta !== null) deps.metrics.record('EtaSeconds', eta, 'Seconds', dims);
    if (force || this.cadence.checkpointDue(now, row)) {
      const cp = this.checkpointValue();
      await this.aws('checkpoint', () =>
        deps.jobs.checkpoint(this.jobId, cfg.owner, cp, {
          rowsPerSecond: this.rate.rowRate,
          etaSeconds: eta,
        }),
      );
      deps.metrics.record('Checkpoints', 1, 'Count');
      this.cadence.checkpointed(now, row);
    }
    if (!force && this.cadence.takeProgress(now, row)) {
      await this.publishProgress(now, eta);
    }
  }

  /** Progress events are informational: a bus hiccup must not stop rows. */
  private async publishProgress(now: number, eta: number | null) {
    try {
      await publish(this.deps.bus, [
        event('JobProgress.v1', {
          eventId: eventIdFor('JobProgress', this.jobId, this.committed.row),
          occurredAt: new Date(now).toISOString(),
          jobId: this.jobId,
          rowsDone: this.committed.row,
          rowsRejected: this.rowsRejected,
          totalRows: this.job.totalRows,
          bytesDone: Math.max(this.committed.nextByteOffset - this.job.dataOffset, 0),
          size: this.job.size,
          percent: this.percent(),
          rowsPerSecond: this.rate.rowRate,
          etaSeconds: eta,
        }),
      ]);
    } catch (e) {
      this.log.warn('could not publish progress', { error: (e as Error).message });
    }
  }

  private async handBack(): Promise<JobOutcome> {
    await this.afterCommit(true);
    await this.aws('release', () => this.deps.jobs.release(this.jobId, this.cfg.owner));
    this.log.info('shutdown: committed, checkpointed and released the job', { row: this.committed.row });
    return { kind: 'handed-back', rowsDone: this.committed.row };
  }

  private async complete(): Promise<JobOutcome> {
    const { deps } = this;
    await this.afterCommit(true);
    const rejects = await this.aws('combineRejects', () => deps.rejects.combine(this.jobId));
    // The combined object is exact even when a resume re-rejected rows already in a part.
    this.rowsRejected = rejects.rows;
    const rowsDelivered = this.committed.row - rejects.rows;
    const status = rejects.rows > 0 ? 'COMPLETED_WITH_REJECTS' : 'COMPLETED';
    const partitions = this.partitionList();
    const now = deps.now();
    // Publish before the terminal write: a crash in between re-runs the job (a no-op on Kafka) and
    // publishes again with the same eventId, instead of losing the event.
    const completed = event('JobCompleted.v1', {
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
    });
    await this.aws('publishCompleted', () => publish(deps.bus, [completed]));
    await this.aws('finish', () =>
      deps.jobs.finish(this.jobId, this.cfg.owner, {
        status,
        checkpoint: this.checkpointValue(),
        rowsDelivered,
        rowsRejected: rejects.rows,
        rejectsUri: rejects.uri,
        partitions,
      }),
    );
    await deps.rejects.cleanup(this.jobId).catch(() => {});
    await this.tagSource('COMPLETED');
    deps.metrics.record('JobsCompleted', 1, 'Count');
    this.log.info('job completed', { status, rowsDelivered, rowsRejected: rejects.rows });
    return { kind: 'completed', status, rows: this.committed.row };
  }

  async fail(error: ProducerError): Promise<JobOutcome> {
    const { deps } = this;
    this.log.error('job failed', { reason: error.reason, error: error.message, position: error.position });
    const checkpoint = this.checkpointValue();
    const failed = event('JobFailed.v1', {
      // A resumed job that fails again is a new incident (a new id), not a duplicate of the first.
      eventId:
        this.resumes > 0
          ? eventIdFor('JobFailed', this.jobId, this.resumes)
          : eventIdFor('JobFailed', this.jobId),
      occurredAt: new Date(deps.now()).toISOString(),
      jobId: this.jobId,
      bucket: this.job.bucket,
      key: this.job.key,
      reason: error.reason,
      message: error.message,
      ...(error.position ? { position: error.position } : {}),
      checkpoint: { rowsDone: checkpoint.rowsDone, nextByteOffset: checkpoint.nextByteOffset },
    });
    await this.aws('publishFailed', () => publish(deps.bus, [failed]));
    await this.aws('finish', () =>
      deps.jobs.finish(this.jobId, this.cfg.owner, {
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
      }),
    );
    // A vanished object has nothing left to tag.
    if (error.reason !== 'OBJECT_NOT_FOUND') await this.tagSource('FAILED');
    deps.metrics.record('JobsFailed', 1, 'Count');
    return { kind: 'failed', reason: error.reason };
  }

  /**
   * After the terminal write: tags the source and, in move mode, moves it (services/shared/source-fate.ts).
   * Best effort, never changes the outcome.
   */
  private async tagSource(outcome: 'COMPLETED' | 'FAILED'): Promise<void> {
    await settleSourceFate(
      { tags: this.deps.sourceTags, move: this.deps.sourceMove },
      { ...this.job, movedTo: this.movedTo },
      outcome,
      this.log,
    );
  }
}

/**
 * The JobStarted a sweeper acts on for a RUNNING job whose lease expired, rebuilt from its record; null
 * when the record lacks what the producer needs (then only a redelivered JobStarted revives the job).
 */
export function jobStartedFromRecord(r: JobRecord, now: Date): JobStartedEvent | null {
  if ((!r.header && !r.planRef) || r.dataOffset === undefined || !r.topic || !r.options || !r.etag)
    return null;
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
    // A referenced plan is read by the run (runJob), like one named by a JobStarted.
    ...(r.planRef ? { planRef: r.planRef } : { header: r.header }),
    dataOffset: r.dataOffset,
    topic: r.topic,
    options: r.options,
    ...(r.schema ? { schema: r.schema } : {}),
  };
}
