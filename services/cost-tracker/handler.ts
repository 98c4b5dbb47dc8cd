import type { ScheduledEvent } from 'aws-lambda';
import { eventBridgeBus } from '../../events/eventbridge.ts';
import { type ServiceRuntime, serviceRuntime } from '../shared/runtime.ts';
import { awsCostExplorer } from './adapters/cost-explorer-aws.ts';
import { dynamoCostJobs } from './adapters/cost-jobs-dynamo.ts';
import { dynamoCostState } from './adapters/cost-state-dynamo.ts';
import { type CostTrackerDeps, type RunSummary, runOnce } from './core.ts';
import { type CostTrackerConfig, costTrackerSettings, loadCostTrackerConfig } from './settings.ts';

export interface CostTracker {
  runOnce(now: Date): Promise<RunSummary>;
  readonly deps: CostTrackerDeps;
}

/** Builds the tracker from loaded settings (tests and the local runner pass their own runtime parts). */
export function createCostTracker(
  config: CostTrackerConfig,
  runtime: ServiceRuntime = serviceRuntime('cost-tracker', config),
): CostTracker {
  const { clients, log, metrics } = runtime;
  const deps: CostTrackerDeps = {
    jobs: dynamoCostJobs(clients.doc, config.ROWSTREAM_JOBS_TABLE, log),
    costExplorer: awsCostExplorer(clients.costExplorer),
    state: dynamoCostState(clients.doc, config.ROWSTREAM_STATE_TABLE),
    bus: eventBridgeBus(clients.events, config.ROWSTREAM_BUS_NAME),
    metrics,
    log,
    settings: costTrackerSettings(config),
  };
  return { runOnce: (now) => runOnce(deps, now), deps };
}

/** Builds the tracker from an environment (fails fast naming a missing setting). */
export function costTrackerFromEnv(env: NodeJS.ProcessEnv): CostTracker {
  return createCostTracker(loadCostTrackerConfig(env));
}

/**
 * The scheduled entry over an explicit environment (the local runner passes its own, e.g. its metrics
 * file): built on first use; the firing time is the run's clock.
 */
export function handlerFor(
  env: NodeJS.ProcessEnv,
): (event?: Partial<Pick<ScheduledEvent, 'time'>>) => Promise<RunSummary> {
  let tracker: CostTracker | null = null;
  return async (event = {}) => {
    tracker ??= costTrackerFromEnv(env);
    const at = event.time ? new Date(event.time) : new Date();
    return tracker.runOnce(Number.isNaN(at.getTime()) ? new Date() : at);
  };
}

/** Lambda entry (rate(5 minutes)). */
export const handler = handlerFor(process.env);
