import type { BusEntry, BusPort } from '../../../events/bus.ts';
import type { JobStarted } from '../../../events/catalog.ts';
import type { ProducerDeps, ProducerSettings } from '../../../services/producer/core.ts';
import { LeaseLostError } from '../../../services/producer/errors.ts';
import type {
  ClaimResult,
  FinishResult,
  JobProducer,
  JobsStore,
  KafkaPort,
  KafkaRange,
  LastCommitted,
  ObjectReader,
  OutRecord,
  Placement,
  RejectsStore,
  ScanHint,
  TopicLimits,
} from '../../../services/producer/ports.ts';
import { type JobCheckpoint, type JobRecord, recordFromJobStarted } from '../../../services/shared/jobs.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import type { MetricsPort } from '../../../services/shared/metrics.ts';

/** An in-memory broker with transactions: records become visible on commit; opening fences. */
export class FakeKafka implements KafkaPort {
  readonly log: (OutRecord & { offset: number })[] = [];
  sends: number[] = [];
  commits = 0;
  opens = 0;
  /** Throws on the n-th send/commit call (1-based), once. */
  failSendAt = 0;
  /** Send calls (1-based) that throw, for several failures in one job. */
  failSendCalls: number[] = [];
  sendError = 'NOT_ENOUGH_REPLICAS';
  failCommitAt = 0;
  /** The commit reaches the broker but the ack is lost. */
  commitAckLost = false;
  private open: OutRecord[] = [];
  private epoch = 0;
  private sendCalls = 0;
  private commitCalls = 0;

  /** The topic's partition count `place` sees, and every placement it answered. */
  partitionsCount = 1;
  readonly placements: { jobId: string; topic: string; keyed: boolean }[] = [];
  /** openJob's placement argument, per open. */
  readonly openedWith: (Placement | undefined)[] = [];

  async place(jobId: string, topic: string, keyed: boolean): Promise<Placement> {
    this.placements.push({ jobId, topic, keyed });
    return { partitions: this.partitionsCount, partition: 0, keyed };
  }

  async openJob(_jobId?: string, _topic?: string, placement?: Placement): Promise<JobProducer> {
    this.opens++;
    this.openedWith.push(placement);
    // Fencing aborts whatever a previous instance left open.
    this.open = [];
    const myEpoch = ++this.epoch;
    const fenced = () => {
      if (myEpoch !== this.epoch) throw new Error('PRODUCER_FENCED');
    };
    let inTx = false;
    return {
      begin: async () => {
        fenced();
        inTx = true;
      },
      send: async (records) => {
        fenced();
        if (!inTx) throw new Error('send outside tx');
        this.sendCalls++;
        this.sends.push(records.length);
        if (this.sendCalls === this.failSendAt || this.failSendCalls.includes(this.sendCalls))
          throw new Error(this.sendError);
        const base = this.log.length + this.open.length;
        this.open.push(...records);
        return [{ partition: 0, baseOffset: String(base), count: records.length }];
      },
      commit: async () => {
        fenced();
        this.commitCalls++;
        if (this.commitCalls === this.failCommitAt && !this.commitAckLost)
          throw new Error('REQUEST_TIMED_OUT');
        // Fields by name: a RowRecord's headers are a getter, which a spread would not copy.
        for (const r of this.open)
          this.log.push({ key: r.key, value: r.value, headers: r.headers, offset: this.log.length });
        this.open = [];
        this.commits++;
        inTx = false;
        if (this.commitCalls === this.failCommitAt && this.commitAckLost)
          throw new Error('REQUEST_TIMED_OUT');
      },
      abort: async () => {
        this.open = [];
        inTx = false;
      },
      close: async () => {},
    };
  }

  /** The topic's max.message.bytes as the broker reports it (null = unknown). */
  maxMessageBytes: number | null = null;
  readonly scanHints: ScanHint[] = [];
  async topicLimits(): Promise<TopicLimits> {
    return { maxMessageBytes: this.maxMessageBytes };
  }

  async readLastCommitted(jobId: string, _topic: string, hint: ScanHint): Promise<LastCommitted | null> {
    this.scanHints.push(hint);
    // Like the real scan: nothing at or below the floor's offset is read (the floor is trusted).
    const floor = hint.floor?.find((f) => f.partition === 0)?.lastOffset;
    const lower = floor === null || floor === undefined ? -1 : Number(floor);
    for (let i = this.log.length - 1; i >= 0; i--) {
      const r = this.log[i]!;
      if (r.offset <= lower) break;
      if (r.headers['rowstream-job'] === jobId) {
        return {
          row: Number(r.headers['rowstream-row']),
          nextByteOffset: Number(r.headers['rowstream-offset']),
          partition: 0,
          offset: String(r.offset),
        };
      }
    }
    return null;
  }

