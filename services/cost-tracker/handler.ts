import { z } from 'zod';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { APP } from '../../topology/topology.ts';
import { type AwsClients, awsClients, awsSettingsFromEnv } from '../shared/aws.ts';
import { CommonEnv, intFromEnv, loadConfig } from '../shared/config.ts';
import { emfSink } from '../shared/emf.ts';
import { createLogger, type Logger } from '../shared/logger.ts';
import { BufferedMetrics, type MetricsPort } from '../shared/metrics.ts';
import { costExplorer } from './adapters/cost-explorer.ts';
import { dynamoJobs } from './adapters/jobs.ts';
import { dynamoCostState } from './adapters/state.ts';
import { type CostTrackerDeps, type LogPort, type RunSummary, runOnce } from './core.ts';
import { priceTable } from './prices.ts';

export const CostTrackerEnv = CommonEnv.extend({
  ROWSTREAM_JOBS_TABLE: z.string().min(1),
  ROWSTREAM_STATE_TABLE: z.string().min(1),
  ROWSTREAM_BUS_NAME: z.string().min(1),
  /** Monthly budget in USD; unset = no utilization metric and no threshold events. */
  ROWSTREAM_MONTHLY_BUDGET_USD: z.coerce.number().positive().optional(),
  ROWSTREAM_BUDGET_THRESHOLDS: z
    .string()
    .default('50,80,100')
    .transform((s) => s.split(',').map((x) => Number(x.trim())))
    .pipe(z.array(z.number().int().positive()).min(1)),
  /** JSON overrides of the price table (prices.ts). */
  ROWSTREAM_COST_PRICES: z.string().optional(),
  /** JSON object of cost allocation tags; default {"app":"rowstream","stage":<stage>}. */
  ROWSTREAM_COST_TAGS: z.string().optional(),
  ROWSTREAM_STALL_MINUTES: intFromEnv(15),
  /** The stall window in seconds; overrides ROWSTREAM_STALL_MINUTES (short windows: tests, demos). */
  ROWSTREAM_STALL_SECONDS: z.coerce.number().int().positive().optional(),
  ROWSTREAM_MTD_MAX_AGE_HOURS: intFromEnv(24),
  ROWSTREAM_MTD_RETRY_MINUTES: intFromEnv(60),
});
export type CostTrackerConfig = z.infer<typeof CostTrackerEnv>;

const Tags = z.record(z.string().min(1), z.string().min(1));

export interface CostTrackerWiring {
  readonly config: CostTrackerConfig;
  readonly clients: AwsClients;
  readonly logger?: Logger;
  readonly metrics?: MetricsPort;
}

export interface CostTracker {
  runOnce(now: Date): Promise<RunSummary>;
  readonly deps: CostTrackerDeps;
}

/** Builds the tracker from explicit settings (tests, local runner); reads no process.env. */
export function createCostTracker(w: CostTrackerWiring): CostTracker {
  const { config, clients } = w;
  const logger =
    w.logger ?? createLogger('cost-tracker', { stage: config.ROWSTREAM_STAGE, level: config.LOG_LEVEL });
  const log: LogPort = { info: (m, a) => logger.info(m, a ?? {}), warn: (m, a) => logger.warn(m, a ?? {}) };
  const metrics =
    w.metrics ??
    new BufferedMetrics({
      sink: emfSink(config.ROWSTREAM_METRICS_SINK),
      defaultDimensions: { Service: 'cost-tracker', Stage: config.ROWSTREAM_STAGE },
      onSinkError: (e) => logger.warn('metrics sink failed', { error: e as Error }),
    });
  const tags = config.ROWSTREAM_COST_TAGS
    ? Tags.parse(JSON.parse(config.ROWSTREAM_COST_TAGS))
    : { app: APP, stage: config.ROWSTREAM_STAGE };
  const deps: CostTrackerDeps = {
    jobs: dynamoJobs(clients.doc, config.ROWSTREAM_JOBS_TABLE, log),
    costExplorer: costExplorer(clients.costExplorer),
    state: dynamoCostState(clients.doc, config.ROWSTREAM_STATE_TABLE),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    metrics,
    log,
    settings: {
      stage: config.ROWSTREAM_STAGE,
      prices: priceTable(config.ROWSTREAM_COST_PRICES),
      monthlyBudgetUsd: config.ROWSTREAM_MONTHLY_BUDGET_USD ?? null,
      thresholdsPercent: config.ROWSTREAM_BUDGET_THRESHOLDS,
      costTags: tags,
      mtdMaxAgeSeconds: config.ROWSTREAM_MTD_MAX_AGE_HOURS * 3600,
      mtdRetrySeconds: config.ROWSTREAM_MTD_RETRY_MINUTES * 60,
      stallSeconds: config.ROWSTREAM_STALL_SECONDS ?? config.ROWSTREAM_STALL_MINUTES * 60,
      finalLookbackSeconds: 24 * 3600,
    },
  };
  return { runOnce: (now) => runOnce(deps, now), deps };
}

/** Builds the tracker from process.env (fails fast naming a missing setting). */
export function costTrackerFromEnv(env: NodeJS.ProcessEnv = process.env): CostTracker {
  const config = loadConfig(CostTrackerEnv, env);
  return createCostTracker({
    config,
    clients: awsClients({ ...awsSettingsFromEnv(env), region: config.AWS_REGION }),
  });
}

/** The part of an EventBridge scheduled event the handler reads. */
export interface ScheduledEventLike {
  readonly time?: string;
}

// The environment as it was when the module loaded: the local scheduler sets this service's metrics
// sink (ROWSTREAM_METRICS_SINK) right before importing it and changes it for the next service.
const ENV_AT_LOAD: NodeJS.ProcessEnv = { ...process.env };
let tracker: CostTracker | null = null;

/** Scheduled entry (rate(5 minutes)): the firing time is the run's clock. */
export const handler = async (event: ScheduledEventLike = {}): Promise<RunSummary> => {
  tracker ??= costTrackerFromEnv(ENV_AT_LOAD);
  const at = event.time ? new Date(event.time) : new Date();
  return tracker.runOnce(Number.isNaN(at.getTime()) ? new Date() : at);
};
