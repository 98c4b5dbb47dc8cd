import { z } from 'zod';

/**
 * The rowstream event catalog: one zod schema per event version. TypeScript types are inferred.
 *
 * Rules (see shared/DESIGN.md): `source` = `rowstream.<service>`, `detail-type` = `<Name>.v<major>`.
 * Every detail carries `eventId` (stable: the same fact always gets the same id, so consumers are
 * idempotent on it), `occurredAt`, and `jobId` where a job is concerned. Within a major version fields
 * are only ever added, and only as optional; the JSON Schema snapshot test fails on anything else.
 */

const isoTime = z.iso.datetime({ offset: true });
const nonEmpty = z.string().min(1);

const base = {
  eventId: nonEmpty.describe('Stable id of the fact; consumers de-duplicate on it'),
  occurredAt: isoTime.describe('When the fact happened (ISO 8601)'),
};

export const JOB_STATUSES = [
  'PLANNED',
  'RUNNING',
  'COMPLETED',
  'COMPLETED_WITH_REJECTS',
  'FAILED',
  'REJECTED',
] as const;
export const JobStatus = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;

export const RecordFormat = z.enum(['json', 'csv', 'avro']);
export type RecordFormat = z.infer<typeof RecordFormat>;

/**
 * Record format (lineage headers): `compact` job and row on every record, source and offset on each
 * record batch's last; `full` all four on every record; `batch` all four on each batch's last only.
 */
export const RecordHeaders = z.enum(['compact', 'full', 'batch']);
export type RecordHeaders = z.infer<typeof RecordHeaders>;

export const JobOptions = z.object({
  format: RecordFormat.describe(
    'json: header -> field object (typed when the job has a schema); csv: the raw CSV record text; avro: Avro binary in the Glue Schema Registry wire format',
  ),
  keyColumn: nonEmpty.nullable().describe('Column whose value becomes the Kafka key; null = no key'),
  delimiter: z.string().length(1).default(','),
  failOnBadRow: z
    .boolean()
    .default(false)
    .describe('Fail the job at the first bad row instead of rejecting it'),
  recordHeaders: RecordHeaders.optional().describe(
    'Which lineage headers each record carries (docs/producer.md "Record format"); absent: the producer\'s ROWSTREAM_PRODUCER_RECORD_HEADERS',
  ),
});
export type JobOptions = z.infer<typeof JobOptions>;

const objectRef = {
  bucket: nonEmpty,
  key: nonEmpty,
  etag: nonEmpty.describe('ETag without quotes'),
  versionId: z.string().nullable().describe('S3 version id, null when the bucket is unversioned'),
};

/** The job's schema: an Avro record schema, by value and, when registered, by registry reference. */
export const JobSchema = z.object({
  source: z
    .enum(['inferred', 'registry', 'given'])
    .describe(
      "inferred from a sample of the file; the registry's newest version for the topic; named by the uploader or the stage",
    ),
  registry: z.string().nullable().describe('Glue Schema Registry name; null when not registered'),
  schemaName: z.string().nullable().describe('Schema name in the registry, e.g. <topic>-value'),
  version: z.number().int().positive().nullable(),
  versionId: z
    .string()
    .nullable()
    .describe('Schema version id (UUID) written in every Avro record; look the schema up by it'),
  definition: z
    .string()
    .optional()
    .describe(
      'The Avro schema (JSON text); left out when large: then read it from the job record or by versionId',
    ),
});
export type JobSchema = z.infer<typeof JobSchema>;

/**
 * Where a job's plan (header and schema definition) is kept when it is too large to travel inline: an
 * object in the job's own bucket, checked by its SHA-256 before use (docs/planner.md, "Large plans").
 */
export const PlanRef = z.object({
  key: nonEmpty.describe("Key of the plan object in the job's bucket: plans/<jobId>.json"),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .describe('SHA-256 of the plan object (hex); a plan that does not match is not used'),
  bytes: z.number().int().positive().describe('Size of the plan object'),
  columns: z.number().int().positive().describe('Columns in the header'),
});
export type PlanRef = z.infer<typeof PlanRef>;

