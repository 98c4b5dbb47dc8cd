import { createRequire } from 'node:module';
import {
  crc32c,
  createAPI,
  groupByProperty,
  kGetApi,
  Producer,
  produceV9,
  produceV10,
  produceV11,
  Writer,
} from '@platformatic/kafka';
import { backoffDelay } from '../../shared/retry.ts';
import { ProducerError } from '../errors.ts';
import { lastRecordOnlyHeaders, type RecordHeaders } from '../job/records.ts';
import type { JobProducer, KafkaPort, OutRecord, PartitionAck, Placement } from '../ports.ts';
import { BatchEncoder, sealBatch } from './kafka-batch.ts';
import { connectionOf, type KafkaConnection, platformaticConnectionOptions } from './kafka-connection.ts';
import { type PipelineOptions, ProducePipeline } from './kafka-pipeline.ts';
import { choosePlacement, Partitioner } from './kafka-placement.ts';
import { errorText, startupRetryDelay, transactionRetryDelay } from './kafka-retry.ts';
import { describeTopicLimits, readLastCommitted } from './kafka-scan.ts';

/**
 * CRC-32C of a record batch: @node-rs/crc32's SIMD function called on the batch itself. The library's
 * exported `crc32c` calls the same function but first copies its input into a new Uint8Array (the whole
 * ~1 MB batch, every batch): 200 MB of 1 MB batches took 108-211 ms through it against 68-72 ms
 * direct. Its native binding ships per platform as an optional package: where it is missing, the
 * library's function (which then falls back to WebAssembly) is used.
 */
export const batchCrc32c: (data: Buffer) => number = (() => {
  try {
    const native = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c(input: Uint8Array): number };
    return (data: Buffer) => native.crc32c(data);
  } catch {
    return crc32c;
  }
})();

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
   * per-message path. When true and the library lacks what the fast path needs, the adapter refuses
   * to start (no silent fallback).
   */
  readonly fastEncoder?: boolean;
  /**
   * Let the broker create a missing topic on first use (its num.partitions). Off by default: in the
   * cloud topics are declared and created by an operator or the deploy, and a job for a topic that
   * does not exist fails with TOPIC_NOT_FOUND. The local stage turns it on for the demo.
   */
  readonly autocreateTopics?: boolean;
  /**
   * Produce requests in flight per connection with the fast encoder (1..5, Kafka's limit for an
   * idempotent producer that keeps order); see kafka-pipeline.ts. The library's own path always has 1.
   */
  readonly maxInflight?: number;
  /** Which headers every record carries (records.ts); `compact` when absent. */
  readonly recordHeaders?: RecordHeaders;
}

const FENCE_RETRYABLE =
  /PRODUCER_FENCED|CONCURRENT_TRANSACTIONS|COORDINATOR_LOAD_IN_PROGRESS|NOT_COORDINATOR|INVALID_PRODUCER_EPOCH|timed out|ECONNRE/i;

