import type { JobStarted, JobStartedEvent, JobStatus, RecordHeaders } from '../../events/catalog.ts';
import type { JobCheckpoint, JobPlacement, JobRecord, MovedSource } from '../shared/jobs.ts';

/** The small interfaces the producer core talks through; adapters/ implements them. */

export interface OutRecord {
  readonly key: string | null;
  /** Text (JSON, CSV) or bytes (Avro). */
  readonly value: string | Buffer;
  readonly headers: Readonly<Record<string, string>>;
}

/** Where one acknowledged batch landed: base offset per partition and how many records went there. */
export interface PartitionAck {
  readonly partition: number;
  readonly baseOffset: string;
  readonly count: number;
}

/**
 * One job's transactional producer. At most `maxInflight` (default 1) sends in flight at a time, and
 * nothing else while a send is in flight (the core guarantees both); sends are written in call order.
 */
export interface JobProducer {
  /** Sends the producer keeps in order when several are in flight (1 when absent). */
  readonly maxInflight?: number;
  begin(): Promise<void>;
  send(records: readonly OutRecord[]): Promise<readonly PartitionAck[]>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  close(): Promise<void>;
}

export interface KafkaRange {
  readonly partition: number;
  readonly firstOffset: string | null;
  readonly lastOffset: string | null;
}

/** The newest committed record of a job found in the topic. */
export interface LastCommitted {
  readonly row: number;
  readonly nextByteOffset: number;
  readonly partition: number;
  readonly offset: string;
}

/** Where a job's records go (see JobPlacement): chosen once, recorded in the checkpoint. */
export type Placement = JobPlacement;

export interface KafkaPort {
  /**
   * Chooses the job's placement from the topic's partition count now. Called once per job, before its
   * first record; the core records the answer and passes it to every {@link openJob} of the job.
   * Throws a ProducerError TOPIC_NOT_FOUND when the topic does not exist (and is not auto-created).
   */
  place(jobId: string, topic: string, keyed: boolean): Promise<Placement>;
  /**
   * Opens the job's transactional producer (transactional.id = `rowstream-<jobId>`). Opening fences a
   * previous instance and aborts its open transaction, so once this resolves the topic holds only
   * committed or aborted records of the job.
   */
  openJob(
    jobId: string,
    topic: string,
    placement: Placement,
    /** The job's record format (its options); absent: the adapter's configured one. */
    recordHeaders?: RecordHeaders,
  ): Promise<JobProducer>;
  /**
   * The job's newest committed record, scanning back from each partition's end no further than the
   * hint allows (see {@link ScanHint}): the cost depends on the job's own records, not the topic's size.
   */
  readLastCommitted(
    jobId: string,
    topic: string,
    hint: ScanHint,
    /** Called after each fetch: a long scan of a busy shared topic is progress, not a hang. */
    onProgress?: () => void,
  ): Promise<LastCommitted | null>;
  /** The topic's limits as the broker enforces them (learned at job start); null = unknown. */
  topicLimits(topic: string): Promise<TopicLimits>;
  close(): Promise<void>;
}

/** Where a job's records can be: the scan reads nothing outside it. */
export interface ScanHint {
  /** Offsets already covered by a checkpoint, per partition: scanned only above `lastOffset`. */
  readonly floor: readonly KafkaRange[] | null;
  /**
   * Epoch ms before which the job wrote nothing (its planning time, less a clock-skew margin): each
   * partition is scanned only from the first offset at or after it (ListOffsets by timestamp).
   */
  readonly sinceMs: number | null;
  /** The only partitions the job wrote to, when known (an un-keyed job writes one); null = all. */
  readonly partitions: readonly number[] | null;
}

export interface TopicLimits {
  /** The topic's max.message.bytes (a record batch must fit in it). */
  readonly maxMessageBytes: number | null;
}

/** Reads the object from a byte offset (Range GET). Each call is one attempt; the core retries. */
export interface ObjectReader {
  open(
    ref: { bucket: string; key: string; etag: string; versionId: string | null },
    fromByte: number,
    /** Aborts the request and the body stream (SIGTERM, no progress, lease lost). */
    signal?: AbortSignal,
  ): AsyncIterable<Buffer>;
  /**
   * True when the object is gone for the uploader: its version no longer exists, or (versioned bucket)
   * the key's current version is a delete marker, which a plain DELETE leaves while the version itself
   * stays readable. Optional: a store without deletions never needs it.
   */
  vanished?(ref: { bucket: string; key: string; etag: string; versionId: string | null }): Promise<boolean>;
}

export type ClaimResult =
  | { readonly kind: 'claimed'; readonly record: JobRecord; readonly resumed: boolean }
  /** `record`: the job record when the store read it (the end-of-job step runs again from it). */
  | { readonly kind: 'terminal'; readonly status: JobStatus; readonly record?: JobRecord }
  | { readonly kind: 'busy'; readonly owner: string; readonly expiresAt: number }
  /** No job record: the planner never wrote one, or it was lost (table restore, cleared table). */
  | { readonly kind: 'no-record' };

export interface FinishResult {
  readonly status: 'COMPLETED' | 'COMPLETED_WITH_REJECTS' | 'FAILED';
  readonly checkpoint: JobCheckpoint | null;
  readonly rowsDelivered: number;
  readonly rowsRejected: number;
  readonly rejectsUri: string | null;
  readonly partitions: readonly KafkaRange[];
  readonly failure?: { reason: string; message: string; position?: { row?: number; byte?: number } };
}

export interface JobsStore {
  /**
   * Takes the job: PLANNED, RUNNING with an expired lease, already mine, or FAILED (a resume: attempts
   * start again at 1). Never creates a record: a missing one is `no-record`.
   */
  claim(job: JobStartedEvent, owner: string, leaseMs: number): Promise<ClaimResult>;
  /**
   * Re-creates a lost record from the event and the job's committed rows found in Kafka, claimed by
   * `owner` (`recoveredFrom: 'kafka'`); `busy` when a record appeared meanwhile.
   */
  recover(
    job: JobStarted,
    owner: string,
    leaseMs: number,
    checkpoint: JobCheckpoint,
    /** Where the lost record had moved the source, found by its copy's tags (move mode). */
    movedTo?: MovedSource,
  ): Promise<ClaimResult>;
  /** Extends the lease; throws LeaseLostError when the job is no longer mine. */
  renew(jobId: string, owner: string, leaseMs: number): Promise<void>;
  /** Writes the checkpoint, conditional on the lease; throws LeaseLostError otherwise. */
  checkpoint(
    jobId: string,
    owner: string,
    checkpoint: JobCheckpoint,
    view: { rowsPerSecond: number; etaSeconds: number | null },
  ): Promise<void>;
  /** Terminal transition, conditional on the lease. */
  finish(jobId: string, owner: string, result: FinishResult): Promise<void>;
  /** Gives the lease up (expiry now) so another producer can take the job at once. */
  release(jobId: string, owner: string): Promise<void>;
}

/**
 * Rejects survive crashes as one part object per transaction, written before the Kafka commit that
 * covers its rows; `combine` merges the parts de-duplicated by row number (a re-run writes the same
 * line for the same row), so a resume neither loses nor duplicates a reject.
 */
export interface RejectsStore {
  writePart(jobId: string, firstRow: number, lastRow: number, csvLines: string): Promise<void>;
  combine(jobId: string): Promise<{ uri: string | null; rows: number }>;
  /** Best-effort removal of the parts after the job is terminal. */
  cleanup(jobId: string): Promise<void>;
}
