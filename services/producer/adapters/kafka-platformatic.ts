import { Producer } from '@platformatic/kafka';
import type { JobProducer, KafkaPort, OutRecord, PartitionAck } from '../ports.ts';
import { readLastCommitted } from './kafka-scan.ts';

export interface KafkaClientSettings {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** transaction.timeout.ms: how long a dead producer's open transaction can hold the partition. */
  readonly transactionTimeoutMs: number;
  /** How long opening may keep retrying while the coordinator finishes aborting a predecessor. */
  readonly fenceRetryMs: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const FENCE_RETRYABLE =
  /PRODUCER_FENCED|CONCURRENT_TRANSACTIONS|COORDINATOR_LOAD_IN_PROGRESS|NOT_COORDINATOR|INVALID_PRODUCER_EPOCH|timed out|ECONNRE/i;

/** {@link KafkaPort} over @platformatic/kafka 1.x (transactions, idempotent, acks=all). */
export function platformaticKafka(settings: KafkaClientSettings): KafkaPort {
  const sleep = settings.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  return {
    async openJob(jobId, topic) {
      const deadline = Date.now() + settings.fenceRetryMs;
      for (let attempt = 1; ; attempt++) {
        const producer = new Producer({
          clientId: settings.clientId,
          bootstrapBrokers: [...settings.brokers],
          transactionalId: `rowstream-${jobId}`,
          idempotent: true,
          acks: -1,
          // The library sends `timeout` as the InitProducerId transaction timeout, and uses it per request.
          timeout: settings.transactionTimeoutMs,
          retries: 3,
          // InitProducerId must say "no previous producer" (-1/-1): the library's default (0/0) makes the
          // coordinator answer PRODUCER_FENCED for a transactional.id that already has a producer id,
          // which is what a restarted job always has. With -1 the coordinator fences and aborts.
          producerId: -1n,
          producerEpoch: -1,
          // Topics are normally provisioned; locally the broker creates them on first use.
          autocreateTopics: true,
        });
        try {
          // beginTransaction runs InitProducerId (the fence); cancel drops the local transaction without
          // an EndTxn, keeping the fenced producer id for the real transactions that follow.
          const tx = await producer.beginTransaction();
          await tx.cancel();
          return jobProducer(producer, topic);
        } catch (e) {
          await producer.close().catch(() => {});
          const text = errorText(e);
          if (!FENCE_RETRYABLE.test(text) || Date.now() > deadline) throw e;
          await sleep(Math.min(2000, 100 * 2 ** attempt));
        }
      }
    },
    readLastCommitted: (jobId, topic, floor) =>
      readLastCommitted({ brokers: settings.brokers, clientId: settings.clientId }, jobId, topic, floor),
    async close() {},
  };
}

/**
 * Records are handed to the library as Buffers with a Map of Buffer headers: header keys and the
 * per-job header values (job id, source) are encoded once and shared, which removed a third of the
 * per-record allocations (the producer is CPU- and GC-bound on a small machine).
 */
function jobProducer(producer: Producer, topic: string): JobProducer {
  let tx: Awaited<ReturnType<typeof producer.beginTransaction>> | null = null;
  const keyBuffers = new Map<string, Buffer>();
  const shared = new Map<string, Buffer>();
  const keyBuf = (k: string) => {
    let b = keyBuffers.get(k);
    if (!b) {
      b = Buffer.from(k);
      keyBuffers.set(k, b);
    }
    return b;
  };
  const SHARED_HEADERS = new Set(['rowstream-job', 'rowstream-source']);
  const valueBuf = (k: string, v: string) => {
    if (!SHARED_HEADERS.has(k)) return Buffer.from(v);
    let b = shared.get(v);
    if (!b) {
      b = Buffer.from(v);
      shared.set(v, b);
    }
    return b;
  };
  return {
    async begin() {
      tx = await producer.beginTransaction();
    },
    async send(records: readonly OutRecord[]): Promise<PartitionAck[]> {
      if (!tx) throw new Error('send outside a transaction');
      const result = await tx.send({
        messages: records.map((r) => {
          const headers = new Map<Buffer, Buffer>();
          for (const k in r.headers) headers.set(keyBuf(k), valueBuf(k, r.headers[k]!));
          return r.key === null
            ? { topic, value: Buffer.from(r.value), headers }
            : { topic, key: Buffer.from(r.key), value: Buffer.from(r.value), headers };
        }),
      });
      return acksFrom(result.offsets ?? [], records.length);
    },
    async commit() {
      if (!tx) return;
      const t = tx;
      tx = null;
      await t.commit();
    },
    async abort() {
      if (!tx) return;
      const t = tx;
      tx = null;
      await t.abort();
    },
    async close() {
      await producer.close();
    },
  };
}

/** Base offsets per partition; the count is exact when the batch went to one partition. */
export function acksFrom(
  offsets: readonly { partition: number; offset: bigint }[],
  records: number,
): PartitionAck[] {
  return offsets.map((o) => ({
    partition: o.partition,
    baseOffset: o.offset.toString(),
    count: offsets.length === 1 ? records : 1,
  }));
}

export function errorText(e: unknown): string {
  const parts: string[] = [];
  const walk = (x: unknown, depth: number) => {
    if (!x || depth > 4) return;
    const err = x as { message?: string; apiId?: string; code?: string; errors?: unknown[]; cause?: unknown };
    parts.push(`${err.apiId ?? ''} ${err.code ?? ''} ${err.message ?? String(x)}`);
    for (const inner of err.errors ?? []) walk(inner, depth + 1);
    walk(err.cause, depth + 1);
  };
  walk(e, 0);
  return parts.join(' | ');
}
