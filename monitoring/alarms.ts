import type { Severity } from '../events/catalog.ts';
import {
  APP,
  dlqSuffix,
  physicalName,
  QUEUES,
  type QueueName,
  resourceNames,
  type ServiceName,
  type TopicName,
} from '../topology/topology.ts';
import { METRIC_NAMESPACE } from './metrics.ts';

/**
 * The alarms of a stage, as data. stacks/ turns each definition into a CloudWatch alarm (CDK), the
 * alarm-router looks alarms up here by name to pick a severity and a runbook, and tests check that
 * every alarm names catalog metrics, a topic and a runbook section that exists in docs/runbooks.md.
 *
 * Names encode the severity (`rowstream-<stage>-<severity>-<suffix>`), so a person reading an alarm
 * list or an SNS subject sees how urgent it is, and the router can classify an alarm it does not
 * know (e.g. one added in the console) by the same convention.
 */

export type Comparison =
  | 'GreaterThanThreshold'
  | 'GreaterThanOrEqualToThreshold'
  | 'LessThanThreshold'
  | 'LessThanOrEqualToThreshold';

export type TreatMissingData = 'breaching' | 'notBreaching' | 'ignore' | 'missing';

/**
 * How a state change reaches people.
 * - `router`: the alarm has no actions; its state change reaches the alarm-router through the
 *   default-bus rule `alarm-state`, which de-duplicates, suppresses flapping and formats the message.
 * - `direct`: the alarm's actions publish to its topic directly (ALARM and OK), because it watches
 *   the routing path itself (a router that is down cannot report that it is down); the router skips
 *   these alarms so nobody gets the same incident twice.
 * - `silent`: no notification from the alarm; the same fact is announced once by an event
 *   (BudgetThresholdCrossed.v1, routed by the alarm-router), the alarm gives the console and the
 *   dashboard their state.
 */
export type AlarmDelivery = 'router' | 'direct' | 'silent';

export interface MetricRef {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, string>>;
  /** CloudWatch statistic: Sum, Maximum, Average, p99... */
  readonly statistic: string;
  readonly periodSeconds: number;
}

export type AlarmSource =
  | { readonly kind: 'metric'; readonly metric: MetricRef }
  | {
      readonly kind: 'math';
      /** CloudWatch metric-math expression over the ids of `metrics` (ids start with a lowercase letter). */
      readonly expression: string;
      readonly label: string;
      readonly periodSeconds: number;
      readonly metrics: Readonly<Record<string, MetricRef>>;
    };

export interface AlarmDef {
  /** Stable logical id (CDK construct id, test names): `producer-error-rate`, `dlq-planner`... */
  readonly id: string;
  /** Physical alarm name: `rowstream-<stage>-<severity>-<id>`. */
  readonly name: string;
  readonly severity: Severity;
  readonly topic: TopicName;
  readonly delivery: AlarmDelivery;
  /**
   * The service the alarm is about (SNS message attribute `service`); `eventbridge` for rule delivery,
   * `sns` for delivery from the alert topics to their subscriptions.
   */
  readonly service: ServiceName | 'eventbridge' | 'sns';
  /** One line for a person, used in SNS subjects. */
  readonly title: string;
  /** AlarmDescription: what it means and where the runbook is. */
  readonly description: string;
  /** Anchor of the runbook section in docs/runbooks.md (without `#`). */
  readonly runbook: string;
  readonly source: AlarmSource;
  readonly threshold: number;
  readonly comparison: Comparison;
  readonly evaluationPeriods: number;
  readonly datapointsToAlarm: number;
  readonly treatMissingData: TreatMissingData;
  /** What the threshold is measured in, for messages ("percent", "messages", "seconds"...). */
  readonly unit: string;
}

/** Where runbooks live, relative to the repository root. */
export const RUNBOOK_PATH = 'docs/runbooks.md' as const;

/** Where a deployment ships its runbooks in the stage's bucket (the local provisioner and stacks/ upload them). */
export const RUNBOOKS_KEY = 'runbooks/runbooks.md' as const;

/**
 * Where people read the runbooks of a deployment: a configured page (`ROWSTREAM_RUNBOOK_URL`, e.g. a wiki
 * or the repository's docs/runbooks.md at the deployed tag), or the copy shipped with the deployment in
 * the stage's bucket. No guessed public URL: a link must resolve for the people who get the alert.
 */
