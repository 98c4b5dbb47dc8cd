import type { BusPort } from '../../events/bus.ts';
import { event, publish } from '../../events/bus.ts';
import type { JobStatus } from '../../events/catalog.ts';
import { eventIdFor, jobIdFor } from '../../events/ids.ts';
import { isTerminal } from '../shared/jobs.ts';
import type { Log } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import type { InventoryDefinition } from './definition.ts';
import type {
  InventoryJobsPort,
  ObjectEntry,
  ObjectsPort,
  Snapshot,
  SnapshotMetric,
  SnapshotsPort,
} from './ports.ts';

export interface DimsDeps {
  readonly bucket: string;
  readonly stage: string;
  readonly definition: InventoryDefinition;
  readonly objects: ObjectsPort;
  readonly jobs: InventoryJobsPort;
  readonly snapshots: SnapshotsPort;
  readonly bus: BusPort;
  readonly metrics: MetricsPort;
  readonly log: Log;
}

// ---------------------------------------------------------------------------------------------------
// Pure parts

export interface DriftedMetric extends SnapshotMetric {
  readonly previous: number | null;
  readonly driftPercent: number | null;
}

const labelKey = (m: Pick<SnapshotMetric, 'name' | 'labels'>) =>
  `${m.name}|${Object.entries(m.labels)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`;

/**
 * Change of each metric against the previous snapshot, in percent of the previous value (signed).
 * From 0 to anything is 100%; a metric new in this snapshot has no drift (null).
 */
export function compareSnapshots(
  current: readonly SnapshotMetric[],
  previous: Snapshot | null,
): DriftedMetric[] {
  const before = new Map((previous?.metrics ?? []).map((m) => [labelKey(m), m.value]));
  return current.map((m) => {
    const prev = before.get(labelKey(m));
    if (prev === undefined) return { ...m, previous: null, driftPercent: null };
    const driftPercent = prev === 0 ? (m.value === 0 ? 0 : 100) : ((m.value - prev) / Math.abs(prev)) * 100;
    return { ...m, previous: prev, driftPercent: Math.round(driftPercent * 100) / 100 };
  });
}

/** The metrics whose drift exceeds the tolerance, either direction. */
export function beyondTolerance(
  metrics: readonly DriftedMetric[],
  tolerancePercent: number,
): DriftedMetric[] {
  return metrics.filter((m) => m.driftPercent !== null && Math.abs(m.driftPercent) > tolerancePercent);
}

/** Object count and bytes under a prefix, aggregated page by page: constant memory whatever the count. */
export async function summarizePrefix(
  objects: ObjectsPort,
  prefix: string,
): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for await (const page of objects.pages(prefix)) {
    count += page.length;
    for (const o of page) bytes += o.size;
  }
  return { count, bytes };
}

/**
 * The oldest object (latest version) under the prefix whose job has not finished: no job record for
 * that object version, or a job still PLANNED/RUNNING. Per page, only objects older than the best
 * found so far are looked up, oldest first, so memory stays per page and lookups shrink as it goes.
 */
export async function oldestUnprocessed(
  deps: Pick<DimsDeps, 'objects' | 'jobs' | 'bucket'>,
  prefix: string,
): Promise<ObjectEntry | null> {
  let oldest: ObjectEntry | null = null;
  for await (const page of deps.objects.latestVersionPages(prefix)) {
    const candidates = page
      .filter((o) => !o.key.endsWith('/') && (!oldest || o.lastModified < oldest.lastModified))
      .sort((a, b) => a.lastModified.getTime() - b.lastModified.getTime());
    if (candidates.length === 0) continue;
    const ids = candidates.map((o) => jobIdFor(deps.bucket, o.key, { versionId: o.versionId, etag: o.etag }));
    const statuses = await deps.jobs.statuses(ids);
    const index = ids.findIndex((id) => {
      const s = statuses.get(id);
      return s === undefined || !isTerminal(s);
    });
    if (index >= 0) oldest = candidates[index] ?? oldest;
  }
  return oldest;
}

// ---------------------------------------------------------------------------------------------------
// The run

export interface DimsSummary {
  readonly snapshot: Snapshot;
  readonly metrics: readonly DriftedMetric[];
  readonly drift: readonly DriftedMetric[];
  readonly previousSnapshotId: string | null;
  readonly oldestUnprocessedKey: string | null;
}

const COMPLETED: readonly JobStatus[] = ['COMPLETED', 'COMPLETED_WITH_REJECTS'];