/** {@link KafkaPort} over @platformatic/kafka (transactions, idempotent, acks=all). */
export function platformaticKafka(settings: KafkaClientSettings): KafkaPort {
  const sleep = settings.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const fastEncoder = settings.fastEncoder ?? true;
  if (fastEncoder) assertFastProduceAvailable();
  const autocreateTopics = settings.autocreateTopics ?? false;
  const maxInflight = Math.min(5, Math.max(1, Math.floor(settings.maxInflight ?? 5)));
  // Built once: an MSK IAM token is then shared by every producer and scan of this process.
  const connection = platformaticConnectionOptions(connectionOf(settings));
  return {
    async place(jobId, topic, keyed): Promise<Placement> {
      const client = new Producer({
        clientId: settings.clientId,
        ...connection,
        timeout: settings.transactionTimeoutMs,
        retries: 5,
        retryDelay: startupRetryDelay,
      });
      try {
        const meta = await client.metadata({ topics: [topic], autocreateTopics, forceUpdate: true });
        const count = meta.topics.get(topic)?.partitionsCount;
        if (!count) throw topicNotFound(topic, autocreateTopics);
        return choosePlacement(jobId, count, keyed);
      } catch (e) {
        if (e instanceof ProducerError) throw e;
        if (/UNKNOWN_TOPIC_OR_PARTITION|Unknown topic/i.test(errorText(e)))
          throw topicNotFound(topic, autocreateTopics);
        throw e;
      } finally {
        await client.close().catch(() => {});
      }
    },
    async openJob(jobId, topic, placement, recordHeaders) {
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
          autocreateTopics,
          retryDelay: transactionRetryDelay,
        });
        try {
          // beginTransaction runs InitProducerId (the fence); cancel drops the local transaction without
          // an EndTxn, keeping the fenced producer id for the real transactions that follow.
          const tx = await producer.beginTransaction();
          await tx.cancel();
          const pipeline = fastEncoder
            ? {
                clientId: settings.clientId,
                topic,
                transactionalId: `rowstream-${jobId}`,
                maxInflight,
                timeoutMs: settings.transactionTimeoutMs,
                connection,
              }
            : null;
          return jobProducer(
            producer,
            topic,
            new Partitioner(placement),
            pipeline,
            recordHeaders ?? settings.recordHeaders ?? 'compact',
          );
        } catch (e) {
          await producer.close().catch(() => {});
          const text = errorText(e);
          if (!FENCE_RETRYABLE.test(text) || Date.now() > deadline) throw e;
          await sleep(backoffDelay(attempt, 100, 2000));
        }
      }
    },
    readLastCommitted: (jobId, topic, floor, onProgress) =>
      readLastCommitted(
        { brokers: connection.bootstrapBrokers, clientId: settings.clientId, connection },
        jobId,
        topic,
        floor,
        onProgress,
      ),
    topicLimits: (topic) =>
      describeTopicLimits(
        { brokers: connection.bootstrapBrokers, clientId: settings.clientId, connection },
        topic,
      ),
    async close() {},
  };
}

function topicNotFound(topic: string, autocreate: boolean): ProducerError {
  return new ProducerError(
    'TOPIC_NOT_FOUND',
    autocreate
      ? `topic ${topic} does not exist and the broker did not create it (auto.create.topics.enable=false?)`
      : `topic ${topic} does not exist; create it (topics are not auto-created outside the local stage)`,
  );
}

/**
 * The produce path. With the fast encoder, records are encoded by our own {@link BatchEncoder} into
 * one Buffer per partition; the Produce API installed on this producer instance (see
 * {@link installFastProduce}) writes that Buffer as the request's record batch, and the
 * {@link ProducePipeline} sends those requests on connections of its own with up to `maxInflight` in
 * flight (the library's idempotent connections allow one). The library still does InitProducerId,
 * AddPartitionsToTxn, metadata and EndTxn.
 *
 * Sequence numbers: the pipeline keeps its own per partition (from 0 after InitProducerId, advanced by
 * the record count when a batch is submitted). Any failed request fails the job's pass: the core
 * aborts, re-opens (new epoch, sequences from 0) and resumes from the last commit.
 *
 * Partitions: from the job's placement (kafka-placement.ts), in both paths: every record gets an
 * explicit partition, so neither the library's partitioner nor its partition count is ever used.
 */