export type RunbookLocation =
  | { readonly kind: 'url'; readonly url: string }
  | {
      readonly kind: 'bucket';
      readonly bucket: string;
      readonly region?: string | undefined;
      /** The emulator endpoint (local stack): the object is served from there. */
      readonly endpoint?: string | null | undefined;
    };

/**
 * The link to one runbook section. Configured page: `<url>#<anchor>`. Bucket copy: on an emulator its
 * object URL, on AWS the S3 console page of the object (operators who get alerts have console access,
 * the bucket is private), without a region the `s3://` URI.
 */
export function runbookUrl(anchor: string, where: RunbookLocation): string {
  if (where.kind === 'url') return `${where.url.replace(/#.*$/, '')}#${anchor}`;
  if (where.endpoint)
    return `${where.endpoint.replace(/\/+$/, '')}/${where.bucket}/${RUNBOOKS_KEY}#${anchor}`;
  if (where.region) {
    return `https://s3.console.aws.amazon.com/s3/object/${where.bucket}?region=${where.region}&bucketType=general&prefix=${RUNBOOKS_KEY}`;
  }
  return `s3://${where.bucket}/${RUNBOOKS_KEY}#${anchor}`;
}

/** Physical name of a Lambda-style service's function, so alarms on AWS/Lambda metrics can name it. */
export function functionName(stage: string, service: ServiceName): string {
  return physicalName(stage, service);
}

/** Physical name of an alarm: the severity is part of it (see the module comment). */
export function alarmName(stage: string, severity: Severity, id: string): string {
  return physicalName(stage, `${severity}-${id}`);
}

/** Settings the alarms depend on; defaults are the documented ones. */
export interface AlarmOptions {
  /** Producer error rate, percent of rows read. */
  readonly errorRatePercent?: number;
  /** Oldest message age on the planner queue before a warning, seconds. */
  readonly plannerQueueAgeSeconds?: number;
  /**
   * Oldest message age on the producer queue, seconds. The producer keeps a JobStarted message
   * invisible while it works on the job, so the threshold must exceed the longest expected job.
   */
  readonly producerQueueAgeSeconds?: number;
  /** Where runbook links point (descriptions); default: the copy shipped in the stage's bucket. */
  readonly runbooks?: RunbookLocation;
}

const SQS_NAMESPACE = 'AWS/SQS';
const LAMBDA_NAMESPACE = 'AWS/Lambda';

const rs = (
  stage: string,
  service: ServiceName,
  metricName: string,
  statistic: string,
  periodSeconds: number,
  extra: Record<string, string> = {},
): MetricRef => ({
  namespace: METRIC_NAMESPACE,
  metricName,
  dimensions: { Service: service, Stage: stage, ...extra },
  statistic,
  periodSeconds,
});

const sqs = (queueName: string, metricName: string, statistic: string, periodSeconds: number): MetricRef => ({
  namespace: SQS_NAMESPACE,
  metricName,
  dimensions: { QueueName: queueName },
  statistic,
  periodSeconds,
});

type Draft = Omit<AlarmDef, 'name' | 'topic' | 'description' | 'datapointsToAlarm'> & {
  readonly datapointsToAlarm?: number;
  readonly meaning: string;
};

/**
 * Every alarm of a stage, fully resolved (physical names, dimensions with the stage). Pure: the same
 * stage and options always give the same list, in the same order.
 */
