import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { type AwsClients, awsClients, awsSettingsFromEnv } from '../shared/aws.ts';
import { CommonEnv, loadConfig } from '../shared/config.ts';
import { emfSink } from '../shared/emf.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { BufferedMetrics, type MetricsPort } from '../shared/metrics.ts';
import { dynamoInventoryJobs } from './adapters/jobs.ts';
import { s3Objects } from './adapters/s3.ts';
import { dynamoSnapshots } from './adapters/snapshots.ts';
import { type DimsDeps, type DimsSummary, type LogPort, runOnce } from './core.ts';
import { type InventoryDefinition, parseDefinition } from './definition.ts';
import { InventoryDefinitionError } from './errors.ts';

/** The definition shipped with the code (inventory/metrics.yaml at the repository root). */
export const DEFAULT_DEFINITION_PATH = fileURLToPath(
  new URL('../../inventory/metrics.yaml', import.meta.url),
);

export const DimsEnv = CommonEnv.extend({
  ROWSTREAM_BUCKET: z.string().min(1),
  ROWSTREAM_JOBS_TABLE: z.string().min(1),
  ROWSTREAM_STATE_TABLE: z.string().min(1),
  ROWSTREAM_BUS_NAME: z.string().min(1),
  ROWSTREAM_INVENTORY_FILE: z.string().min(1).optional(),
});
export type DimsConfig = z.infer<typeof DimsEnv>;

export function loadDefinition(path: string = DEFAULT_DEFINITION_PATH): InventoryDefinition {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new InventoryDefinitionError(path, `cannot read: ${(e as Error).message}`);
  }
  return parseDefinition(text, path);
}

export interface DimsWiring {
  readonly config: DimsConfig;
  readonly clients: AwsClients;
  readonly definition?: InventoryDefinition;
  readonly logger?: Logger;
  readonly metrics?: MetricsPort;
}

export interface DimsPublisher {
  runOnce(now: Date): Promise<DimsSummary>;
  readonly deps: DimsDeps;
}

/** Builds the publisher from explicit settings (tests, local runner, main.ts); reads no process.env. */
export function createDimsPublisher(w: DimsWiring): DimsPublisher {
  const { config, clients } = w;
  const logger =
    w.logger ?? createLogger('dims-publisher', { stage: config.ROWSTREAM_STAGE, level: config.LOG_LEVEL });
  const log: LogPort = { info: (m, a) => logger.info(m, a ?? {}), warn: (m, a) => logger.warn(m, a ?? {}) };
  const metrics =
    w.metrics ??
    new BufferedMetrics({
      sink: emfSink(config.ROWSTREAM_METRICS_SINK),
      defaultDimensions: { Service: 'dims-publisher', Stage: config.ROWSTREAM_STAGE },
      onSinkError: (e) => logger.warn('metrics sink failed', { error: e as Error }),
    });
  const deps: DimsDeps = {
    bucket: config.ROWSTREAM_BUCKET,
    stage: config.ROWSTREAM_STAGE,
    definition: w.definition ?? loadDefinition(config.ROWSTREAM_INVENTORY_FILE),
    objects: s3Objects(clients.s3, config.ROWSTREAM_BUCKET),
    jobs: dynamoInventoryJobs(clients.doc, config.ROWSTREAM_JOBS_TABLE),
    snapshots: dynamoSnapshots(clients.doc, config.ROWSTREAM_STATE_TABLE),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    metrics,
    log,
  };
  return { runOnce: (now) => runOnce(deps, now), deps };
}

/** Builds the publisher from process.env (fails fast naming a missing setting or a bad definition). */
export function dimsPublisherFromEnv(env: NodeJS.ProcessEnv = process.env): DimsPublisher {
  const config = loadConfig(DimsEnv, env);
  return createDimsPublisher({
    config,
    clients: awsClients({ ...awsSettingsFromEnv(env), region: config.AWS_REGION }),
  });
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
