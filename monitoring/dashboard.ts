import { physicalName, QUEUES, resourceNames, type ServiceName } from '../topology/topology.ts';
import { alarmDefinitions, type RunbookLocation, runbookUrl } from './alarms.ts';
import { METRIC_NAMESPACE } from './metrics.ts';

/**
 * The CloudWatch dashboard of a stage, generated from code: stacks/ puts `dashboardBody(...)` into a
 * CfnDashboard (JSON.stringify it, or use {@link dashboardJson}), tests validate its shape and that
 * every Rowstream metric it shows is in the metric catalog with that service's dimensions.
 *
 * Per-job metrics (JobId dimension) cannot be listed statically, so their widgets use SEARCH
 * expressions scoped to the stage: a new job appears on the dashboard without a redeploy.
 */

export interface DashboardOptions {
  readonly stage: string;
  readonly region: string;
  /** Adds an alarm-status widget (alarm ARNs need the account). */
  readonly accountId?: string;
  /** Draws the monthly budget on the month-to-date cost widget. */
  readonly monthlyBudgetUsd?: number;
  /** Where the runbook links point; default: the copy shipped in the stage's bucket. */
  readonly runbooks?: RunbookLocation;
}

/** One entry of a metric widget's `metrics` array (CloudWatch's own array form). */
export type MetricEntry =
  | readonly [string, string, ...(string | Record<string, unknown>)[]]
  | readonly [Record<string, unknown>];

export interface MetricWidgetProperties {
  readonly title: string;
  readonly region: string;
  readonly view: 'timeSeries' | 'singleValue' | 'bar';
  readonly stacked: boolean;
  readonly period: number;
  readonly stat: string;
  readonly metrics: readonly MetricEntry[];
  readonly yAxis?: {
    readonly left?: { readonly min?: number; readonly max?: number; readonly label?: string };
  };
  readonly annotations?: {
    readonly horizontal: readonly { readonly value: number; readonly label: string }[];
  };
}

export type Widget =
  | {
      readonly type: 'metric';
      readonly x: number;
      readonly y: number;
      readonly width: number;
      readonly height: number;
      readonly properties: MetricWidgetProperties;
    }
  | {
      readonly type: 'text';
      readonly x: number;
      readonly y: number;
      readonly width: number;
      readonly height: number;
      readonly properties: { readonly markdown: string };
    }
  | {
      readonly type: 'alarm';
      readonly x: number;
      readonly y: number;
      readonly width: number;
      readonly height: number;
      readonly properties: { readonly title: string; readonly alarms: readonly string[] };
    };

export interface DashboardBody {
  readonly start: string;
  readonly periodOverride: 'auto' | 'inherit';
  readonly widgets: readonly Widget[];
}

export function dashboardName(stage: string): string {
  return physicalName(stage, 'dashboard');
}