export function alarmDefinitions(stage: string, options: AlarmOptions = {}): readonly AlarmDef[] {
  const names = resourceNames(stage);
  const errorRate = options.errorRatePercent ?? 5;
  const drafts: Draft[] = [
    {
      id: 'producer-error-rate',
      service: 'producer',
      severity: 'critical',
      delivery: 'router',
      title: `Producer error rate above ${errorRate}% of rows`,
      meaning:
        'Rows rejected plus data-path errors, as a percentage of rows read by the producer, over 5 minutes.',
      runbook: 'producer-error-rate',
      source: {
        kind: 'math',
        // Rejected rows count as errors here: a file with more than 5% bad rows needs a person as much
        // as a flaky broker does. With no row read, errors alone decide: a total Kafka outage reads no
        // rows but fails every send, and must trip (100); an idle producer stays at 0.
        expression: PRODUCER_ERROR_RATE_EXPRESSION,
        label: 'Error rate (% of rows)',
        periodSeconds: 300,
        metrics: {
          errors: rs(stage, 'producer', 'Errors', 'Sum', 300),
          rejected: rs(stage, 'producer', 'RowsRejected', 'Sum', 300),
          processed: rs(stage, 'producer', 'RowsProcessed', 'Sum', 300),
        },
      },
      threshold: errorRate,
      comparison: 'GreaterThanThreshold',
      evaluationPeriods: 1,
      treatMissingData: 'notBreaching',
      unit: 'percent',
    },
    {
      id: 'job-stalled',
      service: 'producer',
      severity: 'critical',
      delivery: 'router',
      title: 'A RUNNING job made no progress',
      meaning:
        'RUNNING jobs whose checkpoint has not moved for the stall window (ROWSTREAM_STALL_MINUTES, default 15), ' +
        'counted by the cost-tracker every 5 minutes from the jobs table (GSI byStatus).',
      runbook: 'job-stalled',
      source: { kind: 'metric', metric: rs(stage, 'cost-tracker', 'StalledJobs', 'Maximum', 300) },
      threshold: 0,
      comparison: 'GreaterThanThreshold',
      evaluationPeriods: 1,
      treatMissingData: 'notBreaching',
      unit: 'jobs',
    },
    ...QUEUES.map((q): Draft => {
      const dlqName = q.maxReceiveCount === null ? names.queues[q.name].name : names.queues[q.name].dlqName;
      const watchesRouting = q.name === 'alarmRouter' || q.name === 'ruleTargets';
      return {
        id: q.maxReceiveCount === null ? `dlq-${q.suffix.replace(/-dlq$/, '')}` : `dlq-${q.suffix}`,
        service: q.consumer ?? (q.name === 'alertDelivery' ? 'sns' : 'eventbridge'),
        // alertDelivery: a dead-lettered alert means a subscription endpoint is broken, and a critical
        // topic's pager is the endpoint whose failure matters most: the warning topic reaches other
        // people through other endpoints. Routed, not direct: the router works (SNS accepted its
        // publish). No loop: this alarm's own alert failing on the same endpoint adds a dead letter to
        // a DLQ already in ALARM, which is no state change, so nothing is published again; only an
        // emptied DLQ (OK) re-arms it, and the router's flap window absorbs an ALARM right after.
        severity: q.name === 'alertDelivery' ? 'warning' : 'critical',
        // Messages in the router's own DLQ or in the rule-target DLQ may be alerts that never got out.
        delivery: watchesRouting ? 'direct' : 'router',
        title: `Messages in DLQ ${q.maxReceiveCount === null ? q.suffix : dlqSuffix(q)}`,
        meaning:
          q.name === 'alertDelivery'
            ? `At least one alert in ${dlqName}: SNS gave up delivering it to a subscription whose ` +
              'RedrivePolicy names this queue, so someone did not get an alert. The other subscriptions got it.'
            : `At least one message in ${dlqName ?? q.suffix}: ${q.description} that failed ${
                q.maxReceiveCount ?? 'delivery'
              }${q.maxReceiveCount === null ? '' : ' times'} and is no longer retried.`,
        runbook: dlqRunbook(q.name),
        source: {
          kind: 'metric',
          metric: sqs(dlqName ?? '', 'ApproximateNumberOfMessagesVisible', 'Maximum', 60),
        },
        threshold: 0,
        comparison: 'GreaterThanThreshold',
        evaluationPeriods: 1,
        treatMissingData: 'notBreaching',
        unit: 'messages',
      };
    }),
    {
      id: 'planner-queue-age',
      service: 'planner',
      severity: 'warning',
      delivery: 'router',
      title: 'Planner queue is falling behind',
      meaning: 'The oldest S3 notification waiting for the planner is older than the threshold.',
      runbook: 'queue-age',
      source: {
        kind: 'metric',
        metric: sqs(names.queues.planner.name, 'ApproximateAgeOfOldestMessage', 'Maximum', 60),
      },
      threshold: options.plannerQueueAgeSeconds ?? 600,
      comparison: 'GreaterThanThreshold',
      evaluationPeriods: 5,
      datapointsToAlarm: 5,
      treatMissingData: 'notBreaching',
      unit: 'seconds',
    },
    {
      id: 'producer-queue-age',
      service: 'producer',
      severity: 'warning',
      delivery: 'router',
      title: 'Producer queue is falling behind',
      meaning:
        'The oldest JobStarted waiting for (or held by) a producer is older than the threshold: ' +
        'too few producer tasks, or a job far longer than expected.',
      runbook: 'queue-age',
      source: {
        kind: 'metric',
        metric: sqs(names.queues.producer.name, 'ApproximateAgeOfOldestMessage', 'Maximum', 60),
      },
      threshold: options.producerQueueAgeSeconds ?? 3600,
      comparison: 'GreaterThanThreshold',
      evaluationPeriods: 5,
      datapointsToAlarm: 5,
      treatMissingData: 'notBreaching',
      unit: 'seconds',
    },
    {
      id: 'rows-rejected',
      service: 'producer',
      severity: 'warning',
      delivery: 'router',
      title: 'Rows were rejected',
      meaning: 'The producer wrote bad rows to a rejects object under rejected/ in the last 5 minutes.',
      runbook: 'rows-rejected',
      source: { kind: 'metric', metric: rs(stage, 'producer', 'RowsRejected', 'Sum', 300) },
      threshold: 0,
      comparison: 'GreaterThanThreshold',
      evaluationPeriods: 1,
      treatMissingData: 'notBreaching',
      unit: 'rows',
    },
    {
      id: 'budget-80',
      service: 'cost-tracker',
      severity: 'warning',
      delivery: 'silent',
      title: 'Month-to-date cost reached 80% of the budget',
      meaning:
        'BudgetUtilizationPercent (Cost Explorer month-to-date, lags about a day) is at or above 80. ' +
        'The alert itself is BudgetThresholdCrossed.v1 (once per month per threshold).',
      runbook: 'budget',
      source: {
        kind: 'metric',
        metric: rs(stage, 'cost-tracker', 'BudgetUtilizationPercent', 'Maximum', 3600),
      },
      threshold: 80,
      comparison: 'GreaterThanOrEqualToThreshold',
      evaluationPeriods: 1,
      // The figure changes once a day; keep the last state through gaps.
      treatMissingData: 'ignore',
      unit: 'percent',
    },
    {
      id: 'budget-100',
      service: 'cost-tracker',
      severity: 'critical',
      delivery: 'silent',
      title: 'Month-to-date cost reached the budget',
      meaning: 'BudgetUtilizationPercent is at or above 100. The alert itself is BudgetThresholdCrossed.v1.',
      runbook: 'budget',
      source: {
        kind: 'metric',
        metric: rs(stage, 'cost-tracker', 'BudgetUtilizationPercent', 'Maximum', 3600),
      },
      threshold: 100,
      comparison: 'GreaterThanOrEqualToThreshold',
      evaluationPeriods: 1,
      treatMissingData: 'ignore',
      unit: 'percent',
    },
    {
      id: 'planner-failures',
      service: 'planner',
      severity: 'warning',
      delivery: 'router',
      title: 'Planner is failing',
      meaning:
        'Planner messages that failed (PlannerErrors) plus planner invocations that crashed (AWS/Lambda Errors) ' +
        'in 2 of the last 3 periods of 5 minutes. Messages that keep failing end in the planner DLQ (critical).',
      runbook: 'planner-failures',
      source: {
        kind: 'math',
        expression: 'FILL(handled, 0) + FILL(crashed, 0)',
        label: 'Planner failures',
        periodSeconds: 300,
        metrics: {
          handled: rs(stage, 'planner', 'PlannerErrors', 'Sum', 300),
          crashed: {
            namespace: LAMBDA_NAMESPACE,
            metricName: 'Errors',
            dimensions: { FunctionName: functionName(stage, 'planner') },
            statistic: 'Sum',
            periodSeconds: 300,
          },
        },
      },
      threshold: 0,
      comparison: 'GreaterThanThreshold',
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      treatMissingData: 'notBreaching',
      unit: 'failures',
    },
    ...platformAlarms(stage),
  ];
  const runbooks = options.runbooks ?? { kind: 'bucket', bucket: names.bucket };
  return drafts.map(({ meaning, ...d }) => ({
    ...d,
    name: alarmName(stage, d.severity, d.id),
    topic: d.severity,
    datapointsToAlarm: d.datapointsToAlarm ?? d.evaluationPeriods,
    description: `[${d.severity.toUpperCase()}] ${meaning} Runbook: ${runbookUrl(d.runbook, runbooks)}`,
  }));
}