function jobProducer(
  producer: Producer,
  topic: string,
  partitioner: Partitioner,
  pipelineOptions: Omit<PipelineOptions, 'register'> | null,
  recordHeaders: RecordHeaders,
): JobProducer {
  const lastOnly = lastRecordOnlyHeaders(recordHeaders);
  let tx: Awaited<ReturnType<typeof producer.beginTransaction>> | null = null;
  const fast = pipelineOptions ? installFastProduce(producer) : null;
  const pipeline =
    fast && pipelineOptions
      ? new ProducePipeline(producer, {
          ...pipelineOptions,
          register: (buffer, baseSequence, timestamp) =>
            fast.batches.set(buffer, { baseSequence, timestamp }),
        })
      : null;
  const encoder = new BatchEncoder(new Set(['rowstream-job', 'rowstream-source']), lastOnly);
  const keyBuffers = new Map<string, Buffer>();
  const shared = new Map<string, Buffer>();
  const SHARED_HEADERS = new Set(['rowstream-job', 'rowstream-source']);
  const keyBuf = (k: string) => {
    let b = keyBuffers.get(k);
    if (!b) {
      b = Buffer.from(k);
      keyBuffers.set(k, b);
    }
    return b;
  };
  const valueBuf = (k: string, v: string) => {
    if (!SHARED_HEADERS.has(k)) return Buffer.from(v);
    let b = shared.get(v);
    if (!b) {
      b = Buffer.from(v);
      shared.set(v, b);
    }
    return b;
  };
  /** Record indices per partition, in the records' order; null = all on the job's partition. */
  const group = (records: readonly OutRecord[]): Map<number, number[] | null> => {
    const single = partitioner.placement.partition;
    if (!partitioner.placement.keyed) return new Map([[single, null]]);
    const groups = new Map<number, number[]>();
    for (let i = 0; i < records.length; i++) {
      const p = partitioner.partitionOf(records[i]!.key);
      const list = groups.get(p);
      if (list) list.push(i);
      else groups.set(p, [i]);
    }
    return groups;
  };
  const acksOf = (
    offsets: readonly { partition: number; offset: bigint }[],
    counts: Map<number, number>,
  ): PartitionAck[] =>
    offsets.map((o) => ({
      partition: o.partition,
      baseOffset: o.offset.toString(),
      count: counts.get(o.partition) ?? 0,
    }));
  const sendStandard = async (t: NonNullable<typeof tx>, records: readonly OutRecord[]) => {
    const counts = new Map<number, number>();
    const partitions = records.map((r) => partitioner.partitionOf(r.key));
    // The last record of each partition (its batch's last) carries the batch-only headers.
    const lastOf = new Map<number, number>();
    for (let i = 0; i < partitions.length; i++) lastOf.set(partitions[i]!, i);
    const result = await t.send({
      messages: records.map((r, i) => {
        const partition = partitions[i]!;
        counts.set(partition, (counts.get(partition) ?? 0) + 1);
        const headers = new Map<Buffer, Buffer>();
        const last = lastOf.get(partition) === i;
        for (const k in r.headers)
          if (last || !lastOnly.has(k)) headers.set(keyBuf(k), valueBuf(k, r.headers[k]!));
        return r.key === null
          ? { topic, partition, value: Buffer.from(r.value), headers }
          : { topic, partition, key: Buffer.from(r.key), value: Buffer.from(r.value), headers };
      }),
    });
    return acksOf(result.offsets ?? [], counts);
  };
  const sendFast = (t: NonNullable<typeof tx>, p: ProducePipeline, records: readonly OutRecord[]) => {
    const batches = [];
    for (const [partition, indices] of group(records)) {
      const { buffer, count } = encoder.encode(records, indices);
      batches.push({ partition, buffer, count });
    }
    return p.send(t, batches);
  };
  return {
    maxInflight: pipeline ? pipelineOptions!.maxInflight : 1,
    async begin() {
      tx = await producer.beginTransaction();
      pipeline?.beginTransaction(tx, partitioner.placement.keyed ? [] : [partitioner.placement.partition]);
    },
    async send(records: readonly OutRecord[]): Promise<PartitionAck[]> {
      if (!tx) throw new Error('send outside a transaction');
      return pipeline ? sendFast(tx, pipeline, records) : sendStandard(tx, records);
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
      await pipeline?.close();
      await producer.close();
    },
  };
}

export interface FastProduce {
  /** Session fields of each pre-encoded batch, looked up by its Buffer when the request is built. */
  readonly batches: WeakMap<Buffer, { baseSequence: number; timestamp: bigint }>;
  /** How many Produce requests were built from pre-encoded batches (tests check the path is taken). */
  readonly stats: { fastRequests: number; libraryRequests: number };
}

