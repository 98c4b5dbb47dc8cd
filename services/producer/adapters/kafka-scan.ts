import { Admin, Consumer, type RecordsBatch } from '@platformatic/kafka';
import type { LastCommitted, ScanHint, TopicLimits } from '../ports.ts';
import type { PlatformaticConnectionOptions } from './kafka-connection.ts';
import { errorText, startupRetryDelay } from './kafka-retry.ts';

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
 * What is read is bounded by the job, not the topic (see {@link ScanHint}): only the job's own
 * partition when known, and in each partition nothing below the checkpoint's offset nor below the first
 * offset written after the job started (ListOffsets by timestamp). So resume costs the same on a topic
 * of a thousand records or a billion (bench/resume.ts).
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
  hint: ScanHint,
  /** Called after each fetch (the producer's stall clock: a long scan is not a hang). */
  onProgress?: () => void,
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
    const metadata = await consumer.metadata({ topics: [topic] }).catch((e: unknown) => {
      // The topic is created on the first produce: no topic, nothing of the job in it.
      if (isUnknownTopic(e)) return null;
      throw e;
    });
    const t = metadata?.topics.get(topic);
    if (!t) return null;
    const ends = (await consumer.listOffsets({ topics: [topic], isolationLevel: 0 })).get(topic) ?? [];
    // Log start (-2) or, better, the first offset at/after the job's start: older records are not its own.
    const since = hint.sinceMs === null ? -2n : BigInt(Math.max(0, Math.floor(hint.sinceMs)));
    const starts =
      (await consumer.listOffsets({ topics: [topic], isolationLevel: 0, timestamp: since })).get(topic) ?? [];
    let best: LastCommitted | null = null;
    for (let partition = 0; partition < t.partitionsCount; partition++) {
      if (hint.partitions && !hint.partitions.includes(partition)) continue;
      const p = t.partitions[partition];
      const end = ends[partition] ?? 0n;
      // -1: no record at or after `since` in this partition.
      const first = starts[partition] ?? 0n;
      const logStart = first < 0n ? end : first;
      const floorRange = hint.floor?.find((f) => f.partition === partition);
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
        onProgress,
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
  onProgress?: (() => void) | undefined;
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
      // Records of one batch come from one producer, i.e. one job: its newest record carrying the
      // position is the answer (the last record in both record formats, records.ts).
      let found: { row: number; next: number; offsetDelta: number } | null = null;
      let otherJob = false;
      for (let r = b.records.length - 1; r >= 0 && !found && !otherJob; r--) {
        const rec = b.records[r]!;
        let job: string | undefined;
        let rowText: string | undefined;
        let nextText: string | undefined;
        for (const [k, v] of rec.headers) {
          const name = k?.toString();
          if (name === jobKey) job = v?.toString() ?? '';
          else if (name === 'rowstream-row') rowText = v?.toString();
          else if (name === 'rowstream-offset') nextText = v?.toString();
        }
        if (job !== undefined && job !== target.jobId) otherJob = true;
        else if (job === target.jobId && rowText !== undefined && nextText !== undefined) {
          const row = Number(rowText);
          const next = Number(nextText);
          if (Number.isFinite(row) && Number.isFinite(next))
            found = { row, next, offsetDelta: rec.offsetDelta };
        }
      }
      if (!found) continue;
      return {
        row: found.row,
        nextByteOffset: found.next,
        partition: target.partition,
        offset: (b.firstOffset + BigInt(found.offsetDelta)).toString(),
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
    target.onProgress?.();
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

const TOPIC_RESOURCE = 2;

/** The topic's max.message.bytes (DescribeConfigs); null when the topic does not exist yet. */
export async function describeTopicLimits(opts: ScanOptions, topic: string): Promise<TopicLimits> {
  const admin = new Admin({
    clientId: opts.clientId ?? 'rowstream-producer-limits',
    bootstrapBrokers: [...opts.brokers],
    ...opts.connection,
    timeout: 15_000,
    retries: 1,
    // An unknown topic (created on first use, locally) is answered at once; no 1 s wait for it.
    retryDelay: startupRetryDelay,
  });
  try {
    const results = await admin.describeConfigs({
      resources: [
        { resourceType: TOPIC_RESOURCE, resourceName: topic, configurationKeys: ['max.message.bytes'] },
      ],
    });
    const value = results.flatMap((r) => r.configs ?? []).find((c) => c.name === 'max.message.bytes')?.value;
    const n = value === undefined || value === null ? Number.NaN : Number(value);
    return { maxMessageBytes: Number.isFinite(n) && n > 0 ? n : null };
  } catch (e) {
    // UNKNOWN_TOPIC_OR_PARTITION: the topic is created on first use (locally); the broker default applies.
    if (isUnknownTopic(e)) return { maxMessageBytes: null };
    throw e;
  } finally {
    await admin.close().catch(() => {});
  }
}

function isUnknownTopic(e: unknown): boolean {
  return /UNKNOWN_TOPIC|Unknown topic|does not exist/i.test(errorText(e));
}