/** Console link to the stage's dashboard, used in alert messages. */
export function dashboardUrl(stage: string, region: string): string {
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards/dashboard/${dashboardName(stage)}`;
}

const GRID_WIDTH = 24;

type Sized<T> = T extends Widget ? Omit<T, 'x' | 'y'> : never;

/** Flows widgets left to right, top to bottom, on CloudWatch's 24-column grid. */
function layout(widgets: readonly Sized<Widget>[]): Widget[] {
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  return widgets.map((w) => {
    if (x + w.width > GRID_WIDTH) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    const placed = { ...w, x, y } as Widget;
    x += w.width;
    rowHeight = Math.max(rowHeight, w.height);
    return placed;
  });
}

export function dashboardBody(options: DashboardOptions): DashboardBody {
  const { stage, region } = options;
  const names = resourceNames(stage);
  const runbookLocation: RunbookLocation = options.runbooks ?? {
    kind: 'bucket',
    bucket: names.bucket,
    region,
  };

  const dims = (service: ServiceName) => ['Service', service, 'Stage', stage] as const;
  const rsMetric = (
    service: ServiceName,
    metric: string,
    extra: Record<string, unknown> = {},
  ): MetricEntry =>
    Object.keys(extra).length > 0
      ? [METRIC_NAMESPACE, metric, ...dims(service), extra]
      : [METRIC_NAMESPACE, metric, ...dims(service)];
  // SEARCH over one extra dimension (JobId, Prefix, Status, Severity), scoped to the service and stage.
  const search = (
    service: ServiceName,
    metric: string,
    extraDimension: string,
    stat: string,
    period: number,
    id: string,
    label?: string,
  ): MetricEntry => [
    {
      id,
      expression: `SEARCH('{${METRIC_NAMESPACE},${extraDimension},Service,Stage} MetricName="${metric}" Service="${service}" Stage="${stage}"', '${stat}', ${period})`,
      ...(label ? { label } : {}),
    },
  ];
  const metric = (
    title: string,
    metrics: readonly MetricEntry[],
    props: Partial<Omit<MetricWidgetProperties, 'title' | 'metrics'>> & { width?: number } = {},
  ): Sized<Widget> => {
    const { width = 8, ...rest } = props;
    return {
      type: 'metric',
      width,
      height: 6,
      properties: {
        title,
        region,
        view: 'timeSeries',
        stacked: false,
        period: 60,
        stat: 'Sum',
        metrics,
        ...rest,
      },
    };
  };

  const dlqs = QUEUES.map((q) =>
    q.maxReceiveCount === null ? names.queues[q.name].name : names.queues[q.name].dlqName,
  ).filter((n): n is string => n !== null);

  const runbooks = [...new Set(alarmDefinitions(stage).map((a) => a.runbook))];
  const header = [
    `# rowstream · ${stage}`,
    'How fast it goes, when it finishes, what it costs, what is wrong. ' +
      'Per-job widgets show every job that reported in the time range (SEARCH on JobId).',
    `Runbooks: ${runbooks.map((a) => `[${a}](${runbookUrl(a, runbookLocation)})`).join(' · ')}`,
  ].join('\n\n');

  const widgets: Sized<Widget>[] = [
    { type: 'text', width: 24, height: 3, properties: { markdown: header } },
    // Throughput and progress
    metric(
      'Throughput (rows/s)',
      [
        search('producer', 'RowsPerSecond', 'JobId', 'Average', 60, 'perjob'),
        [{ id: 'total', expression: 'SUM(perjob)', label: 'All jobs' }],
      ],
      { stat: 'Average' },
    ),
    metric('Progress (%)', [search('producer', 'ProgressPercent', 'JobId', 'Maximum', 60, 'progress')], {
      stat: 'Maximum',
      yAxis: { left: { min: 0, max: 100, label: '%' } },
    }),
    metric(
      'Rows done / total',
      [
        search('cost-tracker', 'JobRowsDone', 'JobId', 'Maximum', 300, 'done', 'done'),
        search('cost-tracker', 'JobRowsTotal', 'JobId', 'Maximum', 300, 'total', 'total'),
      ],
      { stat: 'Maximum', period: 300 },
    ),
    metric('ETA (seconds)', [search('producer', 'EtaSeconds', 'JobId', 'Minimum', 60, 'eta')], {
      stat: 'Minimum',
    }),
    metric(
      'Kafka latency p50 / p99 (ms)',
      [
        search('producer', 'KafkaLatencyMs', 'JobId', 'p50', 60, 'p50', 'p50'),
        search('producer', 'KafkaLatencyMs', 'JobId', 'p99', 60, 'p99', 'p99'),
      ],
      { stat: 'p99' },
    ),
    metric(
      'Running / stalled jobs',
      [rsMetric('cost-tracker', 'RunningJobs'), rsMetric('cost-tracker', 'StalledJobs')],
      { stat: 'Maximum', period: 300 },
    ),
    // What goes wrong
    metric('Errors and retries', [
      rsMetric('producer', 'Errors'),
      rsMetric('producer', 'Retries'),
      rsMetric('planner', 'PlannerErrors'),
      rsMetric('producer', 'MetricsDropped'),
    ]),
    metric(
      'Rejects',
      [
        rsMetric('producer', 'RowsRejected'),
        rsMetric('planner', 'FilesRejected'),
        rsMetric('producer', 'RowsProcessed', { id: 'processed', visible: false }),
        rsMetric('producer', 'Errors', { id: 'errors', visible: false }),
        rsMetric('producer', 'RowsRejected', { id: 'rejected', visible: false }),
        [
          {
            id: 'rate',
            expression: 'IF(processed > 0, 100 * (FILL(errors, 0) + FILL(rejected, 0)) / processed, 0)',
            label: 'Error rate (% of rows)',
            yAxis: 'right',
          },
        ],
      ],
      { period: 300 },
    ),
    metric(
      'DLQ depth (messages)',
      dlqs.map((q) => ['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', q] as MetricEntry),
      { stat: 'Maximum' },
    ),
    // Cost
    metric(
      'Estimated cost per job (USD)',
      [
        search('cost-tracker', 'EstimatedCostUsd', 'JobId', 'Maximum', 300, 'cost', 'USD'),
        search('cost-tracker', 'CostPerMillionRows', 'JobId', 'Maximum', 300, 'permillion', 'USD / 1M rows'),
      ],
      { stat: 'Maximum', period: 300 },
    ),
    metric('Month-to-date cost (USD, lags ~1 day)', [rsMetric('cost-tracker', 'MonthToDateCostUsd')], {
      stat: 'Maximum',
      period: 3600,
      ...(options.monthlyBudgetUsd
        ? { annotations: { horizontal: [{ value: options.monthlyBudgetUsd, label: 'Monthly budget' }] } }
        : {}),
    }),
    metric('Budget used (%)', [rsMetric('cost-tracker', 'BudgetUtilizationPercent')], {
      stat: 'Maximum',
      period: 3600,
      yAxis: { left: { min: 0 } },
      annotations: {
        horizontal: [
          { value: 50, label: '50%' },
          { value: 80, label: '80% warning' },
          { value: 100, label: '100% critical' },
        ],
      },
    }),
    // Inventory (DIMS)
    metric(
      'Inventory: objects per prefix',
      [search('dims-publisher', 'InventoryObjects', 'Prefix', 'Maximum', 21600, 'objects')],
      { stat: 'Maximum', period: 21600 },
    ),
    metric(
      'Inventory: bytes per prefix',
      [search('dims-publisher', 'InventoryBytes', 'Prefix', 'Maximum', 21600, 'bytes')],
      { stat: 'Maximum', period: 21600 },
    ),
    metric(
      'Inventory: jobs per status',
      [search('dims-publisher', 'InventoryJobs', 'Status', 'Maximum', 21600, 'jobs')],
      { stat: 'Maximum', period: 21600 },
    ),
    metric(
      'Inventory: rows delivered (24 h), oldest unprocessed (s), drift (%)',
      [
        rsMetric('dims-publisher', 'InventoryRowsDelivered24h'),
        rsMetric('dims-publisher', 'InventoryOldestUnprocessedSeconds', { yAxis: 'right' }),
        rsMetric('dims-publisher', 'InventoryDriftPercent', { yAxis: 'right' }),
      ],
      { stat: 'Maximum', period: 21600, width: 12 },
    ),
    metric(
      'Alerts routed / suppressed',
      [
        search('alarm-router', 'AlertsRouted', 'Severity', 'Sum', 300, 'routed'),
        rsMetric('alarm-router', 'AlertsSuppressed'),
      ],
      { period: 300, width: 12 },
    ),
    metric(
      'Queue age (oldest message, s)',
      [
        ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', names.queues.planner.name],
        ['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', names.queues.producer.name],
      ],
      { stat: 'Maximum', width: 12 },
    ),
  ];

  if (options.accountId) {
    widgets.push({
      type: 'alarm',
      width: 12,
      height: 6,
      properties: {
        title: 'Alarms',
        alarms: alarmDefinitions(stage).map(
          (a) => `arn:aws:cloudwatch:${region}:${options.accountId}:alarm:${a.name}`,
        ),
      },
    });
  }

  return { start: '-PT6H', periodOverride: 'inherit', widgets: layout(widgets) };
}

/** The body as CloudWatch's PutDashboard / CfnDashboard expects it: a JSON string. */
export function dashboardJson(options: DashboardOptions): string {
  return JSON.stringify(dashboardBody(options));
}
