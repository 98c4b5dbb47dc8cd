import type { JobRecord } from '../services/shared/jobs.ts';
import {
  costOf,
  formatCount,
  formatEta,
  formatRate,
  formatUsd,
  jobDurationSeconds,
  percentOf,
  progressLine,
  snapshotOf,
  summaryLines,
} from './format.ts';

/** One job as `status --json` and the dashboard API show it. */
export interface JobView {
  readonly jobId: string;
  readonly status: JobRecord['status'];
  readonly sourceUri: string;
  readonly topic: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly rowsDone: number;
  readonly rowsDelivered: number;
  readonly rowsRejected: number;
  readonly totalRows: number | null;
  readonly percent: number | null;
  readonly rowsPerSecond: number | null;
  readonly etaSeconds: number | null;
  readonly durationSeconds: number | null;
  readonly costUsd: number | null;
  readonly costSource: string;
  readonly rejectsUri: string | null;
  readonly reason: string | null;
}

export function jobView(job: JobRecord, now: number): JobView {
  const snap = snapshotOf(job, null);
  const terminal = ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED', 'REJECTED'].includes(job.status);
  const rowsDone =
    job.status === 'COMPLETED' || job.status === 'COMPLETED_WITH_REJECTS'
      ? (job.totalRows ?? snap.rowsDone)
      : snap.rowsDone;
  const duration = jobDurationSeconds(job, now);
  const cost = costOf(job, duration);
  const why = job.rejection ?? job.failure;
  return {
    jobId: job.jobId,
    status: job.status,
    sourceUri: job.sourceUri,
    topic: job.topic ?? null,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    rowsDone,
    rowsDelivered: job.rowsDelivered ?? job.checkpoint?.rowsDelivered ?? 0,
    rowsRejected: snap.rowsRejected,
    totalRows: snap.totalRows,
    percent: job.totalRows === undefined ? null : percentOf(rowsDone, job.totalRows),
    rowsPerSecond: terminal ? null : snap.rowsPerSecond,
    etaSeconds: terminal ? 0 : snap.etaSeconds,
    durationSeconds: duration,
    costUsd: cost.usd,
    costSource: cost.source,
    rejectsUri: job.rejectsUri ?? null,
    reason: why ? `${why.reason}: ${why.message}` : null,
  };
}

/** A fixed-width table, newest job first. */
export function jobsTable(views: readonly JobView[]): string[] {
  if (views.length === 0) return ['no jobs yet: drop a CSV with `rowstream drop <file.csv>`'];
  const rows = views.map((v) => [
    v.jobId,
    v.status,
    v.totalRows === null
      ? `${formatCount(v.rowsDone)}/?`
      : `${formatCount(v.rowsDone)}/${formatCount(v.totalRows)}`,
    v.percent === null ? '-' : `${v.percent.toFixed(1)}%`,
    formatRate(v.rowsPerSecond),
    v.status === 'RUNNING' || v.status === 'PLANNED' ? formatEta(v.etaSeconds) : '-',
    formatUsd(v.costUsd),
    v.sourceUri.replace(/^s3:\/\/[^/]+\//, ''),
  ]);
  const header = ['JOB', 'STATUS', 'ROWS', '%', 'RATE', 'ETA', 'COST', 'OBJECT'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** One job in detail: its progress line while it runs, its summary always. */
export function jobDetail(job: JobRecord, now: number): string[] {
  const lines: string[] = [];
  if (job.status === 'RUNNING' || job.status === 'PLANNED') lines.push(progressLine(snapshotOf(job, null)));
  const duration = jobDurationSeconds(job, now);
  lines.push(...summaryLines({ job, durationSeconds: duration, cost: costOf(job, duration) }));
  lines.push(`created    ${job.createdAt}`, `updated    ${job.updatedAt}`);
  // Where the object is now: a moved source (ROWSTREAM_SOURCE_FATE=move) is read there by a resume.
  if (job.movedTo)
    lines.push(
      `moved to   s3://${job.bucket}/${job.movedTo.key} (version ${job.movedTo.versionId}, ${job.movedTo.outcome})`,
    );
  if (job.attempts && job.attempts > 1) lines.push(`attempts   ${job.attempts} (resumed after a restart)`);
  return lines;
}
