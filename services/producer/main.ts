import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { dynamoMoveRecord } from '../shared/adapters/move-record-dynamo.ts';
import { s3ObjectMove } from '../shared/adapters/object-move-s3.ts';
import { s3ObjectTags } from '../shared/adapters/object-tags-s3.ts';
import { s3PlanStore } from '../shared/adapters/plan-store-s3.ts';
import { serviceRuntime } from '../shared/runtime.ts';
import { glueSchemaReader } from '../shared/schema/registry-glue-reader.ts';
import { registryNameFrom } from '../shared/schema/settings.ts';
import { dynamoJobs } from './adapters/jobs-dynamo.ts';
import { connectionSummary } from './adapters/kafka-connection.ts';
import { platformaticKafka } from './adapters/kafka-platformatic.ts';
import { s3Reader } from './adapters/object-reader-s3.ts';
import { protectionFromEnv } from './adapters/protection-ecs.ts';
import { s3Rejects } from './adapters/rejects-s3.ts';
import { type ProducerDeps, runJob } from './core.ts';
import { scaleInProtection } from './protection.ts';
import { serviceLoop } from './service.ts';
import { coreSettings, kafkaConnection, loadProducerEnv } from './settings.ts';

/**
 * The producer service: a long-running loop (plain Node locally, ECS Fargate in the cloud).
 *
 * Queue handling: "take by lease, delete the message, sweep expired leases". A JobStarted message is
 * deleted as soon as the job is claimed (or found terminal / leased by a live producer); from then on
 * the lease in the jobs table is the only claim. Each producer also sweeps the byStatus index for
 * RUNNING jobs whose lease expired (their producer died) and takes them over. Why not heartbeat the
 * message visibility: every crash would cost a receive (and a `busy` answer another), so a job killed
 * a few times would reach maxReceiveCount and land in the DLQ while perfectly healthy; and a job
 * handed back on SIGTERM would wait for the visibility timeout instead of being taken at once.
 */

const env = loadProducerEnv(process.env);
const settings = coreSettings(env);
const runtime = serviceRuntime('producer', env, {
  logKeys: { owner: settings.owner },
  metricsEnabled: env.ROWSTREAM_PRODUCER_METRICS === 'true' || env.ROWSTREAM_PRODUCER_METRICS === '1',
  metricsFlushMs: env.ROWSTREAM_PRODUCER_METRICS_FLUSH_MS,
});
const { log: logger, metrics, clients: aws } = runtime;
const connection = kafkaConnection(env);
const kafkaSettings = {
  brokers: connection.brokers,
  connection,
  clientId: `rowstream-producer-${env.ROWSTREAM_STAGE}`,
  transactionTimeoutMs: env.ROWSTREAM_PRODUCER_TRANSACTION_TIMEOUT_MS,
  fenceRetryMs: env.ROWSTREAM_PRODUCER_FENCE_RETRY_MS,
  fastEncoder: env.ROWSTREAM_PRODUCER_FAST_ENCODER === 'true' || env.ROWSTREAM_PRODUCER_FAST_ENCODER === '1',
  maxInflight: env.ROWSTREAM_PRODUCER_MAX_INFLIGHT,
  recordHeaders: env.ROWSTREAM_PRODUCER_RECORD_HEADERS,
  autocreateTopics:
    env.ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS === 'true' || env.ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS === '1',
};
const kafka = platformaticKafka(kafkaSettings);
const jobs = dynamoJobs(aws.doc, env.ROWSTREAM_JOBS_TABLE);
const shutdown = new AbortController();
const registryName = registryNameFrom(env);

