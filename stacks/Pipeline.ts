import { Aws, Duration, type Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Function as SstFunction, type StackContext, use } from 'sst/constructs';
import { useProject } from 'sst/project.js';
import { functionName } from '../monitoring/alarms.ts';
import {
  PREFIXES,
  physicalName,
  QUEUES,
  RULES,
  resourceNames,
  SCHEDULES,
  type ServiceName,
  type StackOutputs,
  serviceEnvironment,
  TOPICS,
} from '../topology/topology.ts';
import { Bus } from './Bus.ts';
import { removalFor, tagService } from './common.ts';
import { Monitoring } from './Monitoring.ts';
import { Storage } from './Storage.ts';
import { type DeploySettings, settingsOf } from './settings.ts';

/**
 * Lambda runtime of every function. Node 24 is the project's line (local, CI, producer image), but the
 * pinned aws-cdk-lib 2.201.0 and sst 2.49.0 offer nodejs22.x at most, so the Lambdas stay one LTS
 * behind until those pins move (Node 20 reached end of life in April 2026).
 */
export const LAMBDA_RUNTIME = 'nodejs22.x' as const;

/**
 * Compute: the planner and alarm-router functions on their queues, the cost-tracker and
 * dims-publisher on their schedules, and the producer as an ECS Fargate service. Each role gets exactly
 * the actions of {@link servicePermissions}; tests/infra/iam.test.ts checks them against the SDK calls
 * in each service's code, both ways.
 */
