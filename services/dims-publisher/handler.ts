import type { ScheduledEvent } from 'aws-lambda';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { type ServiceRuntime, serviceRuntime } from '../shared/runtime.ts';
import { dynamoInventoryJobs } from './adapters/inventory-jobs-dynamo.ts';
import { s3Objects } from './adapters/objects-s3.ts';
import { dynamoSnapshots } from './adapters/snapshots-dynamo.ts';
import { type DimsDeps, type DimsSummary, runOnce } from './core.ts';
import type { InventoryDefinition } from './definition.ts';
import { type DimsConfig, loadDefinition, loadDimsConfig } from './settings.ts';

export interface DimsPublisher {
  runOnce(now: Date): Promise<DimsSummary>;
  readonly deps: DimsDeps;
}

/** Builds the publisher from loaded settings (tests and the local runner pass their own runtime parts). */
export function createDimsPublisher(
  config: DimsConfig,
  runtime: ServiceRuntime = serviceRuntime('dims-publisher', config),
  definition: InventoryDefinition = loadDefinition(config.ROWSTREAM_INVENTORY_FILE),
): DimsPublisher {
  const { clients, log, metrics } = runtime;
  const deps: DimsDeps = {
    bucket: config.ROWSTREAM_BUCKET,
    stage: config.ROWSTREAM_STAGE,
    definition,
    objects: s3Objects(clients.s3, config.ROWSTREAM_BUCKET),
    jobs: dynamoInventoryJobs(clients.doc, config.ROWSTREAM_JOBS_TABLE),
    snapshots: dynamoSnapshots(clients.doc, config.ROWSTREAM_STATE_TABLE),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    metrics,
    log,
  };
  return { runOnce: (now) => runOnce(deps, now), deps };
}

/** Builds the publisher from an environment (fails fast naming a missing setting or a bad definition). */
export function dimsPublisherFromEnv(env: NodeJS.ProcessEnv): DimsPublisher {
  return createDimsPublisher(loadDimsConfig(env));
}

/**
 * The scheduled entry over an explicit environment (the local runner passes its own, e.g. its metrics
 * file): built on first use; the firing time is the run's clock.
 */
export function handlerFor(
  env: NodeJS.ProcessEnv,
): (event?: Partial<Pick<ScheduledEvent, 'time'>>) => Promise<DimsSummary> {
  let publisher: DimsPublisher | null = null;
  return async (event = {}) => {
    publisher ??= dimsPublisherFromEnv(env);
    const at = event.time ? new Date(event.time) : new Date();
    return publisher.runOnce(Number.isNaN(at.getTime()) ? new Date() : at);
  };
}

/** Lambda entry (rate(6 hours)). */
export const handler = handlerFor(process.env);
