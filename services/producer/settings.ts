import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { RecordHeaders } from '../../events/catalog.ts';
import { PREFIXES } from '../../topology/topology.ts';
import { CommonEnv, intFromEnv, loadConfig, SourceFateEnvShape } from '../shared/config.ts';
import { SchemaEnvShape } from '../shared/schema/settings.ts';
import { parseTopicPolicy } from '../shared/topics.ts';
import {
  checkKafkaConnection,
  type KafkaConnection,
  KafkaConnectionShape,
  kafkaConnectionFrom,
} from './adapters/kafka-connection.ts';
import type { ProducerSettings } from './core.ts';

/** Every ROWSTREAM_PRODUCER_* setting (documented in docs/producer.md). */
export const ProducerEnv = CommonEnv.extend({
  ROWSTREAM_BUCKET: z.string().min(1),
  ROWSTREAM_BUS_NAME: z.string().min(1),
  ROWSTREAM_JOBS_TABLE: z.string().min(1),
  ROWSTREAM_PRODUCER_QUEUE_URL: z.string().min(1),
  /** The topics jobs may write to: the same settings the planner validates overrides with. */
  ROWSTREAM_DEFAULT_TOPIC: z.string().min(1).default('rowstream.rows'),
  ROWSTREAM_ALLOWED_TOPICS: z.string().optional(),
  // KAFKA_BROKERS, KAFKA_SSL, KAFKA_SASL_MECHANISM, KAFKA_USERNAME, KAFKA_PASSWORD (docs/producer.md).
  ...KafkaConnectionShape,
  ...SchemaEnvShape,
  // ROWSTREAM_SOURCE_FATE: tag | move (docs/planner.md, "The source object's fate").
  ...SourceFateEnvShape,
  ROWSTREAM_INBOUND_PREFIX: z.string().min(1).default(PREFIXES.inbound),
  ROWSTREAM_PRODUCER_ID: z.string().min(1).optional(),
  /** Our own record-batch encoder on the produce path (docs/producer.md). */
  ROWSTREAM_PRODUCER_FAST_ENCODER: z.enum(['true', 'false', '1', '0']).default('true'),
  /** Produce requests in flight per connection with the fast encoder (Kafka keeps order up to 5). */
  ROWSTREAM_PRODUCER_MAX_INFLIGHT: z.coerce.number().int().min(1).max(5).default(5),
  /**
   * Headers on every record (`full`), source/offset once per batch (`compact`), or all four once per
   * batch (`batch`); docs/producer.md "Record format".
   */
  ROWSTREAM_PRODUCER_RECORD_HEADERS: RecordHeaders.default('compact'),
  /** Let the broker create a job's missing topic (local stage only; off in the cloud, issue 14). */
  ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS: z.enum(['true', 'false', '1', '0']).default('false'),
  ROWSTREAM_PRODUCER_CONCURRENCY: intFromEnv(1),
  ROWSTREAM_PRODUCER_LEASE_MS: intFromEnv(30_000),
  ROWSTREAM_PRODUCER_HEARTBEAT_MS: intFromEnv(10_000),
  ROWSTREAM_PRODUCER_SWEEP_MS: intFromEnv(15_000),
  /** A PLANNED job whose JobStarted did not go out within this long is run by the sweeper. */
  ROWSTREAM_PRODUCER_PLANNED_GRACE_MS: intFromEnv(120_000),
  /**
   * No progress for this long: stop renewing the lease (another producer takes over). Longer than the
   * longest bounded step (FENCE_RETRY_MS, the SDK's timeouts x attempts), so only a hang trips it.
   */
  ROWSTREAM_PRODUCER_STALL_MS: intFromEnv(120_000),
  ROWSTREAM_PRODUCER_WAIT_SECONDS: z.coerce.number().int().min(0).max(20).default(20),
  ROWSTREAM_PRODUCER_CHECKPOINT_ROWS: intFromEnv(200_000),
  ROWSTREAM_PRODUCER_CHECKPOINT_MS: intFromEnv(5_000),
  ROWSTREAM_PRODUCER_TRANSACTION_ROWS: intFromEnv(50_000),
  ROWSTREAM_PRODUCER_TRANSACTION_MS: intFromEnv(5_000),
  ROWSTREAM_PRODUCER_TRANSACTION_TIMEOUT_MS: intFromEnv(15_000),
  ROWSTREAM_PRODUCER_FENCE_RETRY_MS: intFromEnv(60_000),
  ROWSTREAM_PRODUCER_BATCH_ROWS: intFromEnv(5_000),
  ROWSTREAM_PRODUCER_BATCH_BYTES: intFromEnv(900_000),
  ROWSTREAM_PRODUCER_MAX_MESSAGE_BYTES: intFromEnv(1_000_000),
  ROWSTREAM_PRODUCER_MAX_ATTEMPTS: intFromEnv(20),
  ROWSTREAM_PRODUCER_KAFKA_RETRIES: intFromEnv(5),
  ROWSTREAM_PRODUCER_READ_RETRIES: intFromEnv(5),
  ROWSTREAM_PRODUCER_RETRY_BASE_MS: intFromEnv(200),
  ROWSTREAM_PRODUCER_RETRY_MAX_MS: intFromEnv(10_000),
  /** Tries of one AWS call of a job (on top of the SDK's own) before AWS_RETRIES_EXHAUSTED. */
  ROWSTREAM_PRODUCER_AWS_ATTEMPTS: intFromEnv(8),
  ROWSTREAM_PRODUCER_SCAN_SKEW_MS: intFromEnv(300_000),
  ROWSTREAM_PRODUCER_PROGRESS_MS: intFromEnv(60_000),
  ROWSTREAM_PRODUCER_GRACE_MS: intFromEnv(25_000),
  ROWSTREAM_PRODUCER_FAIL_ON_BAD_ROW: z.enum(['true', 'false', '1', '0', 'event']).default('event'),
  ROWSTREAM_PRODUCER_METRICS: z.enum(['true', 'false', '1', '0']).default('true'),
  ROWSTREAM_PRODUCER_METRICS_FLUSH_MS: intFromEnv(10_000),
  ROWSTREAM_PRODUCER_CRASH_AFTER_COMMIT: z.coerce.number().int().min(0).default(0),
  /** Exit when idle this long (0 = run forever); for benchmarks and tests. */
  ROWSTREAM_PRODUCER_EXIT_WHEN_IDLE_MS: z.coerce.number().int().min(0).default(0),
}).superRefine(checkKafkaConnection);
export type ProducerEnv = z.infer<typeof ProducerEnv>;

