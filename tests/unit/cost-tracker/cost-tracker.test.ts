import { describe, expect, it } from 'vitest';
import type { BusEntry, BusPort } from '../../../events/bus.ts';
import type { JobStatus } from '../../../events/catalog.ts';
import type { CostTrackerDeps } from '../../../services/cost-tracker/core.ts';
import { monthToDatePeriod, runOnce, thresholdsReached } from '../../../services/cost-tracker/core.ts';
import { PriceConfigError } from '../../../services/cost-tracker/errors.ts';
import type {
  CostExplorerPort,
  CostJobsPort,
  CostStatePort,
  MonthToDate,
  MtdState,
} from '../../../services/cost-tracker/ports.ts';
import { DEFAULT_PRICES, estimateCost, priceTable } from '../../../services/cost-tracker/prices.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';
import { NO_LOG } from '../../../services/shared/logger.ts';
import { BufferedMetrics, MemorySink } from '../../../services/shared/metrics.ts';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;

/** Round prices so the expected figures can be worked out by hand. */
const ROUND_PRICES = priceTable({
  fargateVcpuHourUsd: 0.04,
  fargateGbHourUsd: 0.005,
  producerVcpu: 1,
  producerMemoryGb: 2,
  s3GetPer1000Usd: 0.0004,
  s3TransferPerGbUsd: 0,
  plannerPartBytes: 64 * MIB,
  kafkaIngressPerGbUsd: 0.1,
  kafkaBytesPerSourceByte: 1.5,
  eventBridgePerMillionUsd: 1,
  progressEventSeconds: 60,
  sqsPerMillionUsd: 0.4,
  sqsRequestsPerJob: 6,
  sqsRequestsPerMinute: 1,
});

function job(over: Partial<JobRecord> & { jobId: string }): JobRecord {
  return {
    status: 'RUNNING',
    createdAt: '2026-11-25T09:59:00.000Z',
    updatedAt: '2026-11-25T10:59:00.000Z',
    startedAt: '2026-11-25T10:00:00.000Z',
    bucket: 'b',
    key: 'inbound/x.csv',
    etag: 'e',
    versionId: null,
    sourceUri: 's3://b/inbound/x.csv',
    size: 2 * GIB,
    totalRows: 20_000_000,
    attempts: 1,
    checkpoint: {
      rowsDone: 10_000_000,
      rowsDelivered: 10_000_000,
      rowsRejected: 0,
      nextByteOffset: GIB,
      partitions: [],
      updatedAt: '2026-11-25T10:59:00.000Z',
    },
    ...over,
  };
}

const NOW = new Date('2026-11-25T11:00:00.000Z');

describe('estimateCost (hand-calculated)', () => {
  it('a RUNNING job after one hour, 1 GiB of 2 GiB read, 10 M rows', () => {
    // fargate 1 h x (1 x 0.04 + 2 x 0.005)                 = 0.05
    // s3      (ceil(2 GiB / 64 MiB) = 32 + 1 attempt) = 33  = 0.0000132
    // kafka   1 GiB x 1.5 x 0.1                              = 0.15
    // events  2 + 3600/60 = 62                               = 0.000062
    // sqs     6 + 60 = 66 x 0.4 / 1e6                        = 0.0000264
    const c = estimateCost(job({ jobId: 'j1' }), NOW, ROUND_PRICES);
    expect(c.elapsedSeconds).toBe(3600);
    expect(c.s3Requests).toBe(33);
    expect(c.events).toBe(62);
    expect(c.sqsRequests).toBe(66);
    expect(c.fargateUsd).toBeCloseTo(0.05, 10);
    expect(c.s3Usd).toBeCloseTo(0.0000132, 10);
    expect(c.kafkaUsd).toBeCloseTo(0.15, 10);
    expect(c.eventBridgeUsd).toBeCloseTo(0.000062, 10);
    expect(c.sqsUsd).toBeCloseTo(0.0000264, 10);
    expect(c.totalUsd).toBeCloseTo(0.2001016, 10);
    expect(c.costPerMillionRows).toBeCloseTo(0.02001016, 10);
  });

  it('a finished job counts up to finishedAt and the whole object; no rows -> no cost per row', () => {
    const done = job({
      jobId: 'j2',
      status: 'COMPLETED',
      finishedAt: '2026-11-25T10:30:00.000Z',
      rowsDelivered: 19_999_000,
      rowsRejected: 1_000,
    });
    const c = estimateCost(done, NOW, ROUND_PRICES);
    expect(c.elapsedSeconds).toBe(1800);
    expect(c.rowsDone).toBe(20_000_000);
    // kafka: the whole 2 GiB x 1.5 x 0.1 = 0.3; fargate 0.025
    expect(c.kafkaUsd).toBeCloseTo(0.3, 10);
    expect(c.fargateUsd).toBeCloseTo(0.025, 10);
    const fresh = estimateCost(job({ jobId: 'j3', checkpoint: undefined }), NOW, ROUND_PRICES);
    expect(fresh.costPerMillionRows).toBeNull();
  });

  it('defaults are us-east-1 on-demand prices; overrides are validated', () => {
    expect(DEFAULT_PRICES.fargateVcpuHourUsd).toBe(0.04048);
    expect(DEFAULT_PRICES.fargateGbHourUsd).toBe(0.004445);
    expect(priceTable('{"sqsPerMillionUsd":0.5}').sqsPerMillionUsd).toBe(0.5);
    expect(() => priceTable('{"fargateVcpuHourUsd":-1}')).toThrow(PriceConfigError);
    expect(() => priceTable('{"fargateVCPU":1}')).toThrow(/fargateVCPU/);
  });
});

