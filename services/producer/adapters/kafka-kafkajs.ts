import { Kafka, logLevel, type Producer, type Transaction } from 'kafkajs';
import type { JobProducer, KafkaPort, OutRecord, PartitionAck } from '../ports.ts';
import { connectionOf, kafkajsConnectionOptions, platformaticConnectionOptions } from './kafka-connection.ts';
import { errorText, type KafkaClientSettings } from './kafka-platformatic.ts';
import { readLastCommitted } from './kafka-scan.ts';

const FENCE_RETRYABLE =
  /CONCURRENT_TRANSACTIONS|COORDINATOR|PRODUCER_FENCED|INVALID_PRODUCER_EPOCH|timeout|ECONNRE/i;

/**
 * {@link KafkaPort} over kafkajs 2.2.4. Its idempotent producer loses messages with concurrent sends to
 * one partition (kafkajs issue 1005): the core keeps exactly one awaited send per job, and the producer
 * is created with maxInFlightRequests 1.
 */
export function kafkajsKafka(settings: KafkaClientSettings): KafkaPort {
  const sleep = settings.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const connection = connectionOf(settings);
  // The resume scan (kafka-scan.ts) always runs on @platformatic/kafka, so it gets that client's options.
  const scanConnection = platformaticConnectionOptions(connection);
  const kafka = new Kafka({
    clientId: settings.clientId,
    ...kafkajsConnectionOptions(connection),
    logLevel: logLevel.ERROR,
    retry: { retries: 5, initialRetryTime: 100 },
  });
  return {
    async openJob(jobId, topic) {
      const deadline = Date.now() + settings.fenceRetryMs;
      for (let attempt = 1; ; attempt++) {
        const producer = kafka.producer({
          transactionalId: `rowstream-${jobId}`,
          idempotent: true,
          maxInFlightRequests: 1,
          transactionTimeout: settings.transactionTimeoutMs,
          allowAutoTopicCreation: true,
        });
        try {
          // connect() runs InitProducerId for the transactional id: the fence.
          await producer.connect();
          return jobProducer(producer, topic);
        } catch (e) {
          await producer.disconnect().catch(() => {});
          if (!FENCE_RETRYABLE.test(errorText(e)) || Date.now() > deadline) throw e;
          await sleep(Math.min(2000, 100 * 2 ** attempt));
        }
      }
    },
    readLastCommitted: (jobId, topic, floor) =>
      readLastCommitted(
        { brokers: scanConnection.bootstrapBrokers, clientId: settings.clientId, connection: scanConnection },
        jobId,
        topic,
        floor,
      ),
    async close() {},
  };
}

function jobProducer(producer: Producer, topic: string): JobProducer {
  let tx: Transaction | null = null;
  return {
    async begin() {
      tx = await producer.transaction();
    },
    async send(records: readonly OutRecord[]): Promise<PartitionAck[]> {
      if (!tx) throw new Error('send outside a transaction');
      const meta = await tx.send({
        topic,
        acks: -1,
        messages: records.map((r) => ({ key: r.key, value: r.value, headers: { ...r.headers } })),
      });
      return meta.map((m) => ({
        partition: m.partition,
        baseOffset: String(m.baseOffset ?? m.offset ?? '0'),
        count: meta.length === 1 ? records.length : 1,
      }));
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
      await producer.disconnect();
    },
  };
}