const deps: ProducerDeps = {
  jobs,
  kafka,
  reader: s3Reader(aws.s3),
  rejects: s3Rejects(aws.s3, env.ROWSTREAM_BUCKET),
  bus: eventBridgeBus(aws.events, env.ROWSTREAM_BUS_NAME),
  metrics,
  logger,
  now: Date.now,
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
  shutdown: shutdown.signal,
  schemaRegistry: registryName ? glueSchemaReader(aws.glue, registryName) : null,
  sourceTags: s3ObjectTags(aws.s3),
  sourceMove:
    env.ROWSTREAM_SOURCE_FATE === 'move'
      ? {
          objects: s3ObjectMove(aws.s3),
          records: dynamoMoveRecord(aws.doc, env.ROWSTREAM_JOBS_TABLE),
          inboundPrefix: env.ROWSTREAM_INBOUND_PREFIX,
        }
      : null,
  plans: s3PlanStore(aws.s3),
  crash: () => {
    logger.warn('crash hook: SIGKILL after commit');
    process.kill(process.pid, 'SIGKILL');
  },
};

// ECS scale-in protection while jobs are held (a no-op outside ECS): autoscaling stops only idle tasks.
const protection = scaleInProtection(protectionFromEnv(process.env), {
  log: { info: (m, a) => logger.info(m, a ?? {}), warn: (m, a) => logger.warn(m, a ?? {}) },
});

async function stop(signal: string) {
  if (shutdown.signal.aborted) return;
  logger.info('shutting down', {
    signal,
    graceMs: env.ROWSTREAM_PRODUCER_GRACE_MS,
  });
  shutdown.abort();
  const grace = setTimeout(() => {
    // Past the grace period: leave; Kafka fencing and the lease make whatever is open safe to resume.
    logger.warn('grace period over; exiting with work in flight');
    process.exit(0);
  }, env.ROWSTREAM_PRODUCER_GRACE_MS);
  grace.unref();
}

process.on('SIGTERM', () => void stop('SIGTERM'));
process.on('SIGINT', () => void stop('SIGINT'));

logger.info('producer started', {
  fastEncoder: kafkaSettings.fastEncoder,
  maxInflight: kafkaSettings.fastEncoder ? kafkaSettings.maxInflight : 1,
  recordHeaders: kafkaSettings.recordHeaders,
  autocreateTopics: kafkaSettings.autocreateTopics,
  kafka: connectionSummary(connection),
  concurrency: env.ROWSTREAM_PRODUCER_CONCURRENCY,
  leaseMs: settings.leaseMs,
  transactionRows: settings.transactionRows,
});
await serviceLoop(
  {
    receive: async (max, waitSeconds, signal) => {
      const got = await aws.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: env.ROWSTREAM_PRODUCER_QUEUE_URL,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: waitSeconds,
        }),
        { abortSignal: signal },
      );
      return (got.Messages ?? []).map((m) => ({
        id: m.MessageId ?? '?',
        body: m.Body ?? '',
        ack: () =>
          aws.sqs
            .send(
              new DeleteMessageCommand({
                QueueUrl: env.ROWSTREAM_PRODUCER_QUEUE_URL,
                ReceiptHandle: m.ReceiptHandle,
              }),
            )
            .then(
              () => {},
              (e: unknown) => logger.warn('delete message failed', { error: (e as Error).message }),
            ),
      }));
    },
    expiredLeases: (limit) => jobs.expiredLeases(limit),
    unannouncedPlanned: (limit) => jobs.unannouncedPlanned(limit, env.ROWSTREAM_PRODUCER_PLANNED_GRACE_MS),
    runJob: async (job, onDecided) => {
      protection.jobStarted(job.jobId);
      try {
        return await runJob(job, deps, settings, onDecided);
      } finally {
        protection.jobEnded(job.jobId);
      }
    },
    log: logger,
    metrics,
    now: Date.now,
    shutdown: shutdown.signal,
  },
  {
    concurrency: env.ROWSTREAM_PRODUCER_CONCURRENCY,
    sweepMs: env.ROWSTREAM_PRODUCER_SWEEP_MS,
    waitSeconds: env.ROWSTREAM_PRODUCER_WAIT_SECONDS,
    exitWhenIdleMs: env.ROWSTREAM_PRODUCER_EXIT_WHEN_IDLE_MS,
  },
);
await protection.close();
await runtime.close();
await kafka.close();
logger.info('producer stopped');
process.exit(0);
