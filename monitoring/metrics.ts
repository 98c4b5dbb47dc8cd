import type { ServiceName } from '../topology/topology.ts';

/** The CloudWatch namespace of every rowstream metric. */
export const METRIC_NAMESPACE = 'Rowstream' as const;

export type MetricUnit =
  | 'Count'
  | 'Count/Second'
  | 'Bytes'
  | 'Bytes/Second'
  | 'Milliseconds'
  | 'Seconds'
  | 'Percent'
  | 'None';

/**
 * The metric catalog: every metric a service emits, declared once. Services record metrics by these
 * names; the dashboard and the alarms may only name metrics listed here (a test checks both ways).
 *
 * Dimensions: always Service and Stage. `perJob: true` metrics also carry JobId (the number of jobs
 * running at once is bounded by the producer fleet, so the cardinality is bounded); `perSeverity`
 * and `perPrefix`/`perStatus` metrics carry a dimension whose values come from configuration, never
 * from user data.
 */
export interface MetricDef {
  readonly name: string;
  readonly unit: MetricUnit;
  readonly service: ServiceName;
  readonly description: string;
  readonly extraDimensions?: readonly string[];
}

const m = (
  service: ServiceName,
  name: string,
  unit: MetricUnit,
  description: string,
  extraDimensions?: readonly string[],
): MetricDef => ({ service, name, unit, description, ...(extraDimensions ? { extraDimensions } : {}) });

export const METRICS = [
  // planner
  m('planner', 'FilesPlanned', 'Count', 'Objects that became a planned job'),
  m(
    'planner',
    'FilesRejected',
    'Count',
    'Objects rejected before producing (empty, no header, not text, vanished)',
  ),
  m('planner', 'RowsCounted', 'Count', 'Data rows counted by the planner'),
  m('planner', 'CountDurationMs', 'Milliseconds', 'Time to count one object'),
  m('planner', 'CountBytesPerSecond', 'Bytes/Second', 'Row counting throughput'),
  m('planner', 'CacheHits', 'Count', 'Row counts served from the line-count cache'),
  m('planner', 'PlannerErrors', 'Count', 'Messages that failed and went back to the queue'),
  m(
    'planner',
    'DuplicateNotifications',
    'Count',
    'Notifications of an object version already being planned in the same process (shared its plan)',
  ),
  // producer
  m('producer', 'RowsProduced', 'Count', 'Rows acknowledged by Kafka', ['JobId']),
  m('producer', 'RowsPerSecond', 'Count/Second', 'Rows acknowledged per second (smoothed)', ['JobId']),
  m('producer', 'BytesPerSecond', 'Bytes/Second', 'Source bytes per second (smoothed)', ['JobId']),
  m('producer', 'ProgressPercent', 'Percent', 'Rows done / total rows', ['JobId']),
  m('producer', 'EtaSeconds', 'Seconds', 'Estimated seconds to completion from the smoothed rate', ['JobId']),
  m('producer', 'KafkaLatencyMs', 'Milliseconds', 'Batch send-to-ack latency (p50/p99 via EMF values)', [
    'JobId',
  ]),
  m('producer', 'Errors', 'Count', 'Errors on the data path (failed sends, failed reads)'),
  m('producer', 'Retries', 'Count', 'Retried Kafka sends or S3 reads'),
  m('producer', 'Checkpoints', 'Count', 'Checkpoints written'),
  m('producer', 'RowsRejected', 'Count', 'Bad rows written to the rejects object'),
  m(
    'producer',
    'RowsProcessed',
    'Count',
    'Rows read (delivered + rejected), the denominator of the error rate',
  ),
  m('producer', 'JobsCompleted', 'Count', 'Jobs that reached COMPLETED or COMPLETED_WITH_REJECTS'),
  m('producer', 'JobsFailed', 'Count', 'Jobs that reached FAILED'),
  m(
    'producer',
    'MetricsDropped',
    'Count',
    'Metric points dropped because the buffer was full or the sink failing',
  ),
  // alarm-router
  m('alarm-router', 'AlertsRouted', 'Count', 'Alerts published to an SNS topic', ['Severity']),
  m('alarm-router', 'AlertsSuppressed', 'Count', 'Alerts suppressed (duplicates, flapping)'),
  // cost-tracker
  m(
    'cost-tracker',
    'EstimatedCostUsd',
    'None',
    'Estimated cost of a job so far, from configured unit prices',
    ['JobId'],
  ),
  m('cost-tracker', 'CostPerMillionRows', 'None', 'Estimated cost per million rows of a job', ['JobId']),
  m(
    'cost-tracker',
    'RunningJobs',
    'Count',
    'Jobs in RUNNING (jobs GSI byStatus), counted every run of the cost tracker',
  ),
  m(
    'cost-tracker',
    'StalledJobs',
    'Count',
    'RUNNING jobs whose checkpoint has not moved for the stall window (alarm job-stalled)',
  ),
  m(
    'cost-tracker',
    'JobRowsDone',
    'Count',
    'Rows done (delivered + rejected) of a job, from its checkpoint',
    ['JobId'],
  ),
  m('cost-tracker', 'JobRowsTotal', 'Count', 'Total data rows of a job, from its job record', ['JobId']),
  m(
    'cost-tracker',
    'MonthToDateCostUsd',
    'None',
    'Month-to-date cost from Cost Explorer, filtered by the app tag (lags about a day)',
  ),
  m(
    'cost-tracker',
    'BudgetUtilizationPercent',
    'Percent',
    'Month-to-date cost / monthly budget (lags about a day)',
  ),
  // dims-publisher
  m('dims-publisher', 'InventoryObjects', 'Count', 'Objects under a prefix', ['Prefix']),
  m('dims-publisher', 'InventoryBytes', 'Bytes', 'Bytes under a prefix', ['Prefix']),
  m('dims-publisher', 'InventoryJobs', 'Count', 'Jobs per status', ['Status']),
  m(
    'dims-publisher',
    'InventoryRowsDelivered24h',
    'Count',
    'Rows delivered by jobs completed in the last 24 h',
  ),
  m(
    'dims-publisher',
    'InventoryOldestUnprocessedSeconds',
    'Seconds',
    'Age of the oldest inbound object without a finished job',
  ),
  m('dims-publisher', 'InventoryDriftPercent', 'Percent', 'Largest drift against the previous snapshot'),
] as const satisfies readonly MetricDef[];

export type MetricName = (typeof METRICS)[number]['name'];

export function metricDef(name: string): MetricDef | undefined {
  return METRICS.find((d) => d.name === name);
}