export function Pipeline({ stack, app }: StackContext) {
  // Shared plumbing (custom resource handlers) is `pipeline`; each service's constructs override it.
  tagService(stack, 'pipeline');
  const settings = settingsOf(app);
  const names = resourceNames(app.stage);
  const { bus, archive, queues, rules } = use(Bus);
  const { bucket, tables } = use(Storage);
  const { topics, key } = use(Monitoring);

  // The same variables the local runner sets (topology's serviceEnvironment), from the constructs.
  const outputs: StackOutputs = {
    stage: app.stage,
    region: stack.region,
    endpoint: null,
    bucket: bucket.bucketName,
    prefixes: PREFIXES,
    busName: bus.eventBusName,
    busArn: bus.eventBusArn,
    archiveName: names.archiveName,
    archiveArn: archive.attrArn,
    queues: Object.fromEntries(
      QUEUES.map((q) => {
        const { queue, dlq } = queues[q.name];
        return [
          q.name,
          {
            name: queue.queueName,
            url: queue.queueUrl,
            arn: queue.queueArn,
            dlqUrl: dlq?.queueUrl ?? null,
            dlqArn: dlq?.queueArn ?? null,
          },
        ];
      }),
    ) as StackOutputs['queues'],
    tables: {
      jobs: tables.jobs.tableName,
      counts: tables.counts.tableName,
      state: tables.state.tableName,
    },
    topics: Object.fromEntries(
      TOPICS.map((t) => [t.name, { name: topics[t.name].topicName, arn: topics[t.name].topicArn }]),
    ) as StackOutputs['topics'],
    rules: Object.fromEntries(
      RULES.map((r) => [
        r.name,
        {
          name: names.rules[r.name]!,
          bus: r.bus === 'custom' ? bus.eventBusName : 'default',
          arn: rules[r.name]!.ruleArn,
        },
      ]),
    ),
    schedules: Object.fromEntries(
      SCHEDULES.map((s) => [
        s.name,
        {
          name: names.schedules[s.name]!,
          expression: s.expression,
          everySeconds: s.everySeconds,
          service: s.service,
        },
      ]),
    ),
    kafka: { brokers: settings.kafka.brokers ? [settings.kafka.brokers] : [] },
  };
  const baseEnv = serviceEnvironment(outputs);
  const refs: PermissionRefs = {
    bucketArn: bucket.bucketArn,
    busArn: bus.eventBusArn,
    tableArn: (t) => tables[t].tableArn,
    queueArn: (q) => queues[q].queue.queueArn,
    topicArns: TOPICS.map((t) => topics[t.name].topicArn),
    alertsKeyArn: key.keyArn,
  };

  // ---- Lambda functions -------------------------------------------------------------------------
  const lambdaEnv = { ...baseEnv, ROWSTREAM_MONTHLY_BUDGET_USD: String(settings.monthlyBudgetUsd) };
  // Lambda sets AWS_REGION itself and rejects it as a configured variable.
  delete (lambdaEnv as Record<string, string>).AWS_REGION;

  const fn = (service: Exclude<ServiceName, 'producer'>, timeoutSeconds: number) => {
    // sst pins its own copy of `constructs` (10.3), the app uses 10.8: same runtime shape, distinct types.
    const f = new SstFunction(
      stack as unknown as ConstructorParameters<typeof SstFunction>[0],
      `${service}Function`,
      {
        functionName: functionName(app.stage, service),
        handler: `services/${service}/handler.handler`,
        runtime: LAMBDA_RUNTIME,
        architecture: 'arm_64',
        memorySize: 512,
        timeout: timeoutSeconds,
        // The code does not use X-Ray; active tracing would only add permissions nobody calls.
        tracing: 'disabled',
        logRetention: retention(settings),
        nodejs: { format: 'esm', sourcemap: true },
        environment: { ...lambdaEnv, NODE_OPTIONS: '--enable-source-maps' },
        permissions: statements(servicePermissions(service, refs)),
      },
    );
    tagService(f, service);
    return f;
  };

  // Every queue with a consumer gets it as a Lambda trigger (the producer is a service that polls its
  // own queue; DLQs have no consumer), every schedule its function: both driven by the topology.
  const functions: Partial<Record<Exclude<ServiceName, 'producer'>, SstFunction>> = {};
  const functionOf = (service: Exclude<ServiceName, 'producer'>, timeoutSeconds: number) => {
    functions[service] ??= fn(service, timeoutSeconds);
    return functions[service];
  };
  for (const q of QUEUES) {
    if (q.consumer === null || q.consumer === 'producer') continue;
    // Lambda must finish before the message becomes visible again, or two copies run at once.
    const f = functionOf(q.consumer, q.visibilityTimeoutSeconds - 10);
    f.addEventSource(
      new SqsEventSource(queues[q.name].queue, {
        batchSize: 10,
        maxBatchingWindow: Duration.seconds(1),
        reportBatchItemFailures: true,
      }),
    );
  }
  for (const s of SCHEDULES) {
    if (s.service === 'producer')
      throw new Error(`schedule ${s.name}: the producer is a service, not a function`);
    const f = functionOf(s.service, 120);
    const rule = new events.Rule(stack, `Schedule-${s.name}`, {
      ruleName: names.schedules[s.name],
      description: s.description,
      schedule: events.Schedule.expression(s.expression),
    });
    rule.addTarget(new targets.LambdaFunction(f, { retryAttempts: 2 }));
    tagService(rule, s.service);
  }

  // ---- Producer (ECS Fargate) -------------------------------------------------------------------
  const producer = producerService(stack, app.stage, settings, baseEnv, refs);

  return { functions, ...producer };
}

/** CloudWatch Logs accepts only these retention periods (days). */
const LOG_RETENTION_DAYS: readonly logs.RetentionDays[] = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

function retention(s: DeploySettings) {
  // SST names retention periods; pick the nearest one at or above the setting.
  const options = [
    [1, 'one_day'],
    [3, 'three_days'],
    [5, 'five_days'],
    [7, 'one_week'],
    [14, 'two_weeks'],
    [30, 'one_month'],
    [60, 'two_months'],
    [90, 'three_months'],
    [180, 'six_months'],
    [365, 'one_year'],
  ] as const;
  return (options.find(([d]) => d >= s.logRetentionDays)?.[1] ?? 'one_year') as 'one_month';
}

