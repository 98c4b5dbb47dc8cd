import { compatibilityPartitioner, murmur2 } from '@platformatic/kafka';
import type { Placement } from '../ports.ts';

/**
 * Where a job's records go, decided once when the job starts and kept in its checkpoint (the core
 * records it before the first record is sent), so a resume, another producer, or partitions added to
 * the topic mid-job change nothing for the rest of the job:
 *
 * - records without a key (no key column): all on ONE partition, `murmur2(jobId) >>> 0` modulo the
 *   partition count at job start: total order for the job on any topic, jobs spread over partitions.
 * - records with a key: Kafka's default partitioner for keyed records as the Java client computes it,
 *   `Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions` (@platformatic/kafka exports it as
 *   `compatibilityPartitioner`), modulo the partition count RECORDED at job start. A key lands where a
 *   Java producer would put it and stays on one partition for the whole job, even if partitions are
 *   added meanwhile. Kafka itself guarantees per-key order only while the partition count stays the
 *   same: after an increase, the Java client sends a key's new records to the new `hash % n`, and the
 *   key's records are then split over two partitions with no order between them. rowstream keeps the
 *   job's count, so per-key order holds within a job; the next job uses the new count, as any
 *   producer would.
 */
export function choosePlacement(jobId: string, partitionsCount: number, keyed: boolean): Placement {
  if (!Number.isInteger(partitionsCount) || partitionsCount < 1) {
    throw new Error(`partition count must be a positive integer, got ${partitionsCount}`);
  }
  return { partitions: partitionsCount, partition: (murmur2(jobId) >>> 0) % partitionsCount, keyed };
}

/** The Java client's partition for a key: toPositive(murmur2(bytes)) % partitions. */
export function javaPartitionOf(key: Buffer, partitions: number): number {
  return compatibilityPartitioner(undefined as never, key) % partitions;
}

/**
 * The partition of each record under a placement. Keyed partitions are memoized per key (the library's
 * murmur2 works on BigInt and costs about a microsecond per call).
 */
export class Partitioner {
  private readonly memo = new Map<string, number>();

  constructor(readonly placement: Placement) {}

  partitionOf(key: string | null): number {
    const { placement } = this;
    if (key === null || !placement.keyed) return placement.partition;
    let p = this.memo.get(key);
    if (p === undefined) {
      p = javaPartitionOf(Buffer.from(key, 'utf8'), placement.partitions);
      if (this.memo.size >= 100_000) this.memo.clear();
      this.memo.set(key, p);
    }
    return p;
  }
}