export const JobStartedV1 = z
  .object({
    ...base,
    jobId: nonEmpty,
    ...objectRef,
    sourceUri: nonEmpty.describe('s3://bucket/key'),
    size: z.number().int().nonnegative().describe('Object size in bytes'),
    totalRows: z.number().int().nonnegative().describe('Data rows (records after the header)'),
    header: z
      .array(z.string())
      .min(1)
      .optional()
      .describe('The header; absent exactly when planRef is present (a large plan kept in S3)'),
    dataOffset: z.number().int().nonnegative().describe('Byte offset where the first data row starts'),
    topic: nonEmpty,
    options: JobOptions,
    schema: JobSchema.optional().describe('Absent: no schema in force (values are the CSV strings)'),
    planRef: PlanRef.optional().describe(
      'Present when the plan (header and schema definition) is too large to travel inline: read it from S3',
    ),
  })
  .refine((d) => (d.header === undefined) !== (d.planRef === undefined), {
    message: 'exactly one of header and planRef',
    path: ['header'],
  });

export const RejectionReason = z.enum([
  'EMPTY_OBJECT',
  'NO_HEADER',
  'NOT_TEXT',
  'OBJECT_NOT_FOUND',
  'NOT_CSV',
  'BAD_HEADER',
  'BAD_OPTIONS',
  'UNREADABLE',
  'BAD_SCHEMA',
  'SCHEMA_INCOMPATIBLE',
]);
export type RejectionReason = z.infer<typeof RejectionReason>;

export const Position = z.object({
  row: z.number().int().nonnegative().optional().describe('1-based data row; 0 = the header'),
  byte: z.number().int().nonnegative().optional().describe('Byte offset in the object'),
});

export const JobRejectedV1 = z.object({
  ...base,
  jobId: nonEmpty,
  bucket: nonEmpty,
  key: nonEmpty,
  etag: z.string().nullable(),
  versionId: z.string().nullable(),
  reason: RejectionReason,
  message: nonEmpty.describe('What a person should know, with the position'),
  position: Position.optional(),
});

export const JobProgressV1 = z.object({
  ...base,
  jobId: nonEmpty,
  rowsDone: z.number().int().nonnegative(),
  rowsRejected: z.number().int().nonnegative(),
  totalRows: z.number().int().nonnegative(),
  bytesDone: z.number().int().nonnegative(),
  size: z.number().int().nonnegative(),
  percent: z.number().min(0).max(100),
  rowsPerSecond: z.number().nonnegative(),
  etaSeconds: z.number().nonnegative().nullable(),
});

export const KafkaRange = z.object({
  partition: z.number().int().nonnegative(),
  firstOffset: z.string().nullable().describe('First offset written by this job (string: int64)'),
  lastOffset: z.string().nullable(),
});

export const JobCompletedV1 = z.object({
  ...base,
  jobId: nonEmpty,
  bucket: nonEmpty,
  key: nonEmpty,
  status: z.enum(['COMPLETED', 'COMPLETED_WITH_REJECTS']),
  rowsDelivered: z.number().int().nonnegative(),
  rowsRejected: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  durationMs: z.number().int().nonnegative(),
  topic: nonEmpty,
  partitions: z.array(KafkaRange),
  rejectsUri: z.string().nullable(),
});

export const Checkpoint = z.object({
  rowsDone: z.number().int().nonnegative(),
  nextByteOffset: z.number().int().nonnegative(),
});

export const JobFailedV1 = z.object({
  ...base,
  jobId: nonEmpty,
  bucket: nonEmpty,
  key: nonEmpty,
  reason: nonEmpty.describe('Machine-readable cause, e.g. KAFKA_RETRIES_EXHAUSTED, BAD_ROW'),
  message: nonEmpty,
  position: Position.optional(),
  checkpoint: Checkpoint.nullable(),
});

export const Severity = z.enum(['critical', 'warning', 'info']);
export type Severity = z.infer<typeof Severity>;

export const AlertRoutedV1 = z.object({
  ...base,
  jobId: z.string().optional(),
  sourceEventId: nonEmpty,
  sourceDetailType: nonEmpty,
  severity: Severity,
  kind: z.enum(['ALERT', 'RESOLVED']),
  subject: z.string().min(1).max(99),
  alarmName: z.string().optional(),
  topicArn: nonEmpty,
  messageId: z.string().optional(),
});