function dlqRunbook(queue: QueueName): string {
  if (queue === 'ruleTargets') return 'dlq-rule-targets';
  if (queue === 'alertDelivery') return 'dlq-alert-delivery';
  return 'dlq-not-empty';
}

/** The definition of an alarm by its physical name, if it is one of the stage's. */
export function alarmByName(stage: string, name: string, options: AlarmOptions = {}): AlarmDef | undefined {
  return alarmDefinitions(stage, options).find((a) => a.name === name);
}

const SEVERITIES: readonly Severity[] = ['critical', 'warning', 'info'];

/**
 * The severity an alarm name encodes (`rowstream-<stage>-<severity>-…`), for alarms that are not in
 * the definitions (added by hand, or of an older deployment). `null` when the name says nothing.
 */
export function severityFromAlarmName(stage: string, name: string): Severity | null {
  const prefix = `${APP}-${stage}-`;
  if (!name.startsWith(prefix)) return null;
  const rest = name.slice(prefix.length);
  return SEVERITIES.find((s) => rest.startsWith(`${s}-`)) ?? null;
}

/** Every metric an alarm reads (for catalog checks). */
export function alarmMetrics(def: AlarmDef): readonly MetricRef[] {
  return def.source.kind === 'metric' ? [def.source.metric] : Object.values(def.source.metrics);
}

