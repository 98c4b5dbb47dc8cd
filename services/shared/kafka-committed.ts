/**
 * A topic read read_committed, decided from the log itself: what `rowstream topic read` prints and
 * what the tests read back.
 *
 * Kafka's rule: a transactional batch is visible to a read_committed reader iff the next control
 * marker of its producer id, further on in the partition, is COMMIT; records are seen in offset
 * order, and nothing past the first batch whose transaction is still open (the last stable offset).
 * The reader fetches raw batches (read_uncommitted) and applies that rule itself, instead of trusting a
 * client's filter of the broker's aborted-transaction list: kafkajs 2.2.4 assumes that list is sorted
 * by first offset, but the broker lists aborted transactions in the order of their abort markers, so
 * when two producers' transactions on one partition are aborted in the opposite order of their starts
 * (two jobs re-opened after a broker restart), kafkajs hands out the records of the one aborted second.
 * That is what made the long fault run report 2,002 duplicated rows that no read_committed consumer
 * of the Java client sees (docs/producer.md, "Fault run").
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer, type RecordsBatch } from '@platformatic/kafka';
import type { PlatformaticConnectionOptions } from '../producer/adapters/kafka-connection.ts';

const IS_TRANSACTIONAL = 0x10;
const IS_CONTROL = 0x20;
const COMMIT = 1;

export interface CommittedRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: string;
  /** The value's bytes (Avro records are not text). */
  readonly bytes: Buffer;
  readonly headers: Record<string, string>;
}

/** One decoded batch, as far as the read_committed rule needs it. */
export interface LogBatch<R> {
  readonly firstOffset: bigint;
  readonly producerId: bigint;
  readonly transactional: boolean;
  /** null: a data batch; otherwise the control marker's type (0 abort, 1 commit). */
  readonly control: number | null;
  readonly records: readonly R[];
}

/**
 * Applies read_committed to batches of one partition given in offset order (possibly in several
 * calls): `push` returns the records that became visible, in offset order; batches after an
 * undecided transactional batch wait for its marker. `pending` counts records still undecided.
 */
export class CommittedFilter<R> {
  private readonly queue: { batch: LogBatch<R>; fate: 'open' | 'commit' | 'abort' }[] = [];
  private readonly open = new Map<bigint, { fate: 'open' | 'commit' | 'abort' }[]>();

  push(batch: LogBatch<R>): R[] {
    if (batch.control !== null) {
      const fate = batch.control === COMMIT ? 'commit' : 'abort';
      for (const entry of this.open.get(batch.producerId) ?? []) entry.fate = fate;
      this.open.delete(batch.producerId);
    } else {
      const entry = { batch, fate: batch.transactional ? ('open' as const) : ('commit' as const) };
      this.queue.push(entry);
      if (batch.transactional) {
        const list = this.open.get(batch.producerId);
        if (list) list.push(entry);
        else this.open.set(batch.producerId, [entry]);
      }
    }
    const out: R[] = [];
    while (this.queue.length > 0 && this.queue[0]!.fate !== 'open') {
      const entry = this.queue.shift()!;
      if (entry.fate === 'commit') out.push(...entry.batch.records);
    }
    return out;
  }

  get pending(): number {
    return this.queue.reduce((n, e) => n + e.batch.records.length, 0);
  }
}

function logBatch(b: RecordsBatch): LogBatch<RecordsBatch['records'][number]> {
  const control = b.attributes & IS_CONTROL ? (b.records[0]?.key?.readInt16BE(2) ?? 0) : null;
  return {
    firstOffset: b.firstOffset,
    producerId: b.producerId,
    transactional: (b.attributes & IS_TRANSACTIONAL) !== 0,
    control,
    records: b.records,
  };
}

export interface ReadCommittedOptions {
  /** Keep reading as records arrive (until `signal` aborts); otherwise stop at the end seen at the start. */
  readonly follow?: boolean;
  /** How long a --follow reader waits at the end before asking again. */
  readonly pollMs?: number;
  readonly signal?: AbortSignal;
  readonly clientId?: string;
}

