/**
 * The rowstream topology, declared once as data.
 *
 * Both the local provisioner (local/provision.ts, against moto) and the SST stacks (stacks/, for AWS)
 * read this module, so local and cloud cannot drift apart. Physical names are derived from the stage
 * by {@link physicalName}; nothing else in the repo spells a resource name by hand.
 */

export const APP = 'rowstream' as const;

export const EVENT_SOURCE_PREFIX = 'rowstream.' as const;

/** Prefixes inside the data bucket. */
export const PREFIXES = {
  inbound: 'inbound/',
  rejected: 'rejected/',
  processed: 'processed/',
  failed: 'failed/',
  /** Plans too large to travel in events and job records (services/shared/plan.ts). */
  plans: 'plans/',
} as const;

export type QueueName = 'planner' | 'producer' | 'alarmRouter' | 'ruleTargets' | 'alertDelivery';
export type TableName = 'jobs' | 'counts' | 'state';
export type TopicName = 'critical' | 'warning' | 'info';
export type ServiceName = 'planner' | 'producer' | 'alarm-router' | 'cost-tracker' | 'dims-publisher';

export interface QueueDef {
  readonly name: QueueName;
  /** Suffix of the physical name. */
  readonly suffix: string;
  readonly visibilityTimeoutSeconds: number;
  /** Receives after which a message moves to the queue's DLQ. `null` = this queue is itself a DLQ. */
  readonly maxReceiveCount: number | null;
  readonly retentionSeconds: number;
  /** Which service consumes it (for alarms and docs). */
  readonly consumer: ServiceName | null;
  /**
   * A Lambda consumer's function: timeout, memory and SQS batch size. The visibility timeout is at
   * least 6 times the function timeout (AWS's advice for SQS triggers: a throttled or retried batch must
   * not become visible again while a copy still runs); tests/infra checks it.
   */
  readonly lambda?: {
    readonly timeoutSeconds: number;
    readonly memoryMiB: number;
    readonly batchSize: number;
    /**
     * Most concurrent invocations the SQS trigger starts (its event source mapping's maximum
     * concurrency, 2-1000; cloud only): caps the function without reserving account concurrency.
     */
    readonly maxConcurrency: number;
  };
  readonly description: string;
}

/** Visibility timeout of a queue consumed by a Lambda function: AWS recommends at least 6x its timeout. */
export const LAMBDA_VISIBILITY_FACTOR = 6;

export interface TableDef {
  readonly name: TableName;
  readonly suffix: string;
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly ttlAttribute?: string;
  readonly indexes: readonly {
    readonly name: string;
    readonly partitionKey: string;
    readonly sortKey?: string;
  }[];
  readonly description: string;
}

export interface RuleDef {
  readonly name: string;
  /** `custom` = the rowstream bus; `default` = the account's default bus (CloudWatch alarm changes go there). */
  readonly bus: 'custom' | 'default';
  readonly eventPattern: Record<string, unknown>;
  readonly target: { readonly kind: 'queue'; readonly queue: QueueName };
  readonly description: string;
}

export interface ScheduleDef {
  readonly name: string;
  readonly service: ServiceName;
  readonly expression: string;
  /** Seconds between firings, derived from the expression; the local runner fires schedules itself. */
  readonly everySeconds: number;
  readonly timeoutSeconds: number;
  readonly description: string;
}

export interface TopicDef {
  readonly name: TopicName;
  readonly suffix: string;
  readonly description: string;
}

export const QUEUES: readonly QueueDef[] = [
  {
    name: 'planner',
    suffix: 'planner',
    // 6 x the function timeout. One object per invocation: counting a large file takes most of the
    // timeout, and a timeout returns the whole batch; 1 GB gives the counter a full vCPU and more
    // network throughput from S3.
    visibilityTimeoutSeconds: 6 * 300,
    maxReceiveCount: 5,
    retentionSeconds: 4 * 24 * 3600,
    consumer: 'planner',
    // At most 10 files counted at once: each invocation streams a whole object from S3.
    lambda: { timeoutSeconds: 300, memoryMiB: 1024, batchSize: 1, maxConcurrency: 10 },
    description: 'S3 ObjectCreated notifications for inbound/',
  },
  {
    name: 'producer',
    suffix: 'producer',
    visibilityTimeoutSeconds: 120,
    maxReceiveCount: 10,
    retentionSeconds: 14 * 24 * 3600,
    consumer: 'producer',
    description: 'JobStarted.v1 events routed from the bus',
  },
  {
    name: 'alarmRouter',
    suffix: 'alarm-router',
    visibilityTimeoutSeconds: 6 * 30,
    maxReceiveCount: 5,
    retentionSeconds: 4 * 24 * 3600,
    consumer: 'alarm-router',
    // Alerts are few; 2 (the least a mapping allows) keeps the incident de-duplication's races rare.
    lambda: { timeoutSeconds: 30, memoryMiB: 512, batchSize: 10, maxConcurrency: 2 },
    description: 'alarm state changes and job failure/rejection/budget events',
  },
  {
    name: 'ruleTargets',
    suffix: 'rule-targets-dlq',
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: null,
    retentionSeconds: 14 * 24 * 3600,
    consumer: null,
    description: 'dead letters of EventBridge rule targets (events the bus could not deliver)',
  },
  {
    // Declared here, not left to operators, so every subscription of every stage (local included) can
    // name the same DLQ in its RedrivePolicy; stacks/ and local/provision.ts let only the three alert
    // topics send to it.
    name: 'alertDelivery',
    suffix: 'alert-delivery-dlq',
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: null,
    retentionSeconds: 14 * 24 * 3600,
    consumer: null,
    description:
      'alert messages SNS could not deliver to a subscription (set as the subscription RedrivePolicy)',
  },
];