  async close() {}

  rows(): number[] {
    return this.log.map((r) => Number(r.headers['rowstream-row']));
  }
}

/** Serves a buffer in chunks from the requested offset; can break the stream once. */
export class FakeReader implements ObjectReader {
  readonly opens: number[] = [];
  /** Throw once after this many bytes of one stream (0 = never). */
  breakAfterBytes = 0;
  constructor(
    private readonly data: Buffer,
    private readonly chunk = 7,
  ) {}
  async *open(_ref: unknown, fromByte: number): AsyncIterable<Buffer> {
    this.opens.push(fromByte);
    let sent = 0;
    for (let i = fromByte; i < this.data.length; i += this.chunk) {
      if (this.breakAfterBytes > 0 && sent >= this.breakAfterBytes) {
        this.breakAfterBytes = 0;
        throw new Error('ECONNRESET');
      }
      const c = this.data.subarray(i, i + this.chunk);
      sent += c.length;
      yield c;
    }
  }
}

export class FakeJobs implements JobsStore {
  record = null as JobRecord | null;
  readonly checkpoints: JobCheckpoint[] = [];
  finished: FinishResult | null = null;
  released = false;
  /** Renewals fail from the n-th on (0 = never). */
  loseLeaseAtRenewal = 0;
  private renewals = 0;

  /** No record means the planner wrote one from the event (as it would); false = the record is lost. */
  plannerRecord = true;
  /** Failures to throw from the next calls of a method (e.g. a DynamoDB throttle). */
  readonly failNext: Partial<Record<'claim' | 'checkpoint' | 'finish' | 'renew', unknown[]>> = {};

  private maybeFail(m: 'claim' | 'checkpoint' | 'finish' | 'renew') {
    const e = this.failNext[m]?.shift();
    if (e !== undefined) throw e;
  }

  private fromEvent(job: JobStarted): JobRecord {
    return recordFromJobStarted(job, 'PLANNED', job.occurredAt);
  }

  async claim(job: JobStarted, owner: string): Promise<ClaimResult> {
    this.maybeFail('claim');
    if (!this.record && this.plannerRecord) this.record = this.fromEvent(job);
    const r = this.record;
    if (!r) return { kind: 'no-record' };
    if (r.status === 'FAILED') {
      this.record = {
        ...r,
        status: 'RUNNING',
        leaseOwner: owner,
        leaseExpiresAt: Date.now() + 60_000,
        attempts: 1,
        resumes: (r.resumes ?? 0) + 1,
      };
      return { kind: 'claimed', record: this.record, resumed: true };
    }
    if (['COMPLETED', 'COMPLETED_WITH_REJECTS', 'REJECTED'].includes(r.status)) {
      return { kind: 'terminal', status: r.status };
    }
    if (
      r.status === 'RUNNING' &&
      r.leaseOwner &&
      r.leaseOwner !== owner &&
      (r.leaseExpiresAt ?? 0) > Date.now()
    ) {
      return { kind: 'busy', owner: r.leaseOwner, expiresAt: r.leaseExpiresAt ?? 0 };
    }
    const attempts = (r.attempts ?? 0) + 1;
    this.record = {
      ...r,
      status: 'RUNNING',
      leaseOwner: owner,
      leaseExpiresAt: Date.now() + 60_000,
      attempts,
    };
    return { kind: 'claimed', record: this.record, resumed: attempts > 1 };
  }
  recovered: JobCheckpoint | null = null;
  async recover(job: JobStarted, owner: string, _leaseMs: number, cp: JobCheckpoint): Promise<ClaimResult> {
    if (this.record) return { kind: 'busy', owner: 'unknown', expiresAt: 0 };
    this.recovered = cp;
    this.record = {
      ...this.fromEvent(job),
      status: 'RUNNING',
      leaseOwner: owner,
      leaseExpiresAt: Date.now() + 60_000,
      attempts: 1,
      checkpoint: cp,
      recoveredFrom: 'kafka',
    };
    return { kind: 'claimed', record: this.record, resumed: true };
  }
  async renew(jobId: string) {
    this.renewals++;
    this.maybeFail('renew');
    if (this.loseLeaseAtRenewal > 0 && this.renewals >= this.loseLeaseAtRenewal) {
      throw new LeaseLostError(jobId, 'taken');
    }
  }
  async checkpoint(_jobId: string, _owner: string, cp: JobCheckpoint) {
    this.maybeFail('checkpoint');
    this.checkpoints.push(cp);
    if (this.record) this.record = { ...this.record, checkpoint: cp };
  }
  async finish(_jobId: string, _owner: string, result: FinishResult) {
    this.maybeFail('finish');
    this.finished = result;
    if (this.record) this.record = { ...this.record, status: result.status };
  }
  async release() {
    this.released = true;
  }
}