/** Producer error rate in percent of rows read (metric math over errors, rejected, processed). */
export const PRODUCER_ERROR_RATE_EXPRESSION =
  'IF(FILL(processed, 0) > 0, 100 * (FILL(errors, 0) + FILL(rejected, 0)) / FILL(processed, 0), ' +
  'IF(FILL(errors, 0) > 0, 100, 0))';

/** Container Insights: the producer service's running tasks (the cluster enables it, stacks/Pipeline.ts). */
export function producerTaskCountMetric(stage: string, periodSeconds = 60): MetricRef {
  return {
    namespace: 'ECS/ContainerInsights',
    metricName: 'RunningTaskCount',
    dimensions: { ClusterName: physicalName(stage, 'cluster'), ServiceName: physicalName(stage, 'producer') },
    statistic: 'Minimum',
    periodSeconds,
  };
}

/**
 * The platform under the services: every function's crashes and throttles, and the producer's tasks.
 * The alarm-router's own alarms publish directly: a router that crashes cannot report it.
 */
function platformAlarms(stage: string): Draft[] {
  const lambda = (service: ServiceName, metricName: string): MetricRef => ({
    namespace: LAMBDA_NAMESPACE,
    metricName,
    dimensions: { FunctionName: functionName(stage, service) },
    statistic: 'Sum',
    periodSeconds: 300,
  });
  const functions: readonly ServiceName[] = ['planner', 'alarm-router', 'cost-tracker', 'dims-publisher'];
  const drafts: Draft[] = [];
  for (const service of functions) {
    // The planner's crashes are in planner-failures already (with its handled errors).
    if (service !== 'planner') {
      drafts.push({
        id: `${service}-errors`,
        service,
        severity: 'warning',
        delivery: service === 'alarm-router' ? 'direct' : 'router',
        title: `${service} invocations fail`,
        meaning: `Invocations of ${functionName(stage, service)} that ended in an error (AWS/Lambda Errors) in 2 of the last 3 periods of 5 minutes.`,
        runbook: 'lambda-errors',
        source: { kind: 'metric', metric: lambda(service, 'Errors') },
        threshold: 0,
        comparison: 'GreaterThanThreshold',
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        treatMissingData: 'notBreaching',
        unit: 'invocations',
      });
    }
    drafts.push({
      id: `${service}-throttles`,
      service,
      severity: 'warning',
      delivery: service === 'alarm-router' ? 'direct' : 'router',
      title: `${service} is throttled`,
      meaning: `Invocations of ${functionName(stage, service)} refused for lack of concurrency (AWS/Lambda Throttles) in the last 5 minutes.`,
      runbook: 'lambda-throttles',
      source: { kind: 'metric', metric: lambda(service, 'Throttles') },
      threshold: 0,
      comparison: 'GreaterThanThreshold',
      evaluationPeriods: 1,
      treatMissingData: 'notBreaching',
      unit: 'invocations',
    });
  }
  drafts.push({
    id: 'producer-tasks',
    service: 'producer',
    severity: 'critical',
    delivery: 'router',
    title: 'No producer task is running',
    meaning:
      'The producer service ran no task for 5 minutes (ECS/ContainerInsights RunningTaskCount, missing data ' +
      'counts as none): nothing is streamed, jobs wait in the queue.',
    runbook: 'producer-tasks',
    source: { kind: 'metric', metric: producerTaskCountMetric(stage) },
    threshold: 1,
    comparison: 'LessThanThreshold',
    evaluationPeriods: 5,
    treatMissingData: 'breaching',
    unit: 'tasks',
  });
  return drafts;
}