/** One inventory: measure, publish as EMF, compare with the previous snapshot, store, announce. */
export async function runOnce(deps: DimsDeps, now: Date): Promise<DimsSummary> {
  const d = deps.definition;
  const metrics: SnapshotMetric[] = [];
  for (const prefix of d.prefixes) {
    const { count, bytes } = await summarizePrefix(deps.objects, prefix);
    metrics.push({ name: 'InventoryObjects', labels: { Prefix: prefix }, value: count, unit: 'Count' });
    metrics.push({ name: 'InventoryBytes', labels: { Prefix: prefix }, value: bytes, unit: 'Bytes' });
  }
  for (const status of d.jobs.statuses) {
    metrics.push({
      name: 'InventoryJobs',
      labels: { Status: status },
      value: await deps.jobs.countByStatus(status),
      unit: 'Count',
    });
  }
  const since = new Date(now.getTime() - d.rowsDelivered.windowHours * 3600_000).toISOString();
  let rows = 0;
  for (const status of COMPLETED) rows += await deps.jobs.rowsDeliveredSince(status, since);
  metrics.push({ name: 'InventoryRowsDelivered24h', labels: {}, value: rows, unit: 'Count' });
  let oldestKey: string | null = null;
  if (d.oldestUnprocessed) {
    const oldest = await oldestUnprocessed(deps, d.oldestUnprocessed.prefix);
    oldestKey = oldest?.key ?? null;
    const age = oldest ? Math.max(0, Math.round((now.getTime() - oldest.lastModified.getTime()) / 1000)) : 0;
    metrics.push({ name: 'InventoryOldestUnprocessedSeconds', labels: {}, value: age, unit: 'Seconds' });
  }

  const snapshotId = now.toISOString();
  const previous = await previousOf(deps.snapshots, snapshotId);
  const compared = compareSnapshots(metrics, previous);
  const drift = beyondTolerance(compared, d.tolerancePercent);
  const maxDrift = Math.max(0, ...compared.map((m) => Math.abs(m.driftPercent ?? 0)));
  const snapshot: Snapshot = {
    snapshotId,
    takenAt: now.toISOString(),
    metrics,
    previousSnapshotId: previous?.snapshotId ?? null,
  };

  for (const m of metrics) {
    deps.metrics.record(m.name, m.value, m.unit, {
      dimensions: m.labels,
      // The key is user data: a property (searchable in Logs), never a dimension.
      properties: m.name === 'InventoryOldestUnprocessedSeconds' && oldestKey ? { oldestKey } : {},
    });
  }
  if (previous) deps.metrics.record('InventoryDriftPercent', maxDrift, 'Percent');

  // Announce first, store second: a run that fails before storing leaves `latest` at the snapshot it
  // compared with, so its retry computes the same drift instead of comparing the snapshot with itself.
  await publish(deps.bus, [
    event('InventoryPublished.v1', {
      eventId: eventIdFor('InventoryPublished', deps.stage, snapshot.snapshotId),
      occurredAt: now.toISOString(),
      snapshotId: snapshot.snapshotId,
      tolerancePercent: d.tolerancePercent,
      metrics: compared.map(toEventMetric),
      drift: drift.map(toEventMetric),
    }),
  ]);
  await deps.snapshots.save(snapshot, d.historyDays);
  await deps.metrics.flush();
  deps.log.info('inventory published', {
    snapshotId: snapshot.snapshotId,
    metrics: metrics.length,
    drift: drift.map((m) => `${labelKey(m)} ${m.previous} -> ${m.value} (${m.driftPercent}%)`),
  });
  return {
    snapshot,
    metrics: compared,
    drift,
    previousSnapshotId: previous?.snapshotId ?? null,
    oldestUnprocessedKey: oldestKey,
  };
}

/**
 * The snapshot to compare with: the latest, unless the latest is this very run's (a retry after it was
 * stored, same firing time), then the one that run compared with.
 */
async function previousOf(snapshots: SnapshotsPort, snapshotId: string): Promise<Snapshot | null> {
  const latest = await snapshots.latest();
  if (!latest || latest.snapshotId !== snapshotId) return latest;
  return latest.previousSnapshotId ? snapshots.get(latest.previousSnapshotId) : null;
}

const toEventMetric = (m: DriftedMetric) => ({
  name: m.name,
  labels: { ...m.labels },
  value: m.value,
  unit: m.unit,
  previous: m.previous,
  driftPercent: m.driftPercent,
});
