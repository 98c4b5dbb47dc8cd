import { EmfTail } from '../../local/emf-tail.ts';

/** One EMF line, reduced to what the dashboard reads. */
export interface EmfRecord {
  readonly timestamp: number;
  readonly service: string | null;
  readonly jobId: string | null;
  /** Metric name -> values (EMF allows an array of values per metric in one line). */
  readonly metrics: Readonly<Record<string, readonly number[]>>;
}

/**
 * Parses one EMF line the way CloudWatch extracts it: the metric names come from
 * `_aws.CloudWatchMetrics[].Metrics[].Name`, their values from the top-level member of that name.
 * Anything else (a log line, a half-written line) yields null instead of throwing.
 */
export function parseEmfLine(line: string): EmfRecord | null {
  const text = line.trim();
  if (!text.startsWith('{')) return null;
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
  const aws = obj._aws as
    | { Timestamp?: number; CloudWatchMetrics?: { Metrics?: { Name?: string }[] }[] }
    | undefined;
  if (!aws || !Array.isArray(aws.CloudWatchMetrics)) return null;
  const metrics: Record<string, number[]> = {};
  for (const directive of aws.CloudWatchMetrics) {
    for (const m of directive.Metrics ?? []) {
      if (!m.Name) continue;
      const raw = obj[m.Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter(
        (v): v is number => typeof v === 'number' && Number.isFinite(v),
      );
      if (values.length > 0) metrics[m.Name] = values;
    }
  }
  return {
    timestamp: typeof aws.Timestamp === 'number' ? aws.Timestamp : Date.now(),
    service: typeof obj.Service === 'string' ? obj.Service : null,
    jobId: typeof obj.JobId === 'string' ? obj.JobId : null,
    metrics,
  };
}

/** The local EMF files' new lines (local/emf-tail.ts), parsed into records; other lines are skipped. */
export class EmfRecordTail {
  private readonly tail: EmfTail;
  constructor(dir: string) {
    this.tail = new EmfTail(dir);
  }
  files(): string[] {
    return this.tail.files();
  }
  poll(maxBytesPerFile = 16 * 1024 * 1024): EmfRecord[] {
    const out: EmfRecord[] = [];
    for (const line of this.tail.lines(maxBytesPerFile)) {
      const r = parseEmfLine(line);
      if (r) out.push(r);
    }
    return out;
  }
}

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? null;
}

export interface MetricsSnapshot {
  /** jobId -> [time ms, rows/s] */
  readonly throughput: Record<string, [number, number][]>;
  /** jobId -> last ProgressPercent / EtaSeconds seen in EMF */
  readonly progress: Record<string, { percent: number | null; etaSeconds: number | null; at: number }>;
  readonly latency: {
    readonly p50: number | null;
    readonly p99: number | null;
    readonly windowSeconds: number;
    readonly series: [number, number, number][];
  };
  readonly totals: {
    errors: number;
    retries: number;
    rowsRejected: number;
    rowsProduced: number;
    metricsDropped: number;
  };
  readonly cost: {
    readonly monthToDateUsd: number | null;
    readonly budgetUtilizationPercent: number | null;
    readonly perJobUsd: Record<string, number>;
  };
}

const MAX_POINTS_PER_JOB = 900;
const MAX_LATENCY_POINTS = 900;
const LATENCY_WINDOW_MS = 60_000;

/** Bounded in-memory aggregates of the EMF records: what the CloudWatch dashboard would graph. */
export class MetricsStore {
  private readonly throughput = new Map<string, [number, number][]>();
  private readonly progress = new Map<
    string,
    { percent: number | null; etaSeconds: number | null; at: number }
  >();
  private latencySeries: [number, number, number][] = [];
  private recentLatency: { at: number; v: number }[] = [];
  private readonly totals = { errors: 0, retries: 0, rowsRejected: 0, rowsProduced: 0, metricsDropped: 0 };
  private monthToDateUsd: number | null = null;
  private budgetUtilizationPercent: number | null = null;
  private readonly perJobUsd = new Map<string, number>();

  add(records: readonly EmfRecord[]): void {
    for (const r of records) {
      const m = r.metrics;
      const sum = (name: string) => (m[name] ?? []).reduce((a, b) => a + b, 0);
      const last = (name: string) => m[name]?.at(-1);
      this.totals.errors += sum('Errors');
      this.totals.retries += sum('Retries');
      this.totals.rowsRejected += sum('RowsRejected');
      this.totals.rowsProduced += sum('RowsProduced');
      this.totals.metricsDropped += sum('MetricsDropped');
      if (r.jobId) {
        const rate = last('RowsPerSecond');
        if (rate !== undefined) push(this.throughput, r.jobId, [r.timestamp, rate], MAX_POINTS_PER_JOB);
        const pct = last('ProgressPercent');
        const eta = last('EtaSeconds');
        if (pct !== undefined || eta !== undefined) {
          const prev = this.progress.get(r.jobId);
          this.progress.set(r.jobId, {
            percent: pct ?? prev?.percent ?? null,
            etaSeconds: eta ?? prev?.etaSeconds ?? null,
            at: r.timestamp,
          });
        }
        const cost = last('EstimatedCostUsd');
        if (cost !== undefined) this.perJobUsd.set(r.jobId, cost);
      }
      const lat = m.KafkaLatencyMs;
      if (lat && lat.length > 0) {
        this.latencySeries.push([r.timestamp, percentile(lat, 50) ?? 0, percentile(lat, 99) ?? 0]);
        if (this.latencySeries.length > MAX_LATENCY_POINTS)
          this.latencySeries = this.latencySeries.slice(-MAX_LATENCY_POINTS);
        for (const v of lat) this.recentLatency.push({ at: r.timestamp, v });
      }
      const mtd = last('MonthToDateCostUsd');
      if (mtd !== undefined) this.monthToDateUsd = mtd;
      const budget = last('BudgetUtilizationPercent');
      if (budget !== undefined) this.budgetUtilizationPercent = budget;
    }
  }

  snapshot(now: number): MetricsSnapshot {
    const newest = this.recentLatency.at(-1)?.at ?? now;
    // The window ends at the newest point, so a finished job still shows the latency it ran with.
    this.recentLatency = this.recentLatency.filter((p) => p.at >= newest - LATENCY_WINDOW_MS).slice(-20_000);
    const recent = this.recentLatency.map((p) => p.v);
    // Several EMF lines share a flush timestamp and files are read in turn: charts need x in order.
    const byTime = <T extends [number, ...number[]]>(list: T[]) => [...list].sort((a, b) => a[0] - b[0]);
    return {
      throughput: Object.fromEntries([...this.throughput].map(([k, v]) => [k, byTime(v)])),
      progress: Object.fromEntries(this.progress),
      latency: {
        p50: percentile(recent, 50),
        p99: percentile(recent, 99),
        windowSeconds: LATENCY_WINDOW_MS / 1000,
        series: byTime(this.latencySeries),
      },
      totals: { ...this.totals },
      cost: {
        monthToDateUsd: this.monthToDateUsd,
        budgetUtilizationPercent: this.budgetUtilizationPercent,
        perJobUsd: Object.fromEntries(this.perJobUsd),
      },
    };
  }
}

function push<T>(map: Map<string, T[]>, key: string, value: T, max: number) {
  let list = map.get(key);
  if (!list) {
    list = [];
    map.set(key, list);
  }
  list.push(value);
  if (list.length > max) list.splice(0, list.length - max);
}