export const CostEstimatedV1 = z.object({
  ...base,
  jobId: nonEmpty,
  estimatedCostUsd: z.number().nonnegative(),
  rowsDone: z.number().int().nonnegative(),
  costPerMillionRows: z.number().nonnegative().nullable(),
  final: z.boolean(),
});

export const BudgetThresholdCrossedV1 = z.object({
  ...base,
  month: z.string().regex(/^\d{4}-\d{2}$/),
  thresholdPercent: z.number().int().positive(),
  monthToDateCostUsd: z.number().nonnegative(),
  budgetUsd: z.number().positive(),
  utilizationPercent: z.number().nonnegative(),
});

export const InventoryMetric = z.object({
  name: nonEmpty,
  labels: z.record(z.string(), z.string()),
  value: z.number(),
  unit: z.string(),
  previous: z.number().nullable(),
  driftPercent: z.number().nullable(),
});

export const InventoryPublishedV1 = z.object({
  ...base,
  snapshotId: nonEmpty,
  tolerancePercent: z.number().nonnegative(),
  metrics: z.array(InventoryMetric),
  drift: z
    .array(InventoryMetric)
    .describe('Metrics whose change against the previous snapshot exceeds the tolerance'),
});

/** Every event version: detail-type -> { source, schema }. */
export const CATALOG = {
  'JobStarted.v1': { source: 'rowstream.planner', schema: JobStartedV1 },
  'JobRejected.v1': { source: 'rowstream.planner', schema: JobRejectedV1 },
  'JobProgress.v1': { source: 'rowstream.producer', schema: JobProgressV1 },
  'JobCompleted.v1': { source: 'rowstream.producer', schema: JobCompletedV1 },
  'JobFailed.v1': { source: 'rowstream.producer', schema: JobFailedV1 },
  'AlertRouted.v1': { source: 'rowstream.alarm-router', schema: AlertRoutedV1 },
  'CostEstimated.v1': { source: 'rowstream.cost-tracker', schema: CostEstimatedV1 },
  'BudgetThresholdCrossed.v1': { source: 'rowstream.cost-tracker', schema: BudgetThresholdCrossedV1 },
  'InventoryPublished.v1': { source: 'rowstream.dims-publisher', schema: InventoryPublishedV1 },
} as const;

export type DetailType = keyof typeof CATALOG;
export const DETAIL_TYPES = Object.keys(CATALOG) as DetailType[];

/** The detail of one event version, e.g. `Detail<'JobStarted.v1'>`. */
export type Detail<T extends DetailType> = z.infer<(typeof CATALOG)[T]['schema']>;
/** What a producer passes in (defaults not yet applied). */
export type DetailInput<T extends DetailType> = z.input<(typeof CATALOG)[T]['schema']>;

/** JobStarted.v1 as it travels: the header inline, or a planRef to read it from. */
export type JobStartedEvent = Detail<'JobStarted.v1'>;
/**
 * A JobStarted whose plan is at hand (inline, or read from its planRef): what the producer's core runs.
 * A referenced plan keeps its planRef, so records written from it stay small.
 */
export type JobStarted = Omit<JobStartedEvent, 'header'> & { header: string[] };
export type JobRejected = Detail<'JobRejected.v1'>;
export type JobProgress = Detail<'JobProgress.v1'>;
export type JobCompleted = Detail<'JobCompleted.v1'>;
export type JobFailed = Detail<'JobFailed.v1'>;
export type AlertRouted = Detail<'AlertRouted.v1'>;
export type CostEstimated = Detail<'CostEstimated.v1'>;
export type BudgetThresholdCrossed = Detail<'BudgetThresholdCrossed.v1'>;
export type InventoryPublished = Detail<'InventoryPublished.v1'>;

/** A rowstream event as consumers see it: a discriminated union on `detailType`. */
export type RowstreamEvent = {
  [K in DetailType]: {
    readonly kind: 'rowstream';
    readonly id: string;
    readonly detailType: K;
    readonly source: (typeof CATALOG)[K]['source'];
    readonly time: string;
    readonly replayName: string | null;
    readonly detail: Detail<K>;
  };
}[DetailType];