export class FakeRejects implements RejectsStore {
  readonly parts = new Map<string, string>();
  async writePart(_jobId: string, firstRow: number, lastRow: number, lines: string) {
    this.parts.set(`${firstRow}-${lastRow}`, lines);
  }
  async combine() {
    const rows = new Map<number, string>();
    for (const text of this.parts.values()) {
      for (const line of text.split('\n').filter(Boolean)) rows.set(Number(line.split(',')[0]), line);
    }
    return { uri: rows.size ? 's3://b/rejected/j.csv' : null, rows: rows.size };
  }
  async cleanup() {}
  lines(): string[] {
    return [...this.parts.values()].flatMap((t) => t.split('\n').filter(Boolean));
  }
}

export class FakeBus implements BusPort {
  readonly entries: BusEntry[] = [];
  async putEntries(entries: readonly BusEntry[]) {
    this.entries.push(...entries);
    return entries.map(() => ({ eventId: 'x' }));
  }
  types() {
    return this.entries.map((e) => e.detailType);
  }
}

export class FakeMetrics implements MetricsPort {
  readonly points: { name: string; value: number; dims: Record<string, string> }[] = [];
  record(name: string, value: number, _unit?: string, o?: { dimensions?: Record<string, string> }) {
    this.points.push({ name, value, dims: { ...(o?.dimensions ?? {}) } });
  }
  async flush() {}
}

export function settings(over: Partial<ProducerSettings> = {}): ProducerSettings {
  return {
    owner: 'me',
    leaseMs: 60_000,
    heartbeatMs: 60_000,
    stallMs: 600_000,
    checkpointRows: 1_000_000,
    checkpointMs: 1_000_000,
    transactionRows: 4,
    transactionMs: 1_000_000,
    batchRows: 2,
    batchBytes: 1_000_000,
    maxMessageBytes: 1_000_000,
    maxAttempts: 20,
    kafkaRetries: 3,
    readRetries: 3,
    retryBaseMs: 1,
    retryMaxMs: 10,
    awsAttempts: 5,
    scanSkewMs: 1000,
    progressMs: 1_000_000,
    failOnBadRow: null,
    crashAfterCommit: 0,
    ...over,
  };
}

export function jobFor(csv: Buffer, over: Partial<JobStarted> = {}): JobStarted {
  const nl = csv.indexOf(0x0a);
  return {
    eventId: 'e',
    occurredAt: '2026-11-25T00:00:00Z',
    jobId: 'j-1',
    bucket: 'b',
    key: 'inbound/x.csv',
    etag: 'etag',
    versionId: null,
    sourceUri: 's3://b/inbound/x.csv',
    size: csv.length,
    totalRows: 10,
    header: csv.subarray(0, nl).toString().split(','),
    dataOffset: nl + 1,
    topic: 't',
    options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: false },
    ...over,
  };
}

export function makeDeps(csv: Buffer, over: Partial<ProducerDeps> = {}) {
  const kafka = new FakeKafka();
  const reader = new FakeReader(csv);
  const jobs = new FakeJobs();
  const rejects = new FakeRejects();
  const bus = new FakeBus();
  const metrics = new FakeMetrics();
  const shutdown = new AbortController();
  const deps: ProducerDeps = {
    jobs,
    kafka,
    reader,
    rejects,
    bus,
    metrics,
    logger: createLogger('producer-test', { level: 'CRITICAL' }),
    now: Date.now,
    sleep: async () => {},
    shutdown: shutdown.signal,
    ...over,
  };
  return { deps, kafka, reader, jobs, rejects, bus, metrics, shutdown };
}

export const csvOf = (n: number, header = 'id,name') =>
  Buffer.from(`${header}\n${Array.from({ length: n }, (_, i) => `${i + 1},name-${i + 1}`).join('\n')}\n`);

export type { KafkaRange };
