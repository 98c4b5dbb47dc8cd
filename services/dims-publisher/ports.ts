import type { JobStatus } from '../../events/catalog.ts';
import type { MetricUnit } from '../shared/metrics.ts';

/** The small interfaces the dims-publisher core talks through; adapters/ implements them. */

/** One object of a listing page: only what the aggregation needs (keys are never kept across pages). */
export interface ObjectEntry {
  readonly key: string;
  readonly size: number;
  readonly lastModified: Date;
  readonly etag: string;
  /** null when the bucket is unversioned. */
  readonly versionId: string | null;
}

export interface ObjectsPort {
  /** Current objects under a prefix, one page (<= 1000) at a time (ListObjectsV2). */
  pages(prefix: string): AsyncIterable<readonly ObjectEntry[]>;
  /** Latest versions under a prefix with their version ids (ListObjectVersions, IsLatest). */
  latestVersionPages(prefix: string): AsyncIterable<readonly ObjectEntry[]>;
}

export interface InventoryJobsPort {
  /** Jobs with a status (GSI byStatus, Select COUNT, all pages). */
  countByStatus(status: JobStatus): Promise<number>;
  /** Sum of rowsDelivered of jobs with a status updated after a time (GSI byStatus). */
  rowsDeliveredSince(status: JobStatus, updatedAfter: string): Promise<number>;
  /** Statuses of the given jobs that exist. */
  statuses(jobIds: readonly string[]): Promise<ReadonlyMap<string, JobStatus>>;
}

export interface SnapshotMetric {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly unit: MetricUnit;
}

export interface Snapshot {
  readonly snapshotId: string;
  readonly takenAt: string;
  readonly metrics: readonly SnapshotMetric[];
  /** The snapshot this one was compared with (null: the first one). */
  readonly previousSnapshotId?: string | null;
}

export interface SnapshotsPort {
  latest(): Promise<Snapshot | null>;
  /** A stored snapshot by id (the history item), null when it has expired. */
  get(snapshotId: string): Promise<Snapshot | null>;
  /** Stores as latest and in the history (kept `historyDays`). */
  save(snapshot: Snapshot, historyDays: number): Promise<void>;
}