export function loadProducerEnv(env: NodeJS.ProcessEnv = process.env): ProducerEnv {
  return loadConfig(ProducerEnv, env);
}

/** Brokers, TLS and SASL for both Kafka clients (MSK IAM signs for AWS_REGION unless the broker names say). */
export function kafkaConnection(env: ProducerEnv): KafkaConnection {
  return kafkaConnectionFrom(env, env.AWS_REGION);
}

export function coreSettings(env: ProducerEnv): ProducerSettings {
  const fob = env.ROWSTREAM_PRODUCER_FAIL_ON_BAD_ROW;
  return {
    owner: env.ROWSTREAM_PRODUCER_ID ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    leaseMs: env.ROWSTREAM_PRODUCER_LEASE_MS,
    heartbeatMs: env.ROWSTREAM_PRODUCER_HEARTBEAT_MS,
    stallMs: env.ROWSTREAM_PRODUCER_STALL_MS,
    checkpointRows: env.ROWSTREAM_PRODUCER_CHECKPOINT_ROWS,
    checkpointMs: env.ROWSTREAM_PRODUCER_CHECKPOINT_MS,
    transactionRows: env.ROWSTREAM_PRODUCER_TRANSACTION_ROWS,
    transactionMs: env.ROWSTREAM_PRODUCER_TRANSACTION_MS,
    batchRows: env.ROWSTREAM_PRODUCER_BATCH_ROWS,
    batchBytes: env.ROWSTREAM_PRODUCER_BATCH_BYTES,
    maxMessageBytes: env.ROWSTREAM_PRODUCER_MAX_MESSAGE_BYTES,
    maxAttempts: env.ROWSTREAM_PRODUCER_MAX_ATTEMPTS,
    kafkaRetries: env.ROWSTREAM_PRODUCER_KAFKA_RETRIES,
    readRetries: env.ROWSTREAM_PRODUCER_READ_RETRIES,
    retryBaseMs: env.ROWSTREAM_PRODUCER_RETRY_BASE_MS,
    retryMaxMs: env.ROWSTREAM_PRODUCER_RETRY_MAX_MS,
    awsAttempts: env.ROWSTREAM_PRODUCER_AWS_ATTEMPTS,
    scanSkewMs: env.ROWSTREAM_PRODUCER_SCAN_SKEW_MS,
    progressMs: env.ROWSTREAM_PRODUCER_PROGRESS_MS,
    failOnBadRow: fob === 'event' ? null : fob === 'true' || fob === '1',
    crashAfterCommit: env.ROWSTREAM_PRODUCER_CRASH_AFTER_COMMIT,
    topicPolicy: parseTopicPolicy(env.ROWSTREAM_ALLOWED_TOPICS, env.ROWSTREAM_DEFAULT_TOPIC),
  };
}
