import type { BusPort, OutgoingEvent } from '../../events/bus.ts';
import { event, publish } from '../../events/bus.ts';
import type { JobStatus } from '../../events/catalog.ts';
import { eventIdFor } from '../../events/ids.ts';
import { isTerminal, type JobRecord } from '../shared/jobs.ts';
import type { Log } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import type { CostExplorerPort, CostJobsPort, CostStatePort, MonthToDate } from './ports.ts';
import { type CostBreakdown, estimateCost, type PriceTable } from './prices.ts';

export interface CostTrackerSettings {
  readonly stage: string;
  readonly prices: PriceTable;
  /** null: no budget, so no utilization and no threshold events. */
  readonly monthlyBudgetUsd: number | null;
  readonly thresholdsPercent: readonly number[];
  /** Cost allocation tags the month-to-date cost is filtered by. */
  readonly costTags: Readonly<Record<string, string>>;
  /** Month-to-date is fetched when older than this (Cost Explorer updates about daily, each call costs). */
  readonly mtdMaxAgeSeconds: number;
  /** After a failed or empty answer, wait this long before asking again. */
  readonly mtdRetrySeconds: number;
  /** A RUNNING job whose checkpoint did not move for this long counts as stalled. */
  readonly stallSeconds: number;
  /** Finished jobs without a final cost are looked for this far back. */
  readonly finalLookbackSeconds: number;
}

export interface CostTrackerDeps {
  readonly jobs: CostJobsPort;
  readonly costExplorer: CostExplorerPort;
  readonly state: CostStatePort;
  readonly bus: BusPort;
  readonly metrics: MetricsPort;
  readonly log: Log;
  readonly settings: CostTrackerSettings;
}

// ---------------------------------------------------------------------------------------------------
// Pure parts

/** `YYYY-MM` of a date (UTC). */
export function monthOf(d: Date): string {
  return d.toISOString().slice(0, 7);
}

/** Cost Explorer's period for month-to-date: the 1st of the month to tomorrow (End is exclusive). */
export function monthToDatePeriod(now: Date): { start: string; end: string } {
  const start = `${monthOf(now)}-01`;
  const tomorrow = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  return { start, end: tomorrow.toISOString().slice(0, 10) };
}

/** Thresholds reached by a utilization, lowest first. */
export function thresholdsReached(utilizationPercent: number, thresholds: readonly number[]): number[] {
  return [...thresholds].sort((a, b) => a - b).filter((t) => utilizationPercent >= t);
}

/** When the checkpoint last moved: checkpoint time, else the start, else the record's update time. */
export function lastProgressAt(job: JobRecord): number {
  return Date.parse(job.checkpoint?.updatedAt ?? job.startedAt ?? job.updatedAt);
}