function producerService(
  stack: Stack,
  stage: string,
  settings: DeploySettings,
  baseEnv: Record<string, string>,
  refs: PermissionRefs,
) {
  const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
    vpcId: settings.vpc.vpcId,
    availabilityZones: [...settings.vpc.azs],
    privateSubnetIds: [...settings.vpc.subnetIds],
  });
  const cluster = new ecs.Cluster(stack, 'ProducerCluster', {
    clusterName: physicalName(stage, 'cluster'),
    vpc,
    enableFargateCapacityProviders: settings.producer.spot,
  });
  const taskRole = new iam.Role(stack, 'ProducerTaskRole', {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    description: 'rowstream producer: only the calls services/producer makes',
  });
  for (const st of statements(servicePermissions('producer', refs))) taskRole.addToPolicy(st);
  for (const st of kafkaStatements(settings)) taskRole.addToPolicy(st);

  const task = new ecs.FargateTaskDefinition(stack, 'ProducerTask', {
    cpu: settings.producer.cpu,
    memoryLimitMiB: settings.producer.memoryMiB,
    taskRole,
    runtimePlatform: {
      cpuArchitecture: ecs.CpuArchitecture.X86_64,
      operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
    },
  });
  const logGroup = new logs.LogGroup(stack, 'ProducerLogs', {
    logGroupName: `/rowstream/${stage}/producer`,
    retention: LOG_RETENTION_DAYS.find((d) => d >= settings.logRetentionDays) ?? logs.RetentionDays.ONE_YEAR,
    removalPolicy: removalFor(stage),
  });

  const env: Record<string, string> = {
    ...baseEnv,
    AWS_REGION: Aws.REGION,
    // EMF lines on stdout: the awslogs driver ships them and CloudWatch Logs extracts the metrics, so
    // the task needs no CloudWatch agent sidecar (docs/deploy.md, "Metrics from the producer").
    ROWSTREAM_METRICS_SINK: 'stdout',
    KAFKA_TOPIC: settings.kafka.topic,
    KAFKA_SSL: settings.kafka.auth === 'none' ? 'false' : 'true',
    KAFKA_SASL_MECHANISM:
      settings.kafka.auth === 'msk-iam'
        ? 'aws-msk-iam'
        : settings.kafka.auth === 'scram'
          ? 'scram-sha-512'
          : '',
  };
  const secrets: Record<string, ecs.Secret> = {};
  if (settings.kafka.secretArn) {
    // Injected by ECS at start (the execution role reads the secret), so the producer's own role
    // needs no Secrets Manager permission and the code no SDK call.
    const secret = secretsmanager.Secret.fromSecretCompleteArn(
      stack,
      'KafkaSecret',
      settings.kafka.secretArn,
    );
    if (!settings.kafka.brokers) {
      secrets.KAFKA_BROKERS = ecs.Secret.fromSecretsManager(secret, 'brokers');
      delete env.KAFKA_BROKERS;
    }
    if (settings.kafka.auth === 'scram') {
      secrets.KAFKA_USERNAME = ecs.Secret.fromSecretsManager(secret, 'username');
      secrets.KAFKA_PASSWORD = ecs.Secret.fromSecretsManager(secret, 'password');
    }
  }

  const image = settings.producer.image
    ? ecs.ContainerImage.fromRegistry(settings.producer.image)
    : ecs.ContainerImage.fromAsset(useProject().paths.root, {
        file: 'stacks/producer.Dockerfile',
        exclude: PRODUCER_IMAGE_EXCLUDES,
      });
  task.addContainer('producer', {
    containerName: 'producer',
    image,
    essential: true,
    environment: env,
    secrets,
    logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'producer', logGroup }),
    // The producer commits its open Kafka transaction and checkpoints on SIGTERM; give it time.
    stopTimeout: Duration.seconds(120),
  });

  const service = new ecs.FargateService(stack, 'ProducerService', {
    serviceName: physicalName(stage, 'producer'),
    cluster,
    taskDefinition: task,
    desiredCount: settings.producer.desiredCount,
    assignPublicIp: false,
    vpcSubnets: { subnets: vpc.privateSubnets },
    minHealthyPercent: 0,
    maxHealthyPercent: 200,
    circuitBreaker: { rollback: true },
    ...(settings.producer.spot
      ? {
          // Spot interruptions are safe: the producer resumes from its last Kafka transaction.
          capacityProviderStrategies: [
            { capacityProvider: 'FARGATE_SPOT', weight: 1 },
            { capacityProvider: 'FARGATE', weight: 0, base: 0 },
          ],
        }
      : {}),
  });
  for (const c of [cluster, task, service, taskRole, logGroup]) tagService(c, 'producer');
  return { cluster, producerTask: task, producerService: service, producerRole: taskRole };
}

