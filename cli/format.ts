import type { JobStatus } from '../events/catalog.ts';
import type { JobRecord } from '../services/shared/jobs.ts';

/** Exit codes of every command (docs/cli.md lists them). */
export const EXIT = {
  ok: 0,
  usage: 1,
  jobFailed: 2,
  completedWithRejects: 3,
} as const;

/** The exit status `drop` ends with for a job that reached `status`. */
export function exitCodeFor(status: JobStatus): number {
  switch (status) {
    case 'COMPLETED':
      return EXIT.ok;
    case 'COMPLETED_WITH_REJECTS':
      return EXIT.completedWithRejects;
    case 'REJECTED':
    case 'FAILED':
      return EXIT.jobFailed;
    default:
      // A job that is still PLANNED/RUNNING has no final answer: `--no-wait` and timeouts say so themselves.
      return EXIT.ok;
  }
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatCount(n: number): string {
  return int.format(n);
}

/** `12.3s`, `4m 05s`, `1h 02m`: short enough for a progress line, exact enough for a summary. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)}s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, '0')}m`;
}

/** ETA for display: unknown while there is no rate yet, never negative. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return 'unknown';
  return formatDuration(Math.max(0, seconds));
}

export function formatRate(rowsPerSecond: number | null | undefined): string {
  if (rowsPerSecond === null || rowsPerSecond === undefined || !Number.isFinite(rowsPerSecond)) return '-';
  return `${formatCount(rowsPerSecond)} rows/s`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

export function formatUsd(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || !Number.isFinite(usd)) return '-';
  // Local jobs cost fractions of a cent; four significant digits keep them readable.
  if (usd === 0) return '$0';
  if (usd < 0.01) return `$${usd.toPrecision(2)}`;
  return `$${usd.toFixed(2)}`;
}

export function percentOf(done: number, total: number | undefined): number | null {
  if (total === undefined) return null;
  if (total === 0) return 100;
  return Math.min(100, (done / total) * 100);
}

/** What a progress view shows at one moment. */
export interface ProgressSnapshot {
  readonly jobId: string;
  readonly status: JobStatus | 'WAITING';
  readonly rowsDone: number;
  readonly rowsRejected: number;
  readonly totalRows: number | null;
  readonly rowsPerSecond: number | null;
  readonly etaSeconds: number | null;
}

/**
 * Rate and ETA as the CLI shows them: the producer's smoothed rate from the job record when it has
 * one, else the rate the CLI observed itself between two polls; ETA = rows left / rate.
 */
export function snapshotOf(
  job: JobRecord,
  observedRate: number | null,
): Omit<ProgressSnapshot, 'status'> & { status: JobStatus } {
  const rowsDone = job.checkpoint?.rowsDone ?? 0;
  const totalRows = job.totalRows ?? null;
  const rate = job.rowsPerSecond && job.rowsPerSecond > 0 ? job.rowsPerSecond : observedRate;
  let eta: number | null = null;
  if (totalRows !== null && rate && rate > 0) eta = Math.max(0, (totalRows - rowsDone) / rate);
  if (job.etaSeconds !== undefined && job.etaSeconds !== null && job.rowsPerSecond) eta = job.etaSeconds;
  return {
    jobId: job.jobId,
    status: job.status,
    rowsDone,
    rowsRejected: job.checkpoint?.rowsRejected ?? job.rowsRejected ?? 0,
    totalRows,
    rowsPerSecond: rate ?? null,
    etaSeconds: eta,
  };
}

/** One plain line for logs and pipes (no TTY): everything the bar shows, in words. */
export function progressLine(s: ProgressSnapshot): string {
  const pct = s.totalRows === null ? null : percentOf(s.rowsDone, s.totalRows);
  const total = s.totalRows === null ? '?' : formatCount(s.totalRows);
  const parts = [
    `${s.jobId} ${s.status}`,
    `${formatCount(s.rowsDone)}/${total} rows`,
    pct === null ? '' : `(${pct.toFixed(1)}%)`,
    formatRate(s.rowsPerSecond),
    `ETA ${formatEta(s.etaSeconds)}`,
  ];
  if (s.rowsRejected > 0) parts.push(`${formatCount(s.rowsRejected)} rejected`);
  return parts.filter(Boolean).join('  ');
}

export interface CostLine {
  readonly usd: number | null;
  /** Where the figure comes from, so nobody mistakes a local estimate for a bill. */
  readonly source: 'cost-tracker (final)' | 'cost-tracker' | 'local estimate';
}

export interface SummaryInput {
  readonly job: JobRecord;
  readonly durationSeconds: number | null;
  readonly cost: CostLine;
}

/** The end-of-job summary `drop` prints (and `status <jobId>` reuses). */
export function summaryLines({ job, durationSeconds, cost }: SummaryInput): string[] {
  const lines: string[] = [];
  const delivered = job.rowsDelivered ?? job.checkpoint?.rowsDelivered ?? 0;
  const rejected = job.rowsRejected ?? job.checkpoint?.rowsRejected ?? 0;
  lines.push(`job        ${job.jobId}  ${job.status}`);
  lines.push(`source     ${job.sourceUri} (${formatBytes(job.size)})`);
  if (job.status === 'REJECTED' || job.status === 'FAILED') {
    const why = job.rejection ?? job.failure;
    if (why) {
      lines.push(`reason     ${why.reason}: ${why.message}`);
      const pos = positionText(why.position);
      if (pos) lines.push(`position   ${pos}`);
    }
  }
  if (job.status !== 'REJECTED') {
    lines.push(
      `delivered  ${formatCount(delivered)} rows${job.totalRows === undefined ? '' : ` of ${formatCount(job.totalRows)}`}`,
    );
    lines.push(`rejected   ${formatCount(rejected)} rows${job.rejectsUri ? `  -> ${job.rejectsUri}` : ''}`);
  }
  if (durationSeconds !== null) {
    const rows = delivered + rejected;
    const rate = durationSeconds > 0 ? rows / durationSeconds : null;
    lines.push(`duration   ${formatDuration(durationSeconds)}  (${formatRate(rate)})`);
  }
  if (job.topic) {
    const parts = job.partitions ?? job.checkpoint?.partitions ?? [];
    const ranges = parts
      .map((p) => `p${p.partition}: ${p.firstOffset ?? '-'}..${p.lastOffset ?? '-'}`)
      .join(', ');
    lines.push(`kafka      topic ${job.topic}${ranges ? `  offsets ${ranges}` : ''}`);
  }
  lines.push(`cost       ${formatUsd(cost.usd)} (${cost.source})`);
  return lines;
}

export function positionText(position: { row?: number | undefined; byte?: number | undefined } | undefined) {
  if (!position) return '';
  const parts: string[] = [];
  if (position.row !== undefined) parts.push(position.row === 0 ? 'header' : `row ${position.row}`);
  if (position.byte !== undefined) parts.push(`byte ${position.byte}`);
  return parts.join(', ');
}

/**
 * A rough local cost estimate when the cost tracker has not priced the job yet: producer compute
 * (0.25 vCPU + 0.5 GB Fargate, us-east-1 list price) for the job's duration, plus S3 requests
 * (one PUT, ranged GETs of 8 MiB) and EventBridge events (start, progress each 5 s, end). Labelled
 * "local estimate" wherever it is shown.
 */
export function localCostEstimate(input: { durationSeconds: number; bytes: number }): number {
  const hours = Math.max(0, input.durationSeconds) / 3600;
  const fargate = hours * (0.25 * 0.04048 + 0.5 * 0.004445);
  const gets = Math.max(1, Math.ceil(input.bytes / (8 * 1024 * 1024)));
  const s3 = 0.005 / 1000 + (gets * 0.0004) / 1000;
  const events = (2 + Math.ceil(input.durationSeconds / 5)) * (1 / 1_000_000);
  return fargate + s3 + events;
}

export function costOf(job: JobRecord, durationSeconds: number | null): CostLine {
  if (job.finalCostUsd !== undefined) return { usd: job.finalCostUsd, source: 'cost-tracker (final)' };
  if (job.estimatedCostUsd !== undefined) return { usd: job.estimatedCostUsd, source: 'cost-tracker' };
  return {
    usd: durationSeconds === null ? null : localCostEstimate({ durationSeconds, bytes: job.size }),
    source: 'local estimate',
  };
}

/** Seconds between the job's start (or creation) and its end (or `now`). */
export function jobDurationSeconds(job: JobRecord, now: number): number | null {
  const start = Date.parse(job.startedAt ?? job.createdAt);
  if (Number.isNaN(start)) return null;
  // A rejected job has no finishedAt: it ended when its record was last written.
  const terminal = ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED', 'REJECTED'].includes(job.status);
  const end = job.finishedAt ? Date.parse(job.finishedAt) : terminal ? Date.parse(job.updatedAt) : now;
  return Math.max(0, (end - start) / 1000);
}
