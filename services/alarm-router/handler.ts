import { z } from 'zod';
import { parse } from '../../events/bus.ts';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { type AwsClients, awsClients, awsSettingsFromEnv } from '../shared/aws.ts';
import { CommonEnv, loadConfig } from '../shared/config.ts';
import { emfSink } from '../shared/emf.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { BufferedMetrics, type MetricsPort } from '../shared/metrics.ts';
import {
  type BatchResponse,
  type SqsEventLike,
  type SqsRecordLike,
  sqsBatchHandler,
} from '../shared/sqs-batch.ts';
import { sqsRechecks } from './adapters/rechecks.ts';
import { snsNotifier } from './adapters/sns.ts';
import { dynamoAlarmState, dynamoIdempotency } from './adapters/state.ts';
import { AlarmRecheck, type AlarmRouterDeps, createAlarmRouter, type RouteOutcome } from './core.ts';
import { routingConfig } from './routing.ts';

export const AlarmRouterEnv = CommonEnv.extend({
  ROWSTREAM_STATE_TABLE: z.string().min(1),
  ROWSTREAM_BUS_NAME: z.string().min(1),
  ROWSTREAM_TOPIC_CRITICAL_ARN: z.string().min(1),
  ROWSTREAM_TOPIC_WARNING_ARN: z.string().min(1),
  ROWSTREAM_TOPIC_INFO_ARN: z.string().min(1),
  /** The stage's bucket: runbook links point to the copy shipped there unless ROWSTREAM_RUNBOOK_URL is set. */
  ROWSTREAM_BUCKET: z.string().min(1),
  /** The router's own queue: a flapping ALARM's recheck is a delayed message to it. */
  ROWSTREAM_ALARM_ROUTER_QUEUE_URL: z.string().min(1),
  /** The runbooks page (a wiki, the repository's docs/runbooks.md at the deployed tag); links are `<url>#<anchor>`. */
  ROWSTREAM_RUNBOOK_URL: z.url().optional(),
  /** JSON overrides of the routing configuration (routing.ts). */
  ROWSTREAM_ALERT_ROUTING: z.string().optional(),
});
export type AlarmRouterConfig = z.infer<typeof AlarmRouterEnv>;

export interface AlarmRouterService {
  handler(event: SqsEventLike, context?: unknown): Promise<BatchResponse>;
  /** One SQS record: parse, route. Throws when the message must come back. */
  processRecord(record: SqsRecordLike): Promise<RouteOutcome>;
  readonly deps: AlarmRouterDeps;
}

export interface AlarmRouterWiring {
  readonly config: AlarmRouterConfig;
  readonly clients: AwsClients;
  readonly logger?: Logger;
  readonly metrics?: MetricsPort;
  readonly now?: () => Date;
}

/** Builds the router from explicit settings (tests, local runner); reads no process.env. */
export function createAlarmRouterService(w: AlarmRouterWiring): AlarmRouterService {
  const { config, clients } = w;
  const logger =
    w.logger ?? createLogger('alarm-router', { stage: config.ROWSTREAM_STAGE, level: config.LOG_LEVEL });
  const routing = routingConfig({
    stage: config.ROWSTREAM_STAGE,
    region: config.AWS_REGION,
    topics: {
      critical: config.ROWSTREAM_TOPIC_CRITICAL_ARN,
      warning: config.ROWSTREAM_TOPIC_WARNING_ARN,
      info: config.ROWSTREAM_TOPIC_INFO_ARN,
    },
    bucket: config.ROWSTREAM_BUCKET,
    endpoint: config.AWS_ENDPOINT_URL ?? null,
    ...(config.ROWSTREAM_RUNBOOK_URL ? { runbookUrl: config.ROWSTREAM_RUNBOOK_URL } : {}),
    overrides: config.ROWSTREAM_ALERT_ROUTING,
  });
  const metrics =
    w.metrics ??
    new BufferedMetrics({
      sink: emfSink(config.ROWSTREAM_METRICS_SINK),
      defaultDimensions: { Service: 'alarm-router', Stage: config.ROWSTREAM_STAGE },
      onSinkError: (e) => logger.warn('metrics sink failed', { error: e as Error }),
    });
  const deps: AlarmRouterDeps = {
    config: routing,
    idempotency: dynamoIdempotency(clients.doc, config.ROWSTREAM_STATE_TABLE),
    rechecks: sqsRechecks(clients.sqs, config.ROWSTREAM_ALARM_ROUTER_QUEUE_URL),
    alarmState: dynamoAlarmState(clients.doc, config.ROWSTREAM_STATE_TABLE, routing.idempotencyTtlSeconds),
    notifier: snsNotifier(clients.sns),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    metrics,
    log: { info: (m, a) => logger.info(m, a ?? {}), warn: (m, a) => logger.warn(m, a ?? {}) },
    now: w.now ?? (() => new Date()),
  };
  return alarmRouterFromDeps(deps, logger);
}

/** The SQS layer over the core (partial batch failures); unit tests use it with fakes. */
export function alarmRouterFromDeps(deps: AlarmRouterDeps, logger?: Logger): AlarmRouterService {
  const router = createAlarmRouter(deps);
  // The queue carries bus events and the router's own delayed rechecks (core.ts AlarmRecheck).
  const processRecord = async (record: SqsRecordLike) => {
    const recheck = recheckOf(record.body);
    return recheck ? router.recheck(recheck) : router.route(parse(record.body));
  };
  const handler = sqsBatchHandler(processRecord, {
    metrics: deps.metrics,
    // Parse errors and in-progress claims alike go back to the queue; poison messages end in the DLQ,
    // whose alarm notifies the critical topic directly.
    onRecordError: (record, e) =>
      logger?.warn('message failed; it goes back to the queue', {
        messageId: record.messageId,
        error: e as Error,
      }),
  });
  return { handler, processRecord, deps };
}

function recheckOf(body: string): AlarmRecheck | null {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return null;
  }
  if ((raw as { rowstream?: unknown } | null)?.rowstream !== 'alarm-recheck.v1') return null;
  return AlarmRecheck.parse(raw);
}

/** Builds the router from process.env (fails fast naming a missing setting). */
export function alarmRouterFromEnv(env: NodeJS.ProcessEnv = process.env): AlarmRouterService {
  const config = loadConfig(AlarmRouterEnv, env);
  return createAlarmRouterService({
    config,
    clients: awsClients({ ...awsSettingsFromEnv(env), region: config.AWS_REGION }),
  });
}

// Lambda entry: built once, on first use, so importing the module stays cheap.
let service: AlarmRouterService | null = null;

export const handler = async (event: SqsEventLike, context?: unknown): Promise<BatchResponse> => {
  service ??= alarmRouterFromEnv();
  return service.handler(event, context);
};
