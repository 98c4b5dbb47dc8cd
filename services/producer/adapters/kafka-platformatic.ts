import {
  crc32c,
  createAPI,
  groupByProperty,
  murmur2,
  Producer,
  produceV9,
  produceV10,
  produceV11,
  Writer,
} from '@platformatic/kafka';
import type { JobProducer, KafkaPort, OutRecord, PartitionAck } from '../ports.ts';
import { BatchEncoder, sealBatch } from './kafka-batch.ts';
import { connectionOf, type KafkaConnection, platformaticConnectionOptions } from './kafka-connection.ts';
import { readLastCommitted } from './kafka-scan.ts';

export interface KafkaClientSettings {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** transaction.timeout.ms: how long a dead producer's open transaction can hold the partition. */
  readonly transactionTimeoutMs: number;
  /** How long opening may keep retrying while the coordinator finishes aborting a predecessor. */
  readonly fenceRetryMs: number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** TLS and SASL (and the brokers, which win over `brokers`); plaintext to `brokers` when absent. */
  readonly connection?: KafkaConnection;
  /**
   * Encode record batches ourselves (see {@link installFastProduce}); false = the library's own
   * per-message path, e.g. after a library upgrade changes the internals the fast path relies on.
   */
  readonly fastEncoder?: boolean;
  /** Told when the fast encoder was asked for but this library version lacks what it needs. */
  readonly onFastEncoderUnavailable?: (reason: string) => void;
}

const FENCE_RETRYABLE =
  /PRODUCER_FENCED|CONCURRENT_TRANSACTIONS|COORDINATOR_LOAD_IN_PROGRESS|NOT_COORDINATOR|INVALID_PRODUCER_EPOCH|timed out|ECONNRE/i;