describe('thresholds and periods', () => {
  it('thresholdsReached', () => {
    expect(thresholdsReached(49.99, [50, 80, 100])).toEqual([]);
    expect(thresholdsReached(80, [100, 50, 80])).toEqual([50, 80]);
    expect(thresholdsReached(120, [50, 80, 100])).toEqual([50, 80, 100]);
  });
  it('month-to-date period ends tomorrow (Cost Explorer End is exclusive), also on the 1st and the 31st', () => {
    expect(monthToDatePeriod(new Date('2026-11-01T00:10:00Z'))).toEqual({
      start: '2026-11-01',
      end: '2026-11-02',
    });
    expect(monthToDatePeriod(new Date('2026-12-31T23:00:00Z'))).toEqual({
      start: '2026-12-01',
      end: '2027-01-01',
    });
  });
});

// ---------------------------------------------------------------------------------------------------

class MemoryJobs implements CostJobsPort {
  readonly costs = new Map<string, { estimatedCostUsd: number; finalCostUsd?: number }>();
  constructor(readonly jobs: JobRecord[]) {}
  async *byStatus(status: JobStatus, o: { updatedAfter?: string } = {}) {
    for (const j of this.jobs)
      if (j.status === status && (!o.updatedAfter || j.updatedAt > o.updatedAfter)) yield j;
  }
  async setCost(jobId: string, cost: { estimatedCostUsd: number; finalCostUsd?: number }) {
    this.costs.set(jobId, cost);
    const j = this.jobs.find((x) => x.jobId === jobId);
    if (j && cost.finalCostUsd !== undefined) Object.assign(j, { finalCostUsd: cost.finalCostUsd });
  }
}

class MemoryState implements CostStatePort {
  mtd: MtdState | null = null;
  readonly announced = new Set<string>();
  async getMtd() {
    return this.mtd;
  }
  async putMtd(s: MtdState) {
    this.mtd = s;
  }
  async thresholdAnnounced(month: string, t: number) {
    return this.announced.has(`${month}#${t}`);
  }
  async markThresholdAnnounced(month: string, t: number) {
    this.announced.add(`${month}#${t}`);
  }
}

class FakeCe implements CostExplorerPort {
  calls = 0;
  constructor(public answer: MonthToDate) {}
  async monthToDate() {
    this.calls++;
    return this.answer;
  }
}

class FakeBus implements BusPort {
  readonly entries: BusEntry[] = [];
  async putEntries(entries: readonly BusEntry[]) {
    this.entries.push(...entries);
    return entries.map(() => ({ eventId: 'x' }));
  }
  details(t: string) {
    return this.entries.filter((e) => e.detailType === t).map((e) => JSON.parse(e.detail));
  }
}

function setup(jobs: JobRecord[], answer: MonthToDate, budget: number | null = 500) {
  const sink = new MemorySink();
  const deps = {
    jobs: new MemoryJobs(jobs),
    costExplorer: new FakeCe(answer),
    state: new MemoryState(),
    bus: new FakeBus(),
    metrics: new BufferedMetrics({ sink, defaultDimensions: { Service: 'cost-tracker', Stage: 'unit' } }),
    log: NO_LOG,
    settings: {
      stage: 'unit',
      prices: ROUND_PRICES,
      monthlyBudgetUsd: budget,
      thresholdsPercent: [50, 80, 100],
      costTags: { app: 'rowstream', stage: 'unit' },
      mtdMaxAgeSeconds: 24 * 3600,
      mtdRetrySeconds: 3600,
      stallSeconds: 15 * 60,
      finalLookbackSeconds: 24 * 3600,
    },
  } satisfies CostTrackerDeps;
  return { deps, sink };
}

