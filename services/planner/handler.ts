import { z } from 'zod';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { PREFIXES } from '../../topology/topology.ts';
import { type AwsClients, awsClients, awsSettingsFromEnv } from '../shared/aws.ts';
import { boolFromEnv, CommonEnv, intFromEnv, loadConfig } from '../shared/config.ts';
import { emfSink } from '../shared/emf.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { BufferedMetrics, type MetricsPort } from '../shared/metrics.ts';
import {
  type BatchResponse,
  type SqsEventLike,
  type SqsRecordLike,
  sqsBatchHandler,
} from '../shared/sqs-batch.ts';
import { dynamoCountCache, dynamoJobStore } from './adapters/dynamo.ts';
import { s3ObjectStore } from './adapters/s3.ts';
import { type LogPort, type PlannerDeps, type PlanOutcome, planObject } from './core.ts';
import { parseNotification } from './notification.ts';

export const PlannerEnv = CommonEnv.extend({
  ROWSTREAM_BUS_NAME: z.string().min(1),
  ROWSTREAM_JOBS_TABLE: z.string().min(1),
  ROWSTREAM_COUNTS_TABLE: z.string().min(1),
  ROWSTREAM_INBOUND_PREFIX: z.string().min(1).default(PREFIXES.inbound),
  ROWSTREAM_DEFAULT_TOPIC: z.string().min(1).default('rowstream.rows'),
  ROWSTREAM_DEFAULT_FORMAT: z.enum(['json', 'csv']).default('json'),
  ROWSTREAM_DEFAULT_KEY_COLUMN: z.string().optional(),
  ROWSTREAM_DEFAULT_FAIL_ON_BAD_ROW: boolFromEnv(false),
  ROWSTREAM_DEFAULT_DELIMITER: z.string().length(1).default(','),
  /** Range size for counting; objects up to this size are read in one stream. */
  ROWSTREAM_PLANNER_PART_MB: intFromEnv(64),
  ROWSTREAM_PLANNER_CONCURRENCY: intFromEnv(4),
  ROWSTREAM_PLANNER_READ_TAGS: boolFromEnv(true),
});
export type PlannerConfig = z.infer<typeof PlannerEnv>;

export interface Planner {
  /** Lambda-style entry: partial batch failures for the records that threw. */
  handler(event: SqsEventLike, context?: unknown): Promise<BatchResponse>;
  /** One SQS record; throws when the message must go back to the queue. */
  processRecord(record: SqsRecordLike): Promise<PlanOutcome[]>;
  readonly deps: PlannerDeps;
}

export interface PlannerWiring {
  readonly config: PlannerConfig;
  readonly clients: AwsClients;
  readonly logger?: Logger;
  readonly metrics?: MetricsPort & { flush(): Promise<void> };
}

/** Builds a planner from explicit settings (tests and the local runner), no process.env. */
export function createPlanner(w: PlannerWiring): Planner {
  const { config, clients } = w;
  const logger =
    w.logger ?? createLogger('planner', { stage: config.ROWSTREAM_STAGE, level: config.LOG_LEVEL });
  const metrics =
    w.metrics ??
    new BufferedMetrics({
      sink: emfSink(config.ROWSTREAM_METRICS_SINK),
      defaultDimensions: { Service: 'planner', Stage: config.ROWSTREAM_STAGE },
      onSinkError: (e) => logger.warn('metrics sink failed', { error: e as Error }),
    });
  const log: LogPort = {
    debug: (m, a) => logger.debug(m, a ?? {}),
    info: (m, a) => logger.info(m, a ?? {}),
    warn: (m, a) => logger.warn(m, a ?? {}),
    error: (m, a) => logger.error(m, a ?? {}),
  };
  const deps: PlannerDeps = {
    store: s3ObjectStore(clients.s3, { readTags: config.ROWSTREAM_PLANNER_READ_TAGS }),
    cache: dynamoCountCache(clients.doc, config.ROWSTREAM_COUNTS_TABLE),
    jobs: dynamoJobStore(clients.doc, config.ROWSTREAM_JOBS_TABLE),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    metrics,
    log,
    settings: {
      inboundPrefix: config.ROWSTREAM_INBOUND_PREFIX,
      partSize: config.ROWSTREAM_PLANNER_PART_MB * 1024 * 1024,
      concurrency: config.ROWSTREAM_PLANNER_CONCURRENCY,
      defaults: {
        topic: config.ROWSTREAM_DEFAULT_TOPIC,
        format: config.ROWSTREAM_DEFAULT_FORMAT,
        keyColumn: config.ROWSTREAM_DEFAULT_KEY_COLUMN || null,
        failOnBadRow: config.ROWSTREAM_DEFAULT_FAIL_ON_BAD_ROW,
        delimiter: config.ROWSTREAM_DEFAULT_DELIMITER,
      },
    },
  };
  return plannerFromDeps(deps);
}

/** The SQS layer over a core: used by {@link createPlanner} and by unit tests with fakes. */
export function plannerFromDeps(deps: PlannerDeps): Planner {
  const processRecord = async (record: SqsRecordLike): Promise<PlanOutcome[]> => {
    const n = parseNotification(record.body);
    if (n.kind === 'test') {
      deps.log.info('ignored: s3:TestEvent', { messageId: record.messageId });
      return [];
    }
    const outcomes: PlanOutcome[] = [];
    // One message rarely holds more than one object; in order, so a failure leaves a clear trail.
    for (const r of n.records) outcomes.push(await planObject(deps, r));
    return outcomes;
  };
  const handler = sqsBatchHandler(processRecord, {
    metrics: deps.metrics,
    onRecordError: (record, e) => {
      deps.metrics.record('PlannerErrors', 1, 'Count', { properties: { messageId: record.messageId } });
      deps.log.error('message failed; it goes back to the queue', {
        messageId: record.messageId,
        error: e as Error,
      });
    },
  });
  return { handler, processRecord, deps };
}

// Lambda entry: config and clients at module scope, built on first use so importing stays cheap.
let planner: Planner | null = null;

/** Builds the planner from process.env (fails fast naming a missing setting). */
export function plannerFromEnv(env: NodeJS.ProcessEnv = process.env): Planner {
  const config = loadConfig(PlannerEnv, env);
  return createPlanner({
    config,
    clients: awsClients({ ...awsSettingsFromEnv(env), region: config.AWS_REGION }),
  });
}

export const handler = async (event: SqsEventLike, context?: unknown): Promise<BatchResponse> => {
  planner ??= plannerFromEnv();
  return planner.handler(event, context);
};