/** What the image build must not copy from the repo (also keeps synth fast). */
export const PRODUCER_IMAGE_EXCLUDES = [
  'node_modules',
  '.git',
  '.local',
  '.sst',
  'cdk.out',
  'tests',
  'bench',
  'tmp',
  'docs',
  'coverage',
  'test-output',
];

// ---- Permissions ----------------------------------------------------------------------------------

export interface PermissionRefs {
  readonly bucketArn: string;
  readonly busArn: string;
  readonly tableArn: (t: 'jobs' | 'counts' | 'state') => string;
  readonly queueArn: (q: (typeof QUEUES)[number]['name']) => string;
  readonly topicArns: readonly string[];
  readonly alertsKeyArn: string;
}

export interface Grant {
  readonly sid: string;
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly conditions?: Record<string, unknown>;
}

const objects = (r: PermissionRefs, prefix: string) => `${r.bucketArn}/${prefix}*`;
const tableAndIndexes = (r: PermissionRefs, t: 'jobs' | 'counts' | 'state') => [
  r.tableArn(t),
  `${r.tableArn(t)}/index/*`,
];

/**
 * The permissions of each service, by resource. Only actions its code calls (tests/infra/iam.test.ts
 * compares both ways) plus, for Lambda SQS triggers, what the event source mapping uses on the role.
 */
export function servicePermissions(service: ServiceName, r: PermissionRefs): readonly Grant[] {
  const putEvents: Grant = { sid: 'PublishEvents', actions: ['events:PutEvents'], resources: [r.busArn] };
  switch (service) {
    case 'planner':
      return [
        {
          sid: 'ReadInbound',
          actions: [
            's3:GetObject',
            's3:GetObjectVersion',
            's3:GetObjectTagging',
            's3:GetObjectVersionTagging',
          ],
          resources: [objects(r, PREFIXES.inbound)],
        },
        {
          sid: 'CountsAndJobs',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [r.tableArn('counts'), r.tableArn('jobs')],
        },
        putEvents,
      ];
    case 'producer':
      return [
        {
          // Visibility is not extended: the job lease in DynamoDB, not the message, guards the work.
          sid: 'ConsumeJobStarted',
          actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage'],
          resources: [r.queueArn('producer')],
        },
        {
          sid: 'ReadSourcesAndRejectParts',
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: [objects(r, PREFIXES.inbound), objects(r, PREFIXES.rejected)],
        },
        {
          // Rejected rows are written as parts, then merged into one object per job and the parts deleted.
          sid: 'WriteRejects',
          actions: ['s3:PutObject', 's3:DeleteObject'],
          resources: [objects(r, PREFIXES.rejected)],
        },
        {
          sid: 'ListRejectParts',
          actions: ['s3:ListBucket'],
          resources: [r.bucketArn],
          conditions: { StringLike: { 's3:prefix': [`${PREFIXES.rejected}*`] } },
        },
        {
          sid: 'Jobs',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
          resources: tableAndIndexes(r, 'jobs'),
        },
        putEvents,
      ];
    case 'alarm-router':
      return [
        { sid: 'Alerts', actions: ['sns:Publish'], resources: [...r.topicArns] },
        {
          sid: 'AlertsKey',
          actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
          resources: [r.alertsKeyArn],
        },
        {
          sid: 'AlertState',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [r.tableArn('state')],
        },
        {
          // A flapping ALARM's recheck: a delayed message to the router's own queue (core.ts AlarmRecheck).
          sid: 'Rechecks',
          actions: ['sqs:SendMessage'],
          resources: [r.queueArn('alarmRouter')],
        },
        putEvents,
      ];
    case 'cost-tracker':
      return [
        {
          sid: 'Jobs',
          actions: ['dynamodb:Query', 'dynamodb:UpdateItem'],
          resources: tableAndIndexes(r, 'jobs'),
        },
        {
          sid: 'BudgetState',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [r.tableArn('state')],
        },
        // Cost Explorer has no resource-level permissions: AWS requires `*`.
        { sid: 'CostExplorer', actions: ['ce:GetCostAndUsage'], resources: ['*'] },
        putEvents,
      ];
    case 'dims-publisher':
      return [
        // Objects and bytes per prefix; versions count too (a versioned bucket bills every version).
        { sid: 'ListData', actions: ['s3:ListBucket', 's3:ListBucketVersions'], resources: [r.bucketArn] },
        {
          sid: 'Jobs',
          actions: ['dynamodb:Query', 'dynamodb:BatchGetItem'],
          resources: tableAndIndexes(r, 'jobs'),
        },
        {
          sid: 'Snapshots',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
          resources: [r.tableArn('state')],
        },
        putEvents,
      ];
  }
}