export function isStalled(job: JobRecord, now: Date, stallSeconds: number): boolean {
  const at = lastProgressAt(job);
  return Number.isFinite(at) && now.getTime() - at > stallSeconds * 1000;
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;

// ---------------------------------------------------------------------------------------------------
// The run

export interface JobEstimate {
  readonly jobId: string;
  readonly status: JobStatus;
  readonly final: boolean;
  readonly stalled: boolean;
  readonly cost: CostBreakdown;
}

export interface RunSummary {
  readonly at: string;
  readonly running: number;
  readonly stalled: number;
  readonly finalized: number;
  readonly estimates: readonly JobEstimate[];
  readonly monthToDate:
    | { readonly amountUsd: number; readonly utilizationPercent: number | null; readonly fetched: boolean }
    | { readonly unavailable: string };
  readonly thresholdsCrossed: readonly number[];
}

const FINISHED: readonly JobStatus[] = ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED'];

/**
 * One scheduled run: estimates every RUNNING job (and finalizes jobs that finished since), counts
 * stalled jobs, refreshes the month-to-date cost when it is a day old, and announces budget
 * thresholds once per month each. `now` is the schedule's firing time, so a re-delivered firing
 * produces the same event ids.
 */
export async function runOnce(deps: CostTrackerDeps, now: Date): Promise<RunSummary> {
  const { settings: s, metrics, log } = deps;
  const at = now.toISOString();
  const estimates: JobEstimate[] = [];
  const events: OutgoingEvent[] = [];

  const handle = async (job: JobRecord) => {
    const final = isTerminal(job.status);
    const cost = estimateCost(job, now, s.prices);
    const stalled = !final && isStalled(job, now, s.stallSeconds);
    const total = round6(cost.totalUsd);
    await deps.jobs.setCost(job.jobId, {
      estimatedCostUsd: total,
      ...(final ? { finalCostUsd: total } : {}),
      costUpdatedAt: at,
    });
    const dims = { dimensions: { JobId: job.jobId }, properties: { sourceUri: job.sourceUri, final } };
    metrics.record('EstimatedCostUsd', total, 'None', dims);
    if (cost.costPerMillionRows !== null)
      metrics.record('CostPerMillionRows', round6(cost.costPerMillionRows), 'None', dims);
    metrics.record('JobRowsDone', cost.rowsDone, 'Count', dims);
    if (job.totalRows !== undefined) metrics.record('JobRowsTotal', job.totalRows, 'Count', dims);
    events.push(
      event('CostEstimated.v1', {
        eventId: eventIdFor('CostEstimated', job.jobId, final ? 'final' : at),
        occurredAt: at,
        jobId: job.jobId,
        estimatedCostUsd: total,
        rowsDone: cost.rowsDone,
        costPerMillionRows: cost.costPerMillionRows === null ? null : round6(cost.costPerMillionRows),
        final,
      }),
    );
    estimates.push({ jobId: job.jobId, status: job.status, final, stalled, cost });
    if (stalled) {
      log.warn('job stalled: no checkpoint for the stall window', {
        jobId: job.jobId,
        lastProgressAt: new Date(lastProgressAt(job)).toISOString(),
        stallSeconds: s.stallSeconds,
      });
    }
  };

  for await (const job of deps.jobs.byStatus('RUNNING')) await handle(job);
  const updatedAfter = new Date(now.getTime() - s.finalLookbackSeconds * 1000).toISOString();
  for (const status of FINISHED) {
    for await (const job of deps.jobs.byStatus(status, { updatedAfter })) {
      if (job.finalCostUsd === undefined) await handle(job);
    }
  }
  const running = estimates.filter((e) => !e.final).length;
  const stalled = estimates.filter((e) => e.stalled).length;
  // Always emitted, 0 included: the stall alarm and the dashboard need a continuous series.
  metrics.record('RunningJobs', running, 'Count');
  metrics.record('StalledJobs', stalled, 'Count');

  const { monthToDate, thresholdsCrossed } = await budget(deps, now, events);

  await publish(deps.bus, events);
  await metrics.flush();
  log.info('cost run done', {
    at,
    running,
    stalled,
    finalized: estimates.length - running,
    thresholdsCrossed,
  });
  return {
    at,
    running,
    stalled,
    finalized: estimates.length - running,
    estimates,
    monthToDate,
    thresholdsCrossed,
  };
}

async function budget(
  deps: CostTrackerDeps,
  now: Date,
  events: OutgoingEvent[],
): Promise<Pick<RunSummary, 'monthToDate' | 'thresholdsCrossed'>> {
  const { settings: s, metrics, log } = deps;
  const month = monthOf(now);
  let mtd = await deps.state.getMtd();
  const age = (iso: string | null) =>
    iso ? (now.getTime() - Date.parse(iso)) / 1000 : Number.POSITIVE_INFINITY;
  const current = mtd?.month === month && mtd.amountUsd !== null;
  const due =
    !mtd ||
    mtd.month !== month ||
    (mtd.fetchedAt === null
      ? age(mtd.failedAt) >= s.mtdRetrySeconds
      : age(mtd.fetchedAt) >= s.mtdMaxAgeSeconds);
  let fetched = false;
  if (due) {
    const answer = await deps.costExplorer.monthToDate({ ...monthToDatePeriod(now), tags: s.costTags }).catch(
      (error: unknown): MonthToDate => ({
        available: false,
        reason: `Cost Explorer call failed: ${String(error)}`,
      }),
    );
    if (answer.available) {
      mtd = {
        month,
        amountUsd: answer.amountUsd,
        estimated: answer.estimated,
        fetchedAt: now.toISOString(),
        failedAt: null,
        reason: null,
      };
      fetched = true;
    } else {
      log.warn('no month-to-date cost: job estimates still run', { reason: answer.reason });
      // Keep a figure of this month we already have; a new month starts without one.
      mtd = {
        month,
        amountUsd: current && mtd ? mtd.amountUsd : null,
        estimated: mtd?.estimated ?? true,
        fetchedAt: current && mtd ? mtd.fetchedAt : null,
        failedAt: now.toISOString(),
        reason: answer.reason,
      };
    }
    await deps.state.putMtd(mtd);
  }
  if (!mtd || mtd.month !== month || mtd.amountUsd === null) {
    return {
      monthToDate: { unavailable: mtd?.reason ?? 'no month-to-date cost yet' },
      thresholdsCrossed: [],
    };
  }
  const amountUsd = mtd.amountUsd;
  // Emitted every run from the stored figure, so graphs and the budget alarm have a steady series.
  metrics.record('MonthToDateCostUsd', amountUsd, 'None', {
    properties: { month, fetchedAt: mtd.fetchedAt },
  });
  if (s.monthlyBudgetUsd === null)
    return { monthToDate: { amountUsd, utilizationPercent: null, fetched }, thresholdsCrossed: [] };
  const utilizationPercent = round6((amountUsd / s.monthlyBudgetUsd) * 100);
  metrics.record('BudgetUtilizationPercent', utilizationPercent, 'Percent', { properties: { month } });
  const crossed: number[] = [];
  for (const t of thresholdsReached(utilizationPercent, s.thresholdsPercent)) {
    if (await deps.state.thresholdAnnounced(month, t)) continue;
    events.push(
      event('BudgetThresholdCrossed.v1', {
        // One fact per month and threshold: the same id whoever announces it, however often.
        eventId: eventIdFor('BudgetThresholdCrossed', s.stage, month, t),
        occurredAt: now.toISOString(),
        month,
        thresholdPercent: t,
        monthToDateCostUsd: amountUsd,
        budgetUsd: s.monthlyBudgetUsd,
        utilizationPercent,
      }),
    );
    crossed.push(t);
  }
  if (crossed.length > 0) {
    // Announce first, then remember: a crash in between announces again with the same event id,
    // which the alarm-router de-duplicates; the other order could lose the announcement.
    await publish(
      deps.bus,
      events.filter((e) => e.detailType === 'BudgetThresholdCrossed.v1'),
    );
    events.splice(0, events.length, ...events.filter((e) => e.detailType !== 'BudgetThresholdCrossed.v1'));
    for (const t of crossed) await deps.state.markThresholdAnnounced(month, t, now.toISOString());
    log.info('budget thresholds crossed', {
      month,
      crossed,
      utilizationPercent,
      amountUsd,
      budgetUsd: s.monthlyBudgetUsd,
    });
  }
  return { monthToDate: { amountUsd, utilizationPercent, fetched }, thresholdsCrossed: crossed };
}