export const TABLES: readonly TableDef[] = [
  {
    name: 'jobs',
    suffix: 'jobs',
    partitionKey: 'jobId',
    indexes: [{ name: 'byStatus', partitionKey: 'status', sortKey: 'updatedAt' }],
    description: 'one item per job: status, totals, lease, checkpoint, cost',
  },
  {
    name: 'counts',
    suffix: 'line-counts',
    partitionKey: 'cacheKey',
    description: 'row-count cache keyed by bucket/key/ETag',
    indexes: [],
  },
  {
    name: 'state',
    suffix: 'state',
    partitionKey: 'pk',
    ttlAttribute: 'expiresAt',
    description: 'idempotency keys, alert state, budget thresholds, inventory snapshots',
    indexes: [],
  },
];

const ROWSTREAM_SOURCES = [
  'rowstream.planner',
  'rowstream.producer',
  'rowstream.alarm-router',
  'rowstream.cost-tracker',
  'rowstream.dims-publisher',
];

export const RULES: readonly RuleDef[] = [
  {
    name: 'job-started',
    bus: 'custom',
    eventPattern: { source: ['rowstream.planner'], 'detail-type': ['JobStarted.v1'] },
    target: { kind: 'queue', queue: 'producer' },
    description: 'JobStarted.v1 -> producer queue',
  },
  {
    name: 'ops-events',
    bus: 'custom',
    eventPattern: {
      source: ROWSTREAM_SOURCES,
      'detail-type': ['JobFailed.v1', 'JobRejected.v1', 'JobCompleted.v1', 'BudgetThresholdCrossed.v1'],
    },
    target: { kind: 'queue', queue: 'alarmRouter' },
    description:
      'job failures, rejections, completions (with rejects: info) and budget crossings -> alarm-router',
  },
  {
    name: 'alarm-state',
    bus: 'default',
    eventPattern: { source: ['aws.cloudwatch'], 'detail-type': ['CloudWatch Alarm State Change'] },
    target: { kind: 'queue', queue: 'alarmRouter' },
    description: 'CloudWatch alarm state changes (always on the default bus) -> alarm-router',
  },
];

export const SCHEDULES: readonly ScheduleDef[] = [
  {
    name: 'cost-tracker',
    service: 'cost-tracker',
    expression: 'rate(5 minutes)',
    everySeconds: 300,
    timeoutSeconds: 120,
    description: 'per-job cost estimates; month-to-date cost and budget once a day',
  },
  {
    name: 'dims-publisher',
    service: 'dims-publisher',
    expression: 'rate(6 hours)',
    everySeconds: 6 * 3600,
    timeoutSeconds: 300,
    description: 'data inventory metrics (objects/bytes per prefix, jobs per status, rows delivered)',
  },
];

export const TOPICS: readonly TopicDef[] = [
  {
    name: 'critical',
    suffix: 'alerts-critical',
    description: 'page someone: data is not flowing or money is burning',
  },
  { name: 'warning', suffix: 'alerts-warning', description: 'look today: rejects, slow queues, budget 80%' },
  {
    name: 'info',
    suffix: 'alerts-info',
    description: 'for the record: resolved alarms, jobs completed with rejects',
  },
];

/**
 * The event pattern a rule is created with in a stage. `alarm-state` listens on the account's default
 * bus, where every alarm of the account changes state: it takes only this stage's alarms (their names
 * start with `rowstream-<stage>-`, monitoring/alarms.ts), so another app's alarms never reach the router.
 */
export function ruleEventPattern(rule: RuleDef, stage: string): Record<string, unknown> {
  if (rule.name !== 'alarm-state') return rule.eventPattern;
  return { ...rule.eventPattern, detail: { alarmName: [{ prefix: physicalName(stage, '') }] } };
}