function statements(grants: readonly Grant[]): iam.PolicyStatement[] {
  return grants.map(
    (g) =>
      new iam.PolicyStatement({
        sid: g.sid,
        actions: [...g.actions],
        resources: [...g.resources],
        ...(g.conditions ? { conditions: g.conditions } : {}),
      }),
  );
}

/** MSK IAM access for the producer's transactional, idempotent writes (and its read_committed resume). */
export const MSK_PRODUCER_ACTIONS = {
  cluster: ['kafka-cluster:Connect', 'kafka-cluster:DescribeCluster', 'kafka-cluster:WriteDataIdempotently'],
  topic: ['kafka-cluster:DescribeTopic', 'kafka-cluster:WriteData', 'kafka-cluster:ReadData'],
  transactionalId: ['kafka-cluster:DescribeTransactionalId', 'kafka-cluster:AlterTransactionalId'],
  group: ['kafka-cluster:DescribeGroup', 'kafka-cluster:AlterGroup'],
} as const;

function kafkaStatements(s: DeploySettings): iam.PolicyStatement[] {
  if (s.kafka.auth !== 'msk-iam' || !s.kafka.clusterArn) return [];
  // arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid> -> topic/<name>/<uuid>/<topic>, etc.
  const base = s.kafka.clusterArn;
  const under = (kind: string, rest: string) => `${base.replace(':cluster/', `:${kind}/`)}/${rest}`;
  return [
    new iam.PolicyStatement({
      sid: 'MskCluster',
      actions: [...MSK_PRODUCER_ACTIONS.cluster],
      resources: [base],
    }),
    new iam.PolicyStatement({
      sid: 'MskTopic',
      actions: [...MSK_PRODUCER_ACTIONS.topic],
      resources: [under('topic', s.kafka.topic)],
    }),
    new iam.PolicyStatement({
      sid: 'MskTransactions',
      actions: [...MSK_PRODUCER_ACTIONS.transactionalId],
      resources: [under('transactional-id', 'rowstream-*')],
    }),
    new iam.PolicyStatement({
      sid: 'MskResumeGroup',
      actions: [...MSK_PRODUCER_ACTIONS.group],
      resources: [under('group', 'rowstream-*')],
    }),
  ];
}