describe('runOnce', () => {
  it('estimates RUNNING jobs per job (JobId dimension), writes the cost, emits CostEstimated.v1', async () => {
    // Prepare
    const { deps, sink } = setup([job({ jobId: 'j1' })], {
      available: true,
      amountUsd: 100,
      estimated: true,
    });
    // Act
    const r = await runOnce(deps, NOW);
    // Assess
    expect(r.running).toBe(1);
    expect(deps.jobs.costs.get('j1')).toEqual({
      estimatedCostUsd: 0.200102,
      costUpdatedAt: NOW.toISOString(),
    });
    const cost = sink.groups.find((g) => g.points.some((p) => p.name === 'EstimatedCostUsd'));
    expect(cost?.dimensions).toEqual({ Service: 'cost-tracker', Stage: 'unit', JobId: 'j1' });
    expect(sink.values('EstimatedCostUsd')).toEqual([0.200102]);
    expect(sink.values('CostPerMillionRows')[0]).toBeCloseTo(0.02001, 6);
    expect(sink.values('JobRowsDone')).toEqual([10_000_000]);
    expect(sink.values('JobRowsTotal')).toEqual([20_000_000]);
    expect(deps.bus.details('CostEstimated.v1')).toEqual([
      expect.objectContaining({
        jobId: 'j1',
        estimatedCostUsd: 0.200102,
        final: false,
        rowsDone: 10_000_000,
      }),
    ]);
  });

  it('finalizes jobs finished since (final cost on the record, once), and counts stalled jobs', async () => {
    const finished = job({
      jobId: 'done',
      status: 'COMPLETED',
      finishedAt: '2026-11-25T10:30:00.000Z',
      updatedAt: '2026-11-25T10:30:00.000Z',
      rowsDelivered: 20_000_000,
      rowsRejected: 0,
    });
    const stuck = job({
      jobId: 'stuck',
      checkpoint: { ...job({ jobId: 'x' }).checkpoint!, updatedAt: '2026-11-25T10:40:00.000Z' },
    });
    const { deps, sink } = setup([job({ jobId: 'fresh' }), stuck, finished], {
      available: false,
      reason: 'none',
    });
    const first = await runOnce(deps, NOW);
    expect(first).toMatchObject({ running: 2, stalled: 1, finalized: 1 });
    expect(deps.jobs.costs.get('done')?.finalCostUsd).toBeGreaterThan(0);
    expect(sink.values('StalledJobs')).toEqual([1]);
    expect(sink.values('RunningJobs')).toEqual([2]);
    const second = await runOnce(deps, new Date(NOW.getTime() + 300_000));
    expect(second.finalized).toBe(0);
  });

  it('without Cost Explorer: says so, no month-to-date metrics, job estimates still run', async () => {
    const { deps, sink } = setup([job({ jobId: 'j1' })], {
      available: false,
      reason: 'no Cost Explorer here',
    });
    const r = await runOnce(deps, NOW);
    expect(r.monthToDate).toEqual({ unavailable: 'no Cost Explorer here' });
    expect(sink.values('MonthToDateCostUsd')).toEqual([]);
    expect(sink.values('EstimatedCostUsd')).toHaveLength(1);
    // backs off: not asked again within the retry interval, asked again after it
    await runOnce(deps, new Date(NOW.getTime() + 300_000));
    expect(deps.costExplorer.calls).toBe(1);
    await runOnce(deps, new Date(NOW.getTime() + 3_600_000));
    expect(deps.costExplorer.calls).toBe(2);
  });

  it('asks Cost Explorer once a day and emits the stored figure every run', async () => {
    const { deps, sink } = setup([], { available: true, amountUsd: 100, estimated: true });
    await runOnce(deps, NOW);
    await runOnce(deps, new Date(NOW.getTime() + 3_600_000));
    expect(deps.costExplorer.calls).toBe(1);
    expect(sink.values('MonthToDateCostUsd')).toEqual([100, 100]);
    expect(sink.values('BudgetUtilizationPercent')).toEqual([20, 20]);
    await runOnce(deps, new Date(NOW.getTime() + 25 * 3_600_000));
    expect(deps.costExplorer.calls).toBe(2);
  });

  it('announces each budget threshold once per month', async () => {
    // Prepare: 425 of 500 USD = 85%
    const { deps } = setup([], { available: true, amountUsd: 425, estimated: true });
    // Act
    const first = await runOnce(deps, NOW);
    const second = await runOnce(deps, new Date(NOW.getTime() + 300_000));
    // Assess
    expect(first.thresholdsCrossed).toEqual([50, 80]);
    expect(second.thresholdsCrossed).toEqual([]);
    const crossed = deps.bus.details('BudgetThresholdCrossed.v1');
    expect(crossed.map((d) => [d.thresholdPercent, d.month, d.utilizationPercent, d.budgetUsd])).toEqual([
      [50, '2026-11', 85, 500],
      [80, '2026-11', 85, 500],
    ]);
    // Later the same month: 100% is new, 50/80 are not
    deps.costExplorer.answer = { available: true, amountUsd: 510, estimated: true };
    const later = await runOnce(deps, new Date(NOW.getTime() + 25 * 3_600_000));
    expect(later.thresholdsCrossed).toEqual([100]);
    // A new month starts over
    deps.costExplorer.answer = { available: true, amountUsd: 260, estimated: true };
    const december = await runOnce(deps, new Date('2026-12-02T00:00:00Z'));
    expect(december.thresholdsCrossed).toEqual([50]);
  });

  it('no budget configured: month-to-date only, no utilization, no events', async () => {
    const { deps, sink } = setup([], { available: true, amountUsd: 425, estimated: true }, null);
    const r = await runOnce(deps, NOW);
    expect(r.thresholdsCrossed).toEqual([]);
    expect(sink.values('BudgetUtilizationPercent')).toEqual([]);
    expect(sink.values('MonthToDateCostUsd')).toEqual([425]);
  });
});