/** {@link KafkaPort} over @platformatic/kafka 1.x (transactions, idempotent, acks=all). */
export function platformaticKafka(settings: KafkaClientSettings): KafkaPort {
  const sleep = settings.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  // Built once: an MSK IAM token is then shared by every producer and scan of this process.
  const connection = platformaticConnectionOptions(connectionOf(settings));
  return {
    async openJob(jobId, topic) {
      const deadline = Date.now() + settings.fenceRetryMs;
      for (let attempt = 1; ; attempt++) {
        const producer = new Producer({
          clientId: settings.clientId,
          ...connection,
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
          return jobProducer(producer, topic, jobId, settings);
        } catch (e) {
          await producer.close().catch(() => {});
          const text = errorText(e);
          if (!FENCE_RETRYABLE.test(text) || Date.now() > deadline) throw e;
          await sleep(Math.min(2000, 100 * 2 ** attempt));
        }
      }
    },
    readLastCommitted: (jobId, topic, floor) =>
      readLastCommitted(
        { brokers: connection.bootstrapBrokers, clientId: settings.clientId, connection },
        jobId,
        topic,
        floor,
      ),
    async close() {},
  };
}

/**
 * The produce path. Records are encoded by our own {@link BatchEncoder} into one Buffer per partition
 * and handed to the library as ONE pseudo-message per partition; a Produce API installed on this
 * producer instance (see {@link installFastProduce}) writes that Buffer as the request's record batch.
 * The library still does everything around it: metadata, AddPartitionsToTxn, connection, retries,
 * errors, EndTxn. Measured: in-process 58k -> see docs/producer.md. When the library internals this
 * relies on are not found (another library version), the standard per-message path is used.
 *
 * Sequence numbers: the library counts one per pseudo-message, so the adapter keeps its own per
 * partition (from 0 after InitProducerId, advanced by the record count on each ack). A retry of the
 * same request by the library re-sends the same bytes with the same base sequence, which is exactly
 * what the idempotent producer needs. One send in flight per job (the core guarantees it, and the
 * library's idempotent connections allow one request in flight anyway).
 *
 * Partitions: a keyed record goes where the library's default partitioner put it before
 * (murmur2(key) >>> 0, modulo the partition count); records without a key go to one partition per job
 * (murmur2 of the job id), so a job keeps total order whatever the topic's partition count.
 */
function jobProducer(
  producer: Producer,
  topic: string,
  jobId: string,
  settings: Pick<KafkaClientSettings, 'fastEncoder' | 'onFastEncoderUnavailable'>,
): JobProducer {
  let tx: Awaited<ReturnType<typeof producer.beginTransaction>> | null = null;
  const fast: FastProduce =
    (settings.fastEncoder ?? true)
      ? installFastProduce(producer)
      : { enabled: false, batches: new WeakMap() };
  if ((settings.fastEncoder ?? true) && !fast.enabled) {
    settings.onFastEncoderUnavailable?.(
      'the Produce hook of @platformatic/kafka was not found; using the library path',
    );
  }
  const encoder = new BatchEncoder(new Set(['rowstream-job', 'rowstream-source']));
  const sequences = new Map<number, number>();
  let partitionsCount = 0;
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
  const sendStandard = async (t: NonNullable<typeof tx>, records: readonly OutRecord[]) => {
    const result = await t.send({
      messages: records.map((r) => {
        const headers = new Map<Buffer, Buffer>();
        for (const k in r.headers) headers.set(keyBuf(k), valueBuf(k, r.headers[k]!));
        return r.key === null
          ? { topic, value: Buffer.from(r.value), headers }
          : { topic, key: Buffer.from(r.key), value: Buffer.from(r.value), headers };
      }),
    });
    return acksFrom(result.offsets ?? [], records.length);
  };
  const sendFast = async (t: NonNullable<typeof tx>, records: readonly OutRecord[]) => {
    if (partitionsCount === 0) {
      const meta = await producer.metadata({ topics: [topic], autocreateTopics: true });
      partitionsCount = meta.topics.get(topic)?.partitionsCount ?? 1;
    }
    const nullKeyPartition = (murmur2(jobId) >>> 0) % partitionsCount;
    // Group by partition, keeping the records' order within each partition.
    let groups: Map<number, number[]> | null = null;
    for (let i = 0; i < records.length; i++) {
      const key = records[i]!.key;
      if (key === null && groups === null) continue;
      if (groups === null) {
        groups = new Map();
        for (let j = 0; j < i; j++) pushTo(groups, nullKeyPartition, j);
      }
      pushTo(
        groups,
        key === null ? nullKeyPartition : (murmur2(Buffer.from(key)) >>> 0) % partitionsCount,
        i,
      );
    }
    const timestamp = BigInt(Date.now());
    const batches: { partition: number; count: number; baseSequence: number }[] = [];
    const messages = [];
    for (const [partition, indices] of groups ?? [[nullKeyPartition, null] as const]) {
      const { buffer, count } = encoder.encode(records, indices);
      const baseSequence = sequences.get(partition) ?? 0;
      fast.batches.set(buffer, { baseSequence, timestamp });
      batches.push({ partition, count, baseSequence });
      messages.push({ topic, partition, value: buffer });
    }
    const result = await t.send({ messages });
    for (const b of batches) sequences.set(b.partition, (b.baseSequence + b.count) % 2 ** 31);
    const counts = new Map(batches.map((b) => [b.partition, b.count]));
    return (result.offsets ?? []).map((o) => ({
      partition: o.partition,
      baseOffset: o.offset.toString(),
      count: counts.get(o.partition) ?? 1,
    }));
  };
  return {
    async begin() {
      tx = await producer.beginTransaction();
    },
    async send(records: readonly OutRecord[]): Promise<PartitionAck[]> {
      if (!tx) throw new Error('send outside a transaction');
      return fast.enabled ? sendFast(tx, records) : sendStandard(tx, records);
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

function pushTo(groups: Map<number, number[]>, partition: number, index: number) {
  const list = groups.get(partition);
  if (list) list.push(index);
  else groups.set(partition, [index]);
}

interface FastProduce {
  readonly enabled: boolean;
  /** Session fields of each pre-encoded batch, looked up by its Buffer when the request is built. */
  readonly batches: WeakMap<Buffer, { baseSequence: number; timestamp: bigint }>;
}

type ProduceApi = ((...args: unknown[]) => void) & { version: number };
type ProduceMessage = { topic: string; partition: number; value?: unknown };
type ProduceOptions = { transactionalId?: string; producerId?: bigint; producerEpoch?: number };

const PRODUCE_VERSIONS = { 9: produceV9, 10: produceV10, 11: produceV11 } as const;

/**
 * Swaps the Produce API of this producer instance (the library's private `getApi` hook, found by its
 * symbol description) for one that writes our pre-encoded batches. Produce v9-v11 share one request
 * layout; any other version, a non-pre-encoded message, or a missing hook keeps the library's code.
 */
function installFastProduce(producer: Producer): FastProduce {
  const batches = new WeakMap<Buffer, { baseSequence: number; timestamp: bigint }>();
  const getApi = privateSymbol(producer, 'plt.kafka.base.getApi');
  const original = getApi ? (producer as unknown as Record<symbol, unknown>)[getApi] : undefined;
  if (!getApi || typeof original !== 'function') return { enabled: false, batches };
  const cache = new Map<number, ProduceApi>();
  const fastApi = (lib: ProduceApi): ProduceApi => {
    const version = lib.version as keyof typeof PRODUCE_VERSIONS;
    const mod = PRODUCE_VERSIONS[version];
    if (!mod) return lib;
    let api = cache.get(version);
    if (!api) {
      const createRequest = (
        acks: number,
        timeout: number,
        messages: ProduceMessage[],
        options: ProduceOptions = {},
      ) => {
        const encoded = messages.every((m) => Buffer.isBuffer(m.value) && batches.has(m.value));
        if (!encoded) return mod.createRequest(acks, timeout, messages as never, options as never);
        return Writer.create()
          .appendString(options.transactionalId)
          .appendInt16(acks)
          .appendInt32(timeout)
          .appendArray(groupByProperty<string, ProduceMessage>(messages, 'topic'), (w, [t, inTopic]) => {
            w.appendString(t).appendArray(inTopic, (w, m) => {
              const value = m.value as Buffer;
              const { baseSequence, timestamp } = batches.get(value)!;
              const batch = sealBatch(
                value,
                {
                  producerId: options.producerId ?? -1n,
                  producerEpoch: options.producerEpoch ?? -1,
                  baseSequence,
                  transactional: options.transactionalId !== undefined && options.transactionalId !== null,
                  timestamp,
                },
                crc32c,
              );
              w.appendInt32(m.partition)
                .appendUnsignedVarInt(batch.length + 1)
                .append(batch);
            });
          })
          .appendTaggedFields();
      };
      api = createAPI(0, version, createRequest, mod.parseResponse) as unknown as ProduceApi;
      cache.set(version, api);
    }
    return api;
  };
  (producer as unknown as Record<symbol, unknown>)[getApi] = function (
    this: unknown,
    name: string,
    callback: (error: Error | null, api?: ProduceApi) => void,
  ) {
    if (name !== 'Produce') return (original as (...a: unknown[]) => unknown).call(this, name, callback);
    return (original as (...a: unknown[]) => unknown).call(
      this,
      name,
      (error: Error | null, api?: ProduceApi) => {
        if (error || !api) callback(error, api);
        else callback(null, fastApi(api));
      },
    );
  };
  return { enabled: true, batches };
}

function privateSymbol(target: object, description: string): symbol | null {
  for (let p: object | null = target; p; p = Object.getPrototypeOf(p)) {
    for (const s of Object.getOwnPropertySymbols(p)) if (s.description === description) return s;
  }
  return null;
}
