import type { Context, SQSEvent } from 'aws-lambda';
import { parse } from '../../events/bus.ts';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { type ServiceRuntime, serviceRuntime } from '../shared/runtime.ts';
import {
  type SQSBatchResponse,
  type SqsMessage,
  type SqsMessages,
  sqsBatchHandler,
} from '../shared/sqs-batch.ts';
import { dynamoAlarmState } from './adapters/alarm-state-dynamo.ts';
import { dynamoIdempotency } from './adapters/idempotency-dynamo.ts';
import { snsNotifier } from './adapters/notifier-sns.ts';
import { sqsRechecks } from './adapters/recheck-sqs.ts';
import { type AlarmRouterDeps, createAlarmRouter, type RouteOutcome } from './core.ts';
import { AlarmRecheck } from './ports.ts';
import { type AlarmRouterConfig, alarmRouterSettings, loadAlarmRouterConfig } from './settings.ts';

export interface AlarmRouterService {
  handler(event: SqsMessages, context?: unknown): Promise<SQSBatchResponse>;
  /** One SQS record: parse, route. Throws when the message must come back. */
  processRecord(record: SqsMessage): Promise<RouteOutcome>;
  readonly deps: AlarmRouterDeps;
}

/** Builds the router from loaded settings (tests and the local runner pass their own runtime parts). */
export function createAlarmRouterService(
  config: AlarmRouterConfig,
  runtime: ServiceRuntime = serviceRuntime('alarm-router', config),
): AlarmRouterService {
  const { clients, log, metrics } = runtime;
  const routing = alarmRouterSettings(config);
  return alarmRouterFromDeps({
    config: routing,
    idempotency: dynamoIdempotency(clients.doc, config.ROWSTREAM_STATE_TABLE),
    rechecks: sqsRechecks(clients.sqs, config.ROWSTREAM_ALARM_ROUTER_QUEUE_URL),
    alarmState: dynamoAlarmState(clients.doc, config.ROWSTREAM_STATE_TABLE, routing.idempotencyTtlSeconds),
    notifier: snsNotifier(clients.sns),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    metrics,
    log,
    now: () => new Date(),
  });
}

/** The SQS layer over the core (partial batch failures); unit tests use it with fakes. */
export function alarmRouterFromDeps(deps: AlarmRouterDeps): AlarmRouterService {
  const router = createAlarmRouter(deps);
  // The queue carries bus events and the router's own delayed rechecks (ports.ts AlarmRecheck).
  const processRecord = async (record: SqsMessage) => {
    const recheck = recheckOf(record.body);
    return recheck ? router.recheck(recheck) : router.route(parse(record.body));
  };
  const handler = sqsBatchHandler(processRecord, {
    metrics: deps.metrics,
    // Parse errors and in-progress claims alike go back to the queue; poison messages end in the DLQ,
    // whose alarm notifies the critical topic directly.
    onRecordError: (record, e) =>
      deps.log.warn('message failed; it goes back to the queue', {
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

/** Builds the router from an environment (fails fast naming a missing setting). */
export function alarmRouterFromEnv(env: NodeJS.ProcessEnv): AlarmRouterService {
  return createAlarmRouterService(loadAlarmRouterConfig(env));
}

// Lambda entry: built once, on first use, so importing the module stays cheap.
let service: AlarmRouterService | null = null;

export const handler = async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
  service ??= alarmRouterFromEnv(process.env);
  return service.handler(event, context);
};
