import { Consumer, type RecordsBatch } from '@platformatic/kafka';
import type { KafkaRange, LastCommitted } from '../ports.ts';
import type { PlatformaticConnectionOptions } from './kafka-connection.ts';

/**
 * Finds a job's newest COMMITTED record by scanning each partition backwards from its end.
 *
 * Why not a read_committed consumer: read_committed stops at the last stable offset, so another job's
 * open transaction on a shared topic would hide this job's later committed records (resume too early:
 * duplicates); and client-side aborted-record filtering is only as good as the fetch window. So this
 * reads raw batches (read_uncommitted) and decides itself: a transactional batch is committed iff the
 * next control marker of its producer id, further on in the partition, is COMMIT. Callers fence first
 * (open the job's transactional producer), so every transaction of the job is closed by a marker.
 *
 * Used by both Kafka adapters (the scan is the same whichever client produces).
 */

const IS_TRANSACTIONAL = 0x10;
const IS_CONTROL = 0x20;
const COMMIT = 1;

export interface ScanOptions {
  readonly brokers: readonly string[];
  readonly clientId?: string;
  /** First window in offsets; doubles while nothing is found. */
  readonly windowOffsets?: number;
  readonly maxFetchBytes?: number;
  /** TLS and SASL of the producer's connection (its bootstrapBrokers win over `brokers`). */
  readonly connection?: PlatformaticConnectionOptions;
}

export async function readLastCommitted(
  opts: ScanOptions,
  jobId: string,
  topic: string,
  floor: readonly KafkaRange[] | null,
): Promise<LastCommitted | null> {
  const consumer = new Consumer({
    clientId: opts.clientId ?? 'rowstream-producer-scan',
    bootstrapBrokers: [...opts.brokers],
    ...opts.connection,
    groupId: `rowstream-scan-${jobId}`,
    timeout: 15_000,
    retries: 5,
  });
  try {
    const metadata = await consumer.metadata({ topics: [topic] });
    const t = metadata.topics.get(topic);
    if (!t) return null;
    const ends = (await consumer.listOffsets({ topics: [topic], isolationLevel: 0 })).get(topic) ?? [];
    const starts =
      (await consumer.listOffsets({ topics: [topic], isolationLevel: 0, timestamp: -2n })).get(topic) ?? [];
    let best: LastCommitted | null = null;
    for (let partition = 0; partition < t.partitionsCount; partition++) {
      const p = t.partitions[partition];
      const end = ends[partition] ?? 0n;
      const logStart = starts[partition] ?? 0n;
      const floorRange = floor?.find((f) => f.partition === partition);
      const floorOffset = floorRange?.lastOffset ? BigInt(floorRange.lastOffset) : -1n;
      const lower = floorOffset + 1n > logStart ? floorOffset + 1n : logStart;
      if (!p || end <= lower) continue;
      const found = await scanPartition(consumer, opts, {
        topicId: t.id,
        partition,
        leader: p.leader,
        lower,
        end,
        jobId,
      });
      if (found && (!best || found.row > best.row)) best = found;
    }
    return best;
  } finally {
    await consumer.close().catch(() => {});
  }
}

interface ScanTarget {
  topicId: string;
  partition: number;
  leader: number;
  lower: bigint;
  end: bigint;
  jobId: string;
}

async function scanPartition(
  consumer: Consumer,
  opts: ScanOptions,
  target: ScanTarget,
): Promise<LastCommitted | null> {
  const jobKey = 'rowstream-job';
  // Nearest later control marker per producer id, as seen walking backwards.
  const markers = new Map<bigint, number>();
  let window = BigInt(opts.windowOffsets ?? 20_000);
  let hi = target.end;
  while (hi > target.lower) {
    let lo = hi - window;
    if (lo < target.lower) lo = target.lower;
    const batches = await fetchRange(consumer, opts, target, lo, hi);
    for (let i = batches.length - 1; i >= 0; i--) {
      const b = batches[i]!;
      if (b.attributes & IS_CONTROL) {
        const type = b.records[0]?.key?.readInt16BE(2);
        if (type !== undefined) markers.set(b.producerId, type);
        continue;
      }
      if (!(b.attributes & IS_TRANSACTIONAL)) continue;
      if (markers.get(b.producerId) !== COMMIT) continue;
      // Records of one batch come from one producer, i.e. one job: its newest record is the answer.
      const rec = b.records[b.records.length - 1];
      if (!rec) continue;
      const headers = new Map<string, string>();
      for (const [k, v] of rec.headers) if (k) headers.set(k.toString(), v?.toString() ?? '');
      if (headers.get(jobKey) !== target.jobId) continue;
      const row = Number(headers.get('rowstream-row'));
      const next = Number(headers.get('rowstream-offset'));
      if (!Number.isFinite(row) || !Number.isFinite(next)) continue;
      return {
        row,
        nextByteOffset: next,
        partition: target.partition,
        offset: (b.firstOffset + BigInt(rec.offsetDelta)).toString(),
      };
    }
    hi = lo;
    if (window < 2_000_000n) window *= 2n;
  }
  return null;
}

/** Batches whose first offset lies in [lo, hi), in offset order. */
async function fetchRange(
  consumer: Consumer,
  opts: ScanOptions,
  target: ScanTarget,
  lo: bigint,
  hi: bigint,
): Promise<RecordsBatch[]> {
  const out: RecordsBatch[] = [];
  let offset = lo;
  const maxBytes = opts.maxFetchBytes ?? 16 * 1024 * 1024;
  while (offset < hi) {
    const response = await consumer.fetch({
      node: target.leader,
      maxWaitTime: 0,
      minBytes: 1,
      maxBytes,
      isolationLevel: 0,
      topics: [
        {
          topicId: target.topicId,
          partitions: [
            {
              partition: target.partition,
              fetchOffset: offset,
              partitionMaxBytes: maxBytes,
              currentLeaderEpoch: -1,
              lastFetchedEpoch: -1,
            },
          ],
        },
      ],
    });
    const part = response.responses[0]?.partitions[0];
    if (part && part.errorCode !== 0) throw new Error(`fetch error code ${part.errorCode}`);
    const batches = part?.records ?? [];
    if (batches.length === 0) break;
    let advanced = false;
    for (const b of batches) {
      const last = b.firstOffset + BigInt(b.lastOffsetDelta);
      if (b.firstOffset >= lo && b.firstOffset < hi) out.push(b);
      if (last + 1n > offset) {
        offset = last + 1n;
        advanced = true;
      }
    }
    if (!advanced) break;
  }
  return out;
}