type ProduceApi = ((...args: unknown[]) => void) & { version: number };
type ProduceMessage = { topic: string; partition: number; value?: unknown };
type ProduceOptions = { transactionalId?: string; producerId?: bigint; producerEpoch?: number };
type GetApi = (name: string, callback: (error: Error | null, api?: ProduceApi) => void) => void;

/**
 * Produce request versions whose layout the fast path writes (v9-v11 share one: compact strings,
 * tagged fields). The newest Produce version the pinned library can speak must be in here: a unit
 * test checks it against the library's exports, so a library upgrade that adds a version fails the
 * tests instead of silently leaving the fast path.
 */
export const FAST_PRODUCE_VERSIONS = { 9: produceV9, 10: produceV10, 11: produceV11 } as const;

/** Throws when the library does not export what the fast path uses (`kGetApi`, the Produce modules). */
export function assertFastProduceAvailable(): void {
  const getApi = (Producer.prototype as unknown as Record<symbol, unknown>)[kGetApi];
  if (typeof kGetApi !== 'symbol' || typeof getApi !== 'function') {
    throw new Error(
      '@platformatic/kafka does not export kGetApi (or its Producer lacks it): the fast produce path ' +
        'cannot be installed. Pin a version that has it, or set ROWSTREAM_PRODUCER_FAST_ENCODER=false.',
    );
  }
  for (const [v, mod] of Object.entries(FAST_PRODUCE_VERSIONS)) {
    if (typeof mod?.createRequest !== 'function' || typeof mod?.parseResponse !== 'function') {
      throw new Error(`@platformatic/kafka lacks produceV${v}.createRequest/parseResponse`);
    }
  }
}

/**
 * Wraps this producer instance's `kGetApi` (exported by @platformatic/kafka: how its clients look up
 * the API implementation for a request) so that the Produce API writes our pre-encoded batches.
 * Requests whose messages are not pre-encoded batches keep the library's encoding. A Produce version
 * outside {@link FAST_PRODUCE_VERSIONS} is an error, not a quiet slow path.
 */
export function installFastProduce(producer: Producer): FastProduce {
  assertFastProduceAvailable();
  const batches = new WeakMap<Buffer, { baseSequence: number; timestamp: bigint }>();
  const stats = { fastRequests: 0, libraryRequests: 0 };
  const target = producer as unknown as Record<symbol, GetApi>;
  const original = target[kGetApi]!;
  const cache = new Map<number, ProduceApi>();
  const fastApi = (lib: ProduceApi): ProduceApi => {
    const version = lib.version as keyof typeof FAST_PRODUCE_VERSIONS;
    const mod = FAST_PRODUCE_VERSIONS[version];
    if (!mod) {
      throw new Error(
        `the broker negotiated Produce v${lib.version}, which the fast produce path does not write ` +
          `(v${Object.keys(FAST_PRODUCE_VERSIONS).join(', v')})`,
      );
    }
    let api = cache.get(version);
    if (!api) {
      const createRequest = (
        acks: number,
        timeout: number,
        messages: ProduceMessage[],
        options: ProduceOptions = {},
      ) => {
        const encoded = messages.every((m) => Buffer.isBuffer(m.value) && batches.has(m.value));
        if (!encoded) {
          stats.libraryRequests++;
          return mod.createRequest(acks, timeout, messages as never, options as never);
        }
        stats.fastRequests++;
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
                batchCrc32c,
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
  target[kGetApi] = function (this: unknown, name, callback) {
    if (name !== 'Produce') return original.call(this, name, callback);
    return original.call(this, name, (error, api) => {
      if (error || !api) return callback(error, api);
      let fast: ProduceApi;
      try {
        fast = fastApi(api);
      } catch (e) {
        return callback(e as Error);
      }
      callback(null, fast);
    });
  };
  return { batches, stats };
}
