import { z } from 'zod';
import {
  JobOptions,
  JobSchema,
  type JobStartedEvent,
  JobStatus,
  KafkaRange,
  PlanRef,
  Position,
} from '../../events/catalog.ts';

/**
 * The job record in the jobs table: the one shape every service reads and writes. Transitions are
 * conditional writes owned by the service that makes them (planner: PLANNED/REJECTED; producer:
 * RUNNING, COMPLETED, FAILED, lease and checkpoint; cost-tracker: cost fields).
 *
 * GSI `byStatus` (status, updatedAt) serves the cost tracker, DIMS and status views without scans.
 */
/**
 * Where a job's records go, chosen by the producer once when the job starts and recorded before its
 * first record is sent (docs/producer.md, "Partitions"): un-keyed records all on `partition`; keyed
 * records on the Java client's murmur2 partition of the key modulo `partitions`, the topic's partition
 * count at job start. Kept for the whole job, so partitions added mid-job move nothing.
 */
export const JobPlacement = z.object({
  partitions: z.number().int().positive(),
  partition: z.number().int().nonnegative(),
  keyed: z.boolean(),
});
export type JobPlacement = z.infer<typeof JobPlacement>;

export const JobCheckpoint = z.object({
  /** Data rows handled (delivered + rejected) up to and including row `rowsDone`. */
  rowsDone: z.number().int().nonnegative(),
  rowsDelivered: z.number().int().nonnegative(),
  rowsRejected: z.number().int().nonnegative(),
  /** Byte offset in the object where row `rowsDone + 1` starts. */
  nextByteOffset: z.number().int().nonnegative(),
  /** Last Kafka offset acknowledged per partition (strings: int64). */
  partitions: z.array(KafkaRange),
  /** The job's placement (absent in checkpoints written before placements were recorded). */
  placement: JobPlacement.optional(),
  updatedAt: z.string(),
});
export type JobCheckpoint = z.infer<typeof JobCheckpoint>;

/**
 * Where the source object went when the stage moves finished objects (ROWSTREAM_SOURCE_FATE=move,
 * services/shared/source-fate.ts): the copy's key and version, and the location it was copied from
 * (deleted after this is recorded). Every reader of the object (a resume, a replayed JobStarted, the
 * producer after a crash) reads `key`@`versionId` instead of the job's original key and version.
 */
export const MovedSource = z.object({
  key: z.string(),
  versionId: z.string(),
  outcome: z.enum(['COMPLETED', 'FAILED', 'REJECTED']),
  from: z.object({ key: z.string(), versionId: z.string() }),
  movedAt: z.string(),
});
export type MovedSource = z.infer<typeof MovedSource>;

export const JobRecord = z.object({
  jobId: z.string(),
  status: JobStatus,
  createdAt: z.string(),
  updatedAt: z.string(),
  bucket: z.string(),
  key: z.string(),
  etag: z.string().nullable(),
  versionId: z.string().nullable(),
  sourceUri: z.string(),
  size: z.number().int().nonnegative(),
  contentType: z.string().nullable().optional(),
  header: z.array(z.string()).optional(),
  /** Byte offset of the first data row (after BOM and header). */
  dataOffset: z.number().int().nonnegative().optional(),
  totalRows: z.number().int().nonnegative().optional(),
  topic: z.string().optional(),
  options: JobOptions.optional(),
  /**
   * The job's schema with its full definition (JobStarted leaves a large one out), or, when the plan is
   * referenced (planRef), without it: the definition is in the plan object.
   */
  schema: JobSchema.optional(),
  /** Set instead of `header` when the plan is too large for the item: read it from S3 (shared/plan.ts). */
  planRef: PlanRef.optional(),
  /** Outbox flag: JobStarted.v1 went out. A re-delivered notification re-publishes while this is false. */
  startedEventPublished: z.boolean().optional(),
  rejection: z.object({ reason: z.string(), message: z.string(), position: Position.optional() }).optional(),
  leaseOwner: z.string().optional(),
  /** Epoch milliseconds. */
  leaseExpiresAt: z.number().optional(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  checkpoint: JobCheckpoint.optional(),
  rowsDelivered: z.number().int().nonnegative().optional(),
  rowsRejected: z.number().int().nonnegative().optional(),
  rejectsUri: z.string().nullable().optional(),
  partitions: z.array(KafkaRange).optional(),
  failure: z.object({ reason: z.string(), message: z.string(), position: Position.optional() }).optional(),
  /** The failure a resume cleared (null when there was none). */
  lastFailure: z
    .object({ reason: z.string(), message: z.string(), position: Position.optional() })
    .nullable()
    .optional(),
  /** Smoothed rows/s and ETA at the last checkpoint, for status views. */
  rowsPerSecond: z.number().nonnegative().optional(),
  etaSeconds: z.number().nonnegative().nullable().optional(),
  estimatedCostUsd: z.number().nonnegative().optional(),
  finalCostUsd: z.number().nonnegative().optional(),
  /** How many times a producer took the job since it was planned or last resumed (1 = never taken over). */
  attempts: z.number().int().nonnegative().optional(),
  /** How many times the job was resumed after FAILED (`rowstream resume`, a replayed JobStarted). */
  resumes: z.number().int().nonnegative().optional(),
  /** Set when a producer re-created a lost record from the JobStarted and the job's rows in Kafka. */
  recoveredFrom: z.literal('kafka').optional(),
  /** Set once the source object was moved to processed/ or failed/ (absent: it is where `key` says). */
  movedTo: MovedSource.optional(),
});
export type JobRecord = z.infer<typeof JobRecord>;

/** Where a job's source object is now: its moved copy, or the version the planner saw. */
export function sourceLocation(r: {
  readonly key: string;
  readonly versionId: string | null;
  readonly movedTo?: MovedSource | undefined;
}): { key: string; versionId: string | null } {
  return r.movedTo
    ? { key: r.movedTo.key, versionId: r.movedTo.versionId }
    : { key: r.key, versionId: r.versionId };
}

export const TERMINAL_STATUSES: readonly JobStatus[] = [
  'COMPLETED',
  'COMPLETED_WITH_REJECTS',
  'FAILED',
  'REJECTED',
];

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL_STATUSES.includes(status);
}

/**
 * The job record a JobStarted describes: the planner's plan (object, header, totals, topic, options)
 * with `status`, created when the event occurred and updated at `updatedAt`.
 */
export function recordFromJobStarted(job: JobStartedEvent, status: JobStatus, updatedAt: string): JobRecord {
  return {
    jobId: job.jobId,
    status,
    createdAt: job.occurredAt,
    updatedAt,
    bucket: job.bucket,
    key: job.key,
    etag: job.etag,
    versionId: job.versionId,
    sourceUri: job.sourceUri,
    size: job.size,
    dataOffset: job.dataOffset,
    totalRows: job.totalRows,
    topic: job.topic,
    options: job.options,
    // A referenced plan stays referenced: the record never takes the large header or definition inline.
    ...(job.planRef ? { planRef: job.planRef } : { header: job.header }),
    ...(job.schema ? { schema: job.planRef ? withoutDefinition(job.schema) : job.schema } : {}),
  };
}

/** The schema without its definition (kept in the plan object when the plan is referenced). */
export function withoutDefinition(schema: JobSchema): JobSchema {
  const { definition: _inPlan, ...rest } = schema;
  return rest;
}
