import type { RawRow } from '../../shared/rows.ts';
import type { JobProducer, OutRecord, PartitionAck } from '../ports.ts';
import { rejectLine } from '../rows.ts';

/** Position of the last row handled (delivered or rejected). */
export interface Position {
  readonly row: number;
  readonly nextByteOffset: number;
}

/** A Kafka call that failed: the job rewinds to the last commit and goes again (a Kafka retry). */
export class KafkaStepError extends Error {
  override readonly name = 'KafkaStepError';
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${(cause as Error)?.message ?? String(cause)}`);
  }
}

export interface TransactionHooks {
  readonly now: () => number;
  /** Acks of one batch (offsets, metrics, progress). */
  readonly onAcks: (acks: readonly PartitionAck[], latencyMs: number) => void;
  /** Makes the transaction's rejects durable (retried by the caller's policy); before the commit. */
  readonly writeRejects: (firstRow: number, lastRow: number, lines: string, count: number) => Promise<void>;
  /** Throws when the job must stop writing (lease lost); called right before each commit. */
  readonly checkLease: () => void;
}

export interface TransactionLimits {
  readonly batchRows: number;
  readonly batchBytes: number;
  readonly transactionRows: number;
  readonly transactionMs: number;
  readonly rejectsPerTransaction: number;
}

/**
 * One job's write state between two commits: the batch being filled, the one send in flight, whether
 * a transaction is open and since when, the rejects of the transaction, and the position of the last
 * row taken (delivered or rejected). `commit` makes all of it durable and returns the new committed
 * position; any Kafka failure surfaces as {@link KafkaStepError}.
 */
export class TransactionWriter {
  private batch: OutRecord[] = [];
  private batchBytes = 0;
  /** Sends in flight, oldest first (at most the producer's maxInflight). */
  private inflight: Promise<void>[] = [];
  private txOpen = false;
  private txRows = 0;
  private txStartedAt = 0;
  private rejectLines: string[] = [];
  private rejectFirstRow = 0;
  private pos: Position;

  constructor(
    private readonly producer: JobProducer,
    private readonly limits: TransactionLimits,
    private readonly hooks: TransactionHooks,
    from: Position,
  ) {
    this.pos = from;
  }

  /** The last row taken (not necessarily committed). */
  get position(): Position {
    return this.pos;
  }

  get pendingRows(): number {
    return this.txRows + this.batch.length + this.rejectLines.length;
  }

  /**
   * Adds a record for `raw`; sends the batch when it is full. Returns the send to await, or null when
   * the record only joined the batch: no promise and no microtask per row (most rows), only per batch.
   */
  add(raw: RawRow, record: OutRecord, size: number): Promise<void> | null {
    if (this.batchBytes + size > this.limits.batchBytes && this.batch.length > 0)
      return this.sendBatch().then(() => this.add(raw, record, size) ?? undefined);
    this.batch.push(record);
    this.batchBytes += size;
    this.txRows++;
    this.advance(raw);
    return this.batch.length >= this.limits.batchRows ? this.sendBatch() : null;
  }

  /** Takes `raw` as a bad row of this transaction (`reason` is the rejects file's reason column). */
  reject(raw: RawRow, reason: string, detail = ''): void {
    if (this.rejectLines.length === 0) this.rejectFirstRow = raw.row;
    this.rejectLines.push(rejectLine(raw.row, raw.offset, reason, raw.bytes, detail));
    this.advance(raw);
  }

  /** True when the transaction is big or old enough to commit. */
  due(now: number): boolean {
    return (
      this.txRows >= this.limits.transactionRows ||
      this.rejectLines.length >= this.limits.rejectsPerTransaction ||
      (this.txOpen && now - this.txStartedAt >= this.limits.transactionMs)
    );
  }

  /** Milliseconds until the open transaction reaches its age limit (null: none open). */
  msUntilDue(now: number): number | null {
    if (!this.txOpen) return null;
    return Math.max(0, this.txStartedAt + this.limits.transactionMs - now);
  }

  /**
   * Sends the batch. Up to the producer's `maxInflight` sends are in flight (it keeps their order:
   * sequence numbers); past that the oldest is awaited first. A failed send surfaces here or at commit.
   */
  async sendBatch(): Promise<void> {
    const max = Math.max(1, this.producer.maxInflight ?? 1);
    while (this.inflight.length >= max) await this.inflight.shift();
    if (this.batch.length === 0) return;
    const records = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    if (!this.txOpen) {
      await this.producer.begin().catch((e: unknown) => {
        throw new KafkaStepError('begin', e);
      });
      this.txOpen = true;
      this.txStartedAt = this.hooks.now();
    }
    const t0 = this.hooks.now();
    const sent = this.producer.send(records).then(
      (acks) => this.hooks.onAcks(acks, this.hooks.now() - t0),
      (e: unknown) => {
        throw new KafkaStepError('send', e);
      },
    );
    // Keep the rejection handled until awaited.
    sent.catch(() => {});
    this.inflight.push(sent);
  }

  /** Sends what is left, writes the rejects, commits; returns the committed position. */
  async commit(): Promise<{ position: Position; committedTx: boolean; rejects: number }> {
    await this.sendBatch();
    await this.settle();
    const rejects = this.rejectLines.length;
    // Rejects of the transaction become durable before the commit that moves the resume point past them.
    if (rejects > 0) {
      await this.hooks.writeRejects(this.rejectFirstRow, this.pos.row, this.rejectLines.join(''), rejects);
      this.rejectLines = [];
    }
    const committedTx = this.txOpen;
    if (this.txOpen) {
      this.hooks.checkLease();
      await this.producer.commit().catch((e: unknown) => {
        throw new KafkaStepError('commit', e);
      });
      this.txOpen = false;
    }
    this.txRows = 0;
    return { position: this.pos, committedTx, rejects };
  }

  /** Waits for the sends in flight (errors included) without throwing; for the error path. */
  async drain(): Promise<void> {
    const all = this.inflight;
    this.inflight = [];
    await Promise.all(all.map((p) => p.catch(() => {})));
  }

  /** Waits for every send in flight; the first failure (oldest first) is thrown. */
  private async settle() {
    while (this.inflight.length > 0) await this.inflight.shift();
  }

  private advance(raw: RawRow) {
    this.pos = { row: raw.row, nextByteOffset: raw.nextOffset };
  }
}
