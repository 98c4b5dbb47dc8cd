import { z } from 'zod';
import { APP } from '../../topology/topology.ts';
import { CommonEnv, intFromEnv, loadConfig } from '../shared/config.ts';
import type { CostTrackerSettings } from './core.ts';
import { priceTable } from './prices.ts';

/** Every cost-tracker setting (documented in docs/operations.md). */
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

/** Parses the tracker's settings (fails fast naming a missing or wrong one). */
export function loadCostTrackerConfig(env: NodeJS.ProcessEnv): CostTrackerConfig {
  return loadConfig(CostTrackerEnv, env);
}

/** What the core reads of the settings. */
export function costTrackerSettings(config: CostTrackerConfig): CostTrackerSettings {
  return {
    stage: config.ROWSTREAM_STAGE,
    prices: priceTable(config.ROWSTREAM_COST_PRICES),
    monthlyBudgetUsd: config.ROWSTREAM_MONTHLY_BUDGET_USD ?? null,
    thresholdsPercent: config.ROWSTREAM_BUDGET_THRESHOLDS,
    costTags: config.ROWSTREAM_COST_TAGS
      ? Tags.parse(JSON.parse(config.ROWSTREAM_COST_TAGS))
      : { app: APP, stage: config.ROWSTREAM_STAGE },
    mtdMaxAgeSeconds: config.ROWSTREAM_MTD_MAX_AGE_HOURS * 3600,
    mtdRetrySeconds: config.ROWSTREAM_MTD_RETRY_MINUTES * 60,
    stallSeconds: config.ROWSTREAM_STALL_SECONDS ?? config.ROWSTREAM_STALL_MINUTES * 60,
    finalLookbackSeconds: 24 * 3600,
  };
}
