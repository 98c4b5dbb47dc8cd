import type { Context, SQSEvent } from 'aws-lambda';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { dynamoMoveRecord } from '../shared/adapters/move-record-dynamo.ts';
import { s3ObjectMove } from '../shared/adapters/object-move-s3.ts';
import { s3ObjectTags } from '../shared/adapters/object-tags-s3.ts';
import { s3PlanStore } from '../shared/adapters/plan-store-s3.ts';
import { type ServiceRuntime, serviceRuntime } from '../shared/runtime.ts';
import { glueRegistry } from '../shared/schema/registry-glue.ts';
import { registryNameFrom } from '../shared/schema/settings.ts';
import {
  type SQSBatchResponse,
  type SqsMessage,
  type SqsMessages,
  sqsBatchHandler,
} from '../shared/sqs-batch.ts';
import { dynamoCountCache } from './adapters/count-cache-dynamo.ts';
import { dynamoJobStore } from './adapters/job-store-dynamo.ts';
import { s3ObjectStore } from './adapters/object-store-s3.ts';
import { type PlannerDeps, type PlanOutcome, planObject } from './core.ts';
import { type ObjectCreated, parseNotification } from './notification.ts';
import { schemaResolver } from './schema.ts';
import { loadPlannerConfig, type PlannerConfig, plannerSettings } from './settings.ts';

export interface Planner {
  /** Lambda-style entry: partial batch failures for the records that threw. */
  handler(event: SqsMessages, context?: unknown): Promise<SQSBatchResponse>;
  /** One SQS record; throws when the message must go back to the queue. */
  processRecord(record: SqsMessage): Promise<PlanOutcome[]>;
  readonly deps: PlannerDeps;
}

/** Builds a planner from loaded settings (tests and the local runner pass their own runtime parts). */
export function createPlanner(
  config: PlannerConfig,
  runtime: ServiceRuntime = serviceRuntime('planner', config),
): Planner {
  const { clients, log, metrics } = runtime;
  const store = s3ObjectStore(clients.s3, { readTags: config.ROWSTREAM_PLANNER_READ_TAGS });
  const registryName = registryNameFrom(config);
  return plannerFromDeps({
    store,
    schemas: schemaResolver({
      store,
      registry: registryName ? glueRegistry(clients.glue, registryName) : null,
      settings: {
        defaultChoice: config.ROWSTREAM_DEFAULT_SCHEMA,
        compatibility: config.ROWSTREAM_SCHEMA_COMPATIBILITY,
        sampleBytes: config.ROWSTREAM_SCHEMA_SAMPLE_KB * 1024,
        sampleRows: config.ROWSTREAM_SCHEMA_SAMPLE_ROWS,
      },
    }),
    cache: dynamoCountCache(clients.doc, config.ROWSTREAM_COUNTS_TABLE),
    jobs: dynamoJobStore(clients.doc, config.ROWSTREAM_JOBS_TABLE),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    plans: s3PlanStore(clients.s3),
    metrics,
    log,
    sourceTags: s3ObjectTags(clients.s3),
    sourceMove:
      config.ROWSTREAM_SOURCE_FATE === 'move'
        ? {
            objects: s3ObjectMove(clients.s3),
            records: dynamoMoveRecord(clients.doc, config.ROWSTREAM_JOBS_TABLE),
            inboundPrefix: config.ROWSTREAM_INBOUND_PREFIX,
          }
        : null,
    settings: plannerSettings(config),
  });
}

/** The SQS layer over a core: used by {@link createPlanner} and by unit tests with fakes. */
export function plannerFromDeps(deps: PlannerDeps): Planner {
  /**
   * Plans in progress in this process, by object version. One upload can be notified twice at once:
   * moto sends ObjectCreated:Put and ObjectCreated:CompleteMultipartUpload for every multipart upload
   * (`rowstream drop` of a file over one part), and S3 itself delivers at least once. Both copies
   * usually come in one batch, processed concurrently, and each counted the whole object before one
   * lost the create race. A copy for a version already being planned here now waits for that plan
   * and answers with its outcome (its failure too: the message then comes back, like the first).
   */
  const planning = new Map<string, Promise<PlanOutcome>>();
  const planOnce = (r: ObjectCreated): Promise<PlanOutcome> => {
    if (r.etag === null) return planObject(deps, r);
    const version = `${r.bucket}\n${r.key}\n${r.versionId ?? ''}\n${r.etag}`;
    const running = planning.get(version);
    if (running) {
      deps.log.info('duplicate notification while the object is being planned: sharing that plan', {
        bucket: r.bucket,
        key: r.key,
        eventName: r.eventName,
      });
      deps.metrics.record('DuplicateNotifications', 1, 'Count');
      return running;
    }
    const plan = planObject(deps, r).finally(() => planning.delete(version));
    planning.set(version, plan);
    return plan;
  };
  const processRecord = async (record: SqsMessage): Promise<PlanOutcome[]> => {
    const n = parseNotification(record.body);
    if (n.kind === 'test') {
      deps.log.info('ignored: s3:TestEvent', { messageId: record.messageId });
      return [];
    }
    const outcomes: PlanOutcome[] = [];
    // One message rarely holds more than one object; in order, so a failure leaves a clear trail.
    for (const r of n.records) outcomes.push(await planOnce(r));
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

/** Builds the planner from an environment (fails fast naming a missing setting). */
export function plannerFromEnv(env: NodeJS.ProcessEnv): Planner {
  return createPlanner(loadPlannerConfig(env));
}

// Lambda entry: config and clients at module scope, built on first use so importing stays cheap.
let planner: Planner | null = null;

export const handler = async (event: SQSEvent, context?: Context): Promise<SQSBatchResponse> => {
  planner ??= plannerFromEnv(process.env);
  return planner.handler(event, context);
};