/** Archive of every rowstream event on the custom bus. */
export const ARCHIVE = {
  suffix: 'archive',
  eventPattern: { source: [{ prefix: EVENT_SOURCE_PREFIX }] } as Record<string, unknown>,
  retentionDays: { prod: 365, default: 14 } as Record<string, number>,
} as const;

/** `rowstream-<stage>-<suffix>`: every physical name of the app. */
export function physicalName(stage: string, suffix: string): string {
  return `${APP}-${stage}-${suffix}`;
}

export function dlqSuffix(q: QueueDef): string {
  return `${q.suffix}-dlq`;
}

export function archiveRetentionDays(stage: string): number {
  return ARCHIVE.retentionDays[stage] ?? ARCHIVE.retentionDays.default ?? 14;
}

/** Names (not ARNs/URLs) of every resource of a stage. */
export function resourceNames(stage: string) {
  return {
    bucket: physicalName(stage, 'data'),
    busName: physicalName(stage, 'bus'),
    archiveName: physicalName(stage, ARCHIVE.suffix),
    queues: Object.fromEntries(
      QUEUES.map((q) => [
        q.name,
        {
          name: physicalName(stage, q.suffix),
          dlqName: q.maxReceiveCount === null ? null : physicalName(stage, dlqSuffix(q)),
        },
      ]),
    ) as Record<QueueName, { name: string; dlqName: string | null }>,
    tables: Object.fromEntries(TABLES.map((t) => [t.name, physicalName(stage, t.suffix)])) as Record<
      TableName,
      string
    >,
    topics: Object.fromEntries(TOPICS.map((t) => [t.name, physicalName(stage, t.suffix)])) as Record<
      TopicName,
      string
    >,
    rules: Object.fromEntries(RULES.map((r) => [r.name, physicalName(stage, r.name)])) as Record<
      string,
      string
    >,
    schedules: Object.fromEntries(
      SCHEDULES.map((s) => [s.name, physicalName(stage, `schedule-${s.name}`)]),
    ) as Record<string, string>,
  };
}

/**
 * What a provisioned stage looks like from the outside: written by the local stack to
 * `.local/stack.json` and read by the CLI, the services' local wiring, tests and benchmarks.
 */
export interface StackOutputs {
  readonly stage: string;
  readonly region: string;
  readonly endpoint: string | null;
  readonly bucket: string;
  readonly prefixes: typeof PREFIXES;
  readonly busName: string;
  readonly busArn: string;
  readonly archiveName: string;
  readonly archiveArn: string;
  readonly queues: Record<
    QueueName,
    { name: string; url: string; arn: string; dlqUrl: string | null; dlqArn: string | null }
  >;
  readonly tables: Record<TableName, string>;
  readonly topics: Record<TopicName, { name: string; arn: string }>;
  readonly rules: Record<string, { name: string; bus: string; arn: string }>;
  readonly schedules: Record<
    string,
    { name: string; expression: string; everySeconds: number; service: ServiceName }
  >;
  readonly kafka: { readonly brokers: readonly string[] };
  /** The Glue Schema Registry of the stage's Avro record schemas. */
  readonly schemaRegistry: string;
}

/**
 * Environment variables that tell a service where its resources are. The SST stacks set the same
 * variables from the deployed resources, the local runner sets them from `.local/stack.json`.
 */
export function serviceEnvironment(outputs: StackOutputs): Record<string, string> {
  const env: Record<string, string> = {
    ROWSTREAM_STAGE: outputs.stage,
    ROWSTREAM_BUCKET: outputs.bucket,
    ROWSTREAM_BUS_NAME: outputs.busName,
    ROWSTREAM_JOBS_TABLE: outputs.tables.jobs,
    ROWSTREAM_COUNTS_TABLE: outputs.tables.counts,
    ROWSTREAM_STATE_TABLE: outputs.tables.state,
    ROWSTREAM_PLANNER_QUEUE_URL: outputs.queues.planner.url,
    ROWSTREAM_PRODUCER_QUEUE_URL: outputs.queues.producer.url,
    ROWSTREAM_ALARM_ROUTER_QUEUE_URL: outputs.queues.alarmRouter.url,
    ROWSTREAM_TOPIC_CRITICAL_ARN: outputs.topics.critical.arn,
    ROWSTREAM_TOPIC_WARNING_ARN: outputs.topics.warning.arn,
    ROWSTREAM_TOPIC_INFO_ARN: outputs.topics.info.arn,
    KAFKA_BROKERS: outputs.kafka.brokers.join(','),
    AWS_REGION: outputs.region,
  };
  // Absent from a .local/stack.json written before the registry was an output: the services then
  // derive `rowstream-<stage>-schemas`, which is what that stack provisioned.
  if (outputs.schemaRegistry) env.ROWSTREAM_SCHEMA_REGISTRY = outputs.schemaRegistry;
  if (outputs.endpoint) env.AWS_ENDPOINT_URL = outputs.endpoint;
  return env;
}
