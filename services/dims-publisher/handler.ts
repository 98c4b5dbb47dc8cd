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

export interface ScheduledEventLike {
  readonly time?: string;
}

// The environment as it was when the module loaded: the local scheduler sets this service's metrics
// sink right before importing it and changes it for the next service.
const ENV_AT_LOAD: NodeJS.ProcessEnv = { ...process.env };
let publisher: DimsPublisher | null = null;

/** Scheduled entry (rate(6 hours)) and on-demand invocation: the firing time is the snapshot's id. */
export const handler = async (event: ScheduledEventLike = {}): Promise<DimsSummary> => {
  publisher ??= dimsPublisherFromEnv(ENV_AT_LOAD);
  const at = event.time ? new Date(event.time) : new Date();
  return publisher.runOnce(Number.isNaN(at.getTime()) ? new Date() : at);
};