type Rec = RecordsBatch['records'][number] & { batchOffset: bigint };

/**
 * Every committed record of `topic`, partition after partition in offset order up to the end the
 * topic had when the call began; with `follow`, every partition is read in turn, chunk by chunk, and
 * the reader then waits for more. Memory stays one fetch (16 MiB) plus the records of transactions
 * still open.
 */
export async function* committedRecords(
  connection: PlatformaticConnectionOptions,
  topic: string,
  opts: ReadCommittedOptions = {},
): AsyncGenerator<CommittedRecord> {
  const consumer = new Consumer({
    clientId: opts.clientId ?? 'rowstream-reader',
    ...connection,
    groupId: `rowstream-reader-${topic}-${Date.now()}`,
    timeout: 30_000,
    retries: 5,
  });
  const maxBytes = 16 << 20;
  try {
    const metadata = await consumer.metadata({ topics: [topic], forceUpdate: true });
    const t = metadata.topics.get(topic);
    if (!t) return;
    const parts = Array.from({ length: t.partitionsCount }, (_, partition) => ({
      partition,
      offset: 0n,
      end: 0n,
      filter: new CommittedFilter<Rec>(),
    }));
    const refreshEnds = async () => {
      const ends = (await consumer.listOffsets({ topics: [topic], isolationLevel: 0 })).get(topic) ?? [];
      for (const p of parts) p.end = ends[p.partition] ?? 0n;
    };
    await refreshEnds();
    // One fetch of a partition from its offset; false when it returned nothing new.
    async function* fetchOnce(p: (typeof parts)[number]): AsyncGenerator<CommittedRecord, boolean> {
      const response = await consumer.fetch({
        node: t!.partitions[p.partition]!.leader,
        maxWaitTime: 0,
        minBytes: 1,
        maxBytes,
        isolationLevel: 0,
        topics: [
          {
            topicId: t!.id,
            partitions: [
              {
                partition: p.partition,
                fetchOffset: p.offset,
                partitionMaxBytes: maxBytes,
                currentLeaderEpoch: -1,
                lastFetchedEpoch: -1,
              },
            ],
          },
        ],
      });
      const part = response.responses[0]?.partitions[0];
      if (part && part.errorCode !== 0)
        throw new Error(
          `fetch ${topic}/${p.partition} at offset ${p.offset}: Kafka error code ${part.errorCode}`,
        );
      const before = p.offset;
      for (const b of part?.records ?? []) {
        const last = b.firstOffset + BigInt(b.lastOffsetDelta);
        // A fetch can start inside a batch already seen.
        if (last < p.offset) continue;
        p.offset = last + 1n;
        const lb = logBatch(b);
        const visible = p.filter.push({
          ...lb,
          records: lb.records.map((r) => Object.assign(r, { batchOffset: b.firstOffset })),
        });
        for (const r of visible) yield toRecord(p.partition, r);
      }
      return p.offset !== before;
    }
    if (!opts.follow) {
      for (const p of parts) {
        while (p.offset < p.end && !opts.signal?.aborted) {
          if (!(yield* fetchOnce(p))) break;
        }
      }
      return;
    }
    while (!opts.signal?.aborted) {
      let moved = false;
      for (const p of parts) {
        if (p.offset < p.end && (yield* fetchOnce(p))) moved = true;
      }
      if (!moved) {
        await sleep(opts.pollMs ?? 500, undefined, { signal: opts.signal }).catch(() => {});
        await refreshEnds();
      }
    }
  } finally {
    await consumer.close().catch(() => {});
  }
}

function toRecord(partition: number, r: Rec): CommittedRecord {
  const headers: Record<string, string> = {};
  for (const [k, v] of r.headers) if (k) headers[k.toString()] = v?.toString() ?? '';
  return {
    partition,
    offset: (r.batchOffset + BigInt(r.offsetDelta)).toString(),
    key: r.key ? r.key.toString() : null,
    value: r.value ? r.value.toString() : '',
    bytes: r.value ?? Buffer.alloc(0),
    headers,
  };
}
