import { join } from 'node:path';
import { Aws, CfnOutput, Duration, type Stack } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Function as SstFunction, type StackContext, use } from 'sst/constructs';
import { useProject } from 'sst/project.js';
import { CATALOG } from '../events/catalog.ts';
import { functionName } from '../monitoring/alarms.ts';
import { METRIC_NAMESPACE } from '../monitoring/metrics.ts';
import type { InventoryDefinition } from '../services/dims-publisher/definition.ts';
import { loadDefinition } from '../services/dims-publisher/settings.ts';
import {
  PREFIXES,
  physicalName,
  QUEUES,
  type QueueName,
  RULES,
  resourceNames,
  SCHEDULES,
  type ServiceName,
  type StackOutputs,
  serviceEnvironment,
  TOPICS,
} from '../topology/topology.ts';
import { Bus } from './Bus.ts';
import { FUNCTION_SKIPS, skipChecks } from './checkov.ts';
import { arn, removalFor, tagService } from './common.ts';
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
  const { bucket, tables, schemaArns, registryName } = use(Storage);
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
    schemaRegistry: registryName,
  };
  const baseEnv = {
    ...serviceEnvironment(outputs),
    // One topic setting, end to end: the planner's default and allow-list, the producer's defence in
    // depth, and (below) the MSK grants all come from these two values.
    ROWSTREAM_DEFAULT_TOPIC: settings.kafka.defaultTopic,
    ROWSTREAM_ALLOWED_TOPICS: settings.kafka.allowedTopics.join(','),
    // Read by the planner and the producer; the grants below follow it (servicePermissions).
    ROWSTREAM_SOURCE_FATE: settings.sourceFate,
  };
  const refs: PermissionRefs = {
    bucketArn: bucket.bucketArn,
    busArn: bus.eventBusArn,
    tableArn: (t) => tables[t].tableArn,
    queueArn: (q) => queues[q].queue.queueArn,
    topicArns: TOPICS.map((t) => topics[t.name].topicArn),
    alertsKeyArn: key.keyArn,
    schemaArns,
    inventory: loadDefinition(join(useProject().paths.root, INVENTORY_DEFINITION)),
    sourceFate: settings.sourceFate,
  };

  // ---- Lambda functions -------------------------------------------------------------------------
  const lambdaEnv = { ...baseEnv, ROWSTREAM_MONTHLY_BUDGET_USD: String(settings.monthlyBudgetUsd) };
  // Lambda sets AWS_REGION itself and rejects it as a configured variable.
  delete (lambdaEnv as Record<string, string>).AWS_REGION;

  // Events a schedule could not deliver to its function (after its retries), and invocations of a
  // scheduled function that failed after Lambda's own retries, go to the rule-target DLQ of the Bus
  // stack, watched by an alarm. Imported by its name-derived ARN: a reference to the construct would
  // make CDK add the queue-policy grant in Bus, naming these rules, a dependency cycle; Bus grants the
  // schedule rules by name instead (stacks/Bus.ts), the functions get SendMessage on their role.
  const scheduleDlq = sqs.Queue.fromQueueArn(
    stack,
    'ScheduleTargetsDlq',
    arn('sqs', names.queues[SCHEDULE_TARGET_DLQ].name),
  );
  const sqsTriggered = new Set(QUEUES.flatMap((q) => (q.lambda && q.consumer ? [q.consumer] : [])));

  const fn = (service: Exclude<ServiceName, 'producer'>, timeoutSeconds: number, memoryMiB: number) => {
    // SQS-triggered functions are invoked synchronously (their queue's redrive DLQ holds what fails);
    // scheduled ones asynchronously, where only a function DLQ keeps a run that failed every retry.
    const scheduled = !sqsTriggered.has(service);
    // sst pins its own copy of `constructs` (10.3), the app uses 10.8: same runtime shape, distinct types.
    const f = new SstFunction(
      stack as unknown as ConstructorParameters<typeof SstFunction>[0],
      `${service}Function`,
      {
        functionName: functionName(app.stage, service),
        handler: `services/${service}/handler.handler`,
        runtime: LAMBDA_RUNTIME,
        architecture: 'arm_64',
        memorySize: memoryMiB,
        timeout: timeoutSeconds,
        // The code does not use X-Ray; active tracing would only add permissions nobody calls.
        tracing: 'disabled',
        logRetention: retention(settings),
        // Minified, no source map in the zip (SST keeps function names, so stack traces still name
        // the functions): a 0.6 MB bundle instead of 2.5 MB plus a 4.5 MB map on every cold start.
        nodejs: { format: 'esm', minify: true, sourcemap: false },
        // Files the code reads at run time, next to the bundle where it looks for them
        // (tests/infra/build.test.ts runs SST's build and checks each artifact for them).
        copyFiles: (RUNTIME_FILES[service] ?? []).map((from) => ({ from })),
        environment: lambdaEnv,
        permissions: statements(servicePermissions(service, refs)),
        ...(scheduled ? { deadLetterQueue: scheduleDlq } : {}),
      },
    );
    tagService(f, service);
    skipChecks(f, [
      FUNCTION_SKIPS.vpc,
      FUNCTION_SKIPS.environment,
      ...(scheduled
        ? [FUNCTION_SKIPS.scheduled.concurrency]
        : [FUNCTION_SKIPS.sqsTriggered.dlq, FUNCTION_SKIPS.sqsTriggered.concurrency]),
    ]);
    return f;
  };

  // Every queue with a consumer gets it as a Lambda trigger (the producer is a service that polls its
  // own queue; DLQs have no consumer), every schedule its function: both driven by the topology.
  const functions: Partial<Record<Exclude<ServiceName, 'producer'>, SstFunction>> = {};
  const functionOf = (service: Exclude<ServiceName, 'producer'>, timeoutSeconds: number, memoryMiB = 512) => {
    functions[service] ??= fn(service, timeoutSeconds, memoryMiB);
    return functions[service];
  };
  for (const q of QUEUES) {
    if (q.consumer === null || q.consumer === 'producer') continue;
    if (!q.lambda) throw new Error(`queue ${q.name}: a Lambda consumer needs its lambda settings`);
    const f = functionOf(q.consumer, q.lambda.timeoutSeconds, q.lambda.memoryMiB);
    f.addEventSource(
      new SqsEventSource(queues[q.name].queue, {
        batchSize: q.lambda.batchSize,
        ...(q.lambda.batchSize > 1 ? { maxBatchingWindow: Duration.seconds(1) } : {}),
        reportBatchItemFailures: true,
        maxConcurrency: q.lambda.maxConcurrency,
      }),
    );
  }
  for (const s of SCHEDULES) {
    if (s.service === 'producer')
      throw new Error(`schedule ${s.name}: the producer is a service, not a function`);
    const f = functionOf(s.service, s.timeoutSeconds);
    const rule = new events.Rule(stack, `Schedule-${s.name}`, {
      ruleName: names.schedules[s.name],
      description: s.description,
      schedule: events.Schedule.expression(s.expression),
    });
    rule.addTarget(
      new targets.LambdaFunction(f, {
        retryAttempts: 2,
        maxEventAge: Duration.seconds(Math.max(60, s.everySeconds)),
        deadLetterQueue: scheduleDlq,
      }),
    );
    tagService(rule, s.service);
  }

  // ---- Producer (ECS Fargate) -------------------------------------------------------------------
  const producer = producerService(stack, app.stage, settings, baseEnv, refs, queues.producer.queue);

  return { functions, ...producer };
}

/** The inventory definition dims-publisher reads: its IAM list grants are derived from it. */
export const INVENTORY_DEFINITION = 'inventory/metrics.yaml';

/** Files a function reads at run time (paths from the repository root), copied beside its bundle. */
export const RUNTIME_FILES: Partial<Record<ServiceName, readonly string[]>> = {
  'dims-publisher': [INVENTORY_DEFINITION],
};

/** Where undeliverable schedule events go (the same DLQ as the bus rules' targets). */
export const SCHEDULE_TARGET_DLQ: QueueName = 'ruleTargets';

/**
 * ECS gives a stopping task at most 120 s between SIGTERM and SIGKILL. The producer's grace period
 * (commit, checkpoint, release the lease) ends 10 s before that, so it always exits by itself.
 */
export const PRODUCER_STOP_TIMEOUT_SECONDS = 120;
export const PRODUCER_GRACE_MS = (PRODUCER_STOP_TIMEOUT_SECONDS - 10) * 1000;

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
  jobQueue: sqs.IQueue,
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
    // RunningTaskCount (the tasks alarm and the backlog-per-task scaling metric) comes from here.
    containerInsightsV2: ecs.ContainerInsights.ENABLED,
  });
  const taskRole = new iam.Role(stack, 'ProducerTaskRole', {
    assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
    description: 'rowstream producer: only the calls services/producer makes',
  });
  for (const st of statements(servicePermissions('producer', refs))) taskRole.addToPolicy(st);
  for (const st of kafkaStatements(settings)) taskRole.addToPolicy(st);
  // Scale-in protection while the task holds a job (services/producer/adapters/protection-ecs.ts).
  // The agent endpoint calls ECS with the task's own credentials.
  taskRole.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ScaleInProtection',
      actions: ['ecs:UpdateTaskProtection'],
      resources: [arn('ecs', `task/${physicalName(stage, 'cluster')}/*`)],
    }),
  );

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
  skipChecks(logGroup, [
    {
      id: 'CKV_AWS_158',
      comment:
        'CloudWatch Logs encrypts every log group at rest. The producer logs job ids, counts and errors, never row contents (bad rows go to rejected/ in the bucket); a customer managed key would need a key policy for logs.<region>.amazonaws.com and a fee, for no change in who reads them (IAM decides).',
    },
  ]);

  const env: Record<string, string> = {
    ...baseEnv,
    AWS_REGION: Aws.REGION,
    // EMF lines on stdout: the awslogs driver ships them and CloudWatch Logs extracts the metrics, so
    // the task needs no CloudWatch agent sidecar (docs/deploy.md, "Metrics from the producer").
    ROWSTREAM_METRICS_SINK: 'stdout',
    ROWSTREAM_PRODUCER_CONCURRENCY: String(settings.producer.concurrency),
    ROWSTREAM_PRODUCER_GRACE_MS: String(PRODUCER_GRACE_MS),
    // Topics are declared and created by an operator in the cloud, never by a producer's write.
    ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS: 'false',
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
        // The task runs on X86_64: an image built on an arm64 laptop without this could not start.
        platform: Platform.LINUX_AMD64,
      });
  task.addContainer('producer', {
    containerName: 'producer',
    image,
    essential: true,
    environment: env,
    secrets,
    logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'producer', logGroup }),
    // The producer commits its open Kafka transaction and checkpoints on SIGTERM; give it time.
    stopTimeout: Duration.seconds(PRODUCER_STOP_TIMEOUT_SECONDS),
  });
  const executionRole = task.obtainExecutionRole();
  if (settings.kafka.secretArn && settings.kafka.secretKeyArn) {
    // MSK takes SCRAM secrets only under a customer managed key: ECS reads the secret with the execution
    // role, and Secrets Manager decrypts it with this key on that role's behalf.
    executionRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'KafkaSecretKey',
        actions: ['kms:Decrypt'],
        resources: [settings.kafka.secretKeyArn],
        conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${Aws.REGION}.amazonaws.com` } },
      }),
    );
  }

  // The producer's own group: all outbound (S3, DynamoDB, SQS, EventBridge, Kafka), no inbound. With
  // ROWSTREAM_KAFKA_SECURITY_GROUP_ID the brokers' group admits it on the Kafka ports.
  const securityGroup = new ec2.SecurityGroup(stack, 'ProducerSecurityGroup', {
    vpc,
    securityGroupName: physicalName(stage, 'producer'),
    description: 'rowstream producer tasks (outbound only)',
    allowAllOutbound: true,
  });
  if (settings.kafka.securityGroupId) {
    new ec2.CfnSecurityGroupIngress(stack, 'KafkaFromProducer', {
      groupId: settings.kafka.securityGroupId,
      ipProtocol: 'tcp',
      fromPort: settings.kafka.ports.from,
      toPort: settings.kafka.ports.to,
      sourceSecurityGroupId: securityGroup.securityGroupId,
      description: `rowstream ${stage} producer -> Kafka`,
    });
  }
  const extraGroups = settings.producer.securityGroupIds.map((id, i) =>
    ec2.SecurityGroup.fromSecurityGroupId(stack, `ProducerExtraSg${i}`, id, { mutable: false }),
  );

  const service = new ecs.FargateService(stack, 'ProducerService', {
    serviceName: physicalName(stage, 'producer'),
    cluster,
    taskDefinition: task,
    // No desiredCount: service auto scaling owns it (a redeploy must not reset a scaled-out service).
    assignPublicIp: false,
    vpcSubnets: { subnets: vpc.privateSubnets },
    securityGroups: [securityGroup, ...extraGroups],
    // Tags reach the tasks, so the cost tracker's Cost Explorer query (by app/stage/service) sees Fargate.
    propagateTags: ecs.PropagatedTagSource.SERVICE,
    enableECSManagedTags: true,
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
  const scaling = producerScaling(stack, stage, settings, cluster, service, jobQueue);
  for (const c of [cluster, task, service, taskRole, logGroup, securityGroup]) tagService(c, 'producer');

  const out = (id: string, value: string, description: string) =>
    new CfnOutput(stack, id, { value, description });
  out('ProducerSecurityGroupId', securityGroup.securityGroupId, 'allow it on the Kafka brokers (inbound)');
  out('ProducerClusterName', cluster.clusterName, 'ECS cluster of the producer');
  out('ProducerServiceName', service.serviceName, 'ECS service of the producer');
  out('ProducerTaskRoleArn', taskRole.roleArn, 'the producer task role (MSK IAM policies name it)');
  out('ProducerLogGroupName', logGroup.logGroupName, 'producer logs');
  return {
    cluster,
    producerTask: task,
    producerService: service,
    producerRole: taskRole,
    producerSecurityGroup: securityGroup,
    ...scaling,
  };
}

/**
 * Producer scale-out: Application Auto Scaling target tracking on the job backlog per task.
 * backlog = JobStarted messages waiting in the producer queue + RUNNING jobs (the cost tracker's
 * RunningJobs, every 5 minutes); the target is the jobs one task runs at once, so the service settles
 * at ceil(backlog / concurrency) tasks between the stage's minimum and maximum. Scale-in never stops a
 * task mid-job: a task holding a job has ECS scale-in protection (the producer sets it); a task stopped
 * anyway (deployment, Spot) hands its job over on SIGTERM.
 */
function producerScaling(
  stack: Stack,
  stage: string,
  settings: DeploySettings,
  cluster: ecs.Cluster,
  service: ecs.FargateService,
  jobQueue: sqs.IQueue,
) {
  const target = new appscaling.ScalableTarget(stack, 'ProducerScalableTarget', {
    serviceNamespace: appscaling.ServiceNamespace.ECS,
    scalableDimension: 'ecs:service:DesiredCount',
    resourceId: `service/${cluster.clusterName}/${service.serviceName}`,
    minCapacity: settings.producer.minTasks,
    maxCapacity: settings.producer.maxTasks,
  });
  const metric = (
    id: string,
    namespace: string,
    metricName: string,
    dims: Record<string, string>,
    stat: string,
  ) => ({
    id,
    returnData: false,
    metricStat: {
      metric: {
        namespace,
        metricName,
        dimensions: Object.entries(dims).map(([name, value]) => ({ name, value })),
      },
      stat,
    },
  });
  const policy = new appscaling.CfnScalingPolicy(stack, 'ProducerBacklogScaling', {
    policyName: physicalName(stage, 'producer-backlog'),
    policyType: 'TargetTrackingScaling',
    scalingTargetId: target.scalableTargetId,
    targetTrackingScalingPolicyConfiguration: {
      targetValue: settings.producer.concurrency,
      scaleOutCooldown: 60,
      // Jobs arrive in bursts; stay scaled out a while instead of stopping idle tasks at once.
      scaleInCooldown: 600,
      customizedMetricSpecification: {
        metrics: [
          metric(
            'waiting',
            'AWS/SQS',
            'ApproximateNumberOfMessagesVisible',
            { QueueName: jobQueue.queueName },
            'Maximum',
          ),
          metric(
            'running',
            METRIC_NAMESPACE,
            'RunningJobs',
            { Service: 'cost-tracker', Stage: stage },
            'Maximum',
          ),
          metric(
            'tasks',
            'ECS/ContainerInsights',
            'RunningTaskCount',
            { ClusterName: cluster.clusterName, ServiceName: service.serviceName },
            'Average',
          ),
          {
            id: 'backlogPerTask',
            label: 'jobs waiting or running per producer task',
            expression: PRODUCER_BACKLOG_PER_TASK,
            returnData: true,
          },
        ],
      },
    },
  });
  return { producerScalableTarget: target, producerScalingPolicy: policy };
}

/**
 * Jobs waiting or running per task (metric math). RunningJobs is published every 5 minutes: REPEAT
 * carries it across the 1-minute periods; no task reported counts as one (never a division by zero).
 */
export const PRODUCER_BACKLOG_PER_TASK =
  '(FILL(waiting, 0) + FILL(running, REPEAT)) / IF(FILL(tasks, 0) < 1, 1, FILL(tasks, 0))';

/** What the image build must not copy from the repo (also keeps synth fast). */
export const PRODUCER_IMAGE_EXCLUDES = [
  'node_modules',
  '.git',
  '.local',
  '.sst',
  'cdk.out',
  'dist',
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
  /** The schema registry and its schemas. */
  readonly schemaArns: readonly string[];
  /** The inventory definition dims-publisher ships with (RUNTIME_FILES): the prefixes it lists. */
  readonly inventory: Pick<InventoryDefinition, 'prefixes' | 'oldestUnprocessed'>;
  /** `move`: the planner and the producer move finished sources to processed/ and failed/. */
  readonly sourceFate: 'tag' | 'move';
}

export interface Grant {
  readonly sid: string;
  readonly actions: readonly string[];
  readonly resources: readonly string[];
  readonly conditions?: Record<string, unknown>;
}

const objects = (r: PermissionRefs, prefix: string) => `${r.bucketArn}/${prefix}*`;
/** A list action on the bucket, only for requests whose prefix is under one of `prefixes`. */
const listUnder = (
  r: PermissionRefs,
  sid: string,
  actions: readonly string[],
  prefixes: readonly string[],
): Grant => ({
  sid,
  actions,
  resources: [r.bucketArn],
  conditions: { StringLike: { 's3:prefix': prefixes.map((p) => `${p}*`) } },
});
const tableAndIndexes = (r: PermissionRefs, t: 'jobs' | 'counts' | 'state') => [
  r.tableArn(t),
  `${r.tableArn(t)}/index/*`,
];

/**
 * The permissions of each service, by resource. Only actions its code calls (tests/infra/iam.test.ts
 * compares both ways) plus, for Lambda SQS triggers, what the event source mapping uses on the role.
 */
export function servicePermissions(service: ServiceName, r: PermissionRefs): readonly Grant[] {
  const putEvents: Grant = {
    sid: 'PublishEvents',
    actions: ['events:PutEvents'],
    resources: [r.busArn],
    conditions: { StringEquals: eventsOf(service) },
  };
  const move = r.sourceFate === 'move';
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
          // A rejected object version is tagged with its job id and REJECTED (merged with its own tags).
          sid: 'TagRejectedSources',
          actions: ['s3:PutObjectTagging', 's3:PutObjectVersionTagging'],
          resources: [objects(r, PREFIXES.inbound)],
        },
        ...(move
          ? [
              {
                // A rejected source moves to failed/: copied with its tags (the copy's tags are read to
                // find a copy an interrupted attempt left; above 5 GiB in parts, aborted on failure),
                // then its inbound/ version deleted.
                sid: 'MoveRejectedSources',
                actions: [
                  's3:PutObject',
                  's3:PutObjectTagging',
                  's3:GetObjectTagging',
                  's3:AbortMultipartUpload',
                ],
                resources: [objects(r, PREFIXES.failed)],
              },
              {
                sid: 'DeleteMovedSourceVersions',
                actions: ['s3:DeleteObjectVersion'],
                resources: [objects(r, PREFIXES.inbound)],
              },
            ]
          : []),
        // Not called by the code: without it S3 answers 403, not 404, for a missing key, and a vanished
        // object would cycle to the DLQ instead of becoming a JobRejected. Only where it reads (S3
        // checks it with the requested key as s3:prefix); failed/ when the planner looks for its copy.
        listUnder(
          r,
          'MissingObjectsAre404',
          ['s3:ListBucket'],
          [PREFIXES.inbound, ...(move ? [PREFIXES.failed] : [])],
        ),
        {
          // A plan too large for JobStarted and the job record is written to plans/<jobId>.json.
          sid: 'WritePlans',
          actions: ['s3:PutObject'],
          resources: [objects(r, PREFIXES.plans)],
        },
        {
          sid: 'CountsAndJobs',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
          resources: [r.tableArn('counts'), r.tableArn('jobs')],
        },
        {
          // Decides each job's schema: reads the topic's versions, registers a new (compatible) one.
          sid: 'Schemas',
          actions: [
            'glue:GetSchemaVersion',
            'glue:GetSchema',
            'glue:GetSchemaByDefinition',
            'glue:CreateSchema',
            'glue:RegisterSchemaVersion',
          ],
          resources: [...r.schemaArns],
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
          // failed/ (move mode): a resumed job reads its source where its failure moved it.
          sid: 'ReadSourcesAndRejectParts',
          actions: ['s3:GetObject', 's3:GetObjectVersion'],
          resources: [
            objects(r, PREFIXES.inbound),
            objects(r, PREFIXES.rejected),
            ...(move ? [objects(r, PREFIXES.failed)] : []),
          ],
        },
        {
          // A job whose JobStarted and record carry a planRef: its header and schema are read from there.
          sid: 'ReadPlans',
          actions: ['s3:GetObject'],
          resources: [objects(r, PREFIXES.plans)],
        },
        {
          // The source object version's fate: job id and outcome tags when the job ends (merged with its
          // own); in move mode also on the copies in processed/ and failed/ (written with the copy, read
          // to find a copy an interrupted attempt left, re-tagged when a resumed job ends).
          sid: 'TagSourceFate',
          actions: [
            's3:GetObjectTagging',
            's3:GetObjectVersionTagging',
            's3:PutObjectTagging',
            's3:PutObjectVersionTagging',
          ],
          resources: [
            objects(r, PREFIXES.inbound),
            ...(move ? [objects(r, PREFIXES.processed), objects(r, PREFIXES.failed)] : []),
          ],
        },
        ...(move
          ? [
              {
                // A finished source moves: COMPLETED to processed/, FAILED to failed/ (CopyObject of the
                // exact version; above 5 GiB a multipart copy, aborted on failure), then that version
                // (only it) is deleted where it was.
                sid: 'MoveSources',
                actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
                resources: [objects(r, PREFIXES.processed), objects(r, PREFIXES.failed)],
              },
              {
                sid: 'DeleteMovedSourceVersions',
                actions: ['s3:DeleteObjectVersion'],
                resources: [objects(r, PREFIXES.inbound), objects(r, PREFIXES.failed)],
              },
            ]
          : []),
        {
          // Rejected rows are written as parts, then merged into one object per job and the parts deleted.
          sid: 'WriteRejects',
          actions: ['s3:PutObject', 's3:DeleteObject'],
          resources: [objects(r, PREFIXES.rejected)],
        },
        // rejected/: the code lists the reject parts of a job. inbound/ and plans/: not listed by the
        // code, but without it a source deleted under the job (or a missing plan) answers 403, not 404,
        // and would look like an access error (object-reader-s3.ts, plan-store-s3.ts tell them apart).
        listUnder(
          r,
          'ListRejectPartsAndMissingSourcesAre404',
          ['s3:ListBucket'],
          [
            PREFIXES.rejected,
            PREFIXES.inbound,
            PREFIXES.plans,
            ...(move ? [PREFIXES.processed, PREFIXES.failed] : []),
          ],
        ),
        {
          sid: 'Jobs',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
          resources: tableAndIndexes(r, 'jobs'),
        },
        { sid: 'ReadSchemas', actions: ['glue:GetSchemaVersion'], resources: [...r.schemaArns] },
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
        // Objects and bytes of each prefix of the inventory definition (ListObjectsV2), and the latest
        // versions under its oldest-unprocessed prefix (ListObjectVersions): nothing else in the bucket.
        listUnder(r, 'ListInventoryPrefixes', ['s3:ListBucket'], r.inventory.prefixes),
        ...(r.inventory.oldestUnprocessed
          ? [
              listUnder(
                r,
                'ListUnprocessedVersions',
                ['s3:ListBucketVersions'],
                [r.inventory.oldestUnprocessed.prefix],
              ),
            ]
          : []),
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

/**
 * What a service may put on the bus: its own source (`rowstream.<service>`) and only the detail-types
 * the event catalog gives that source. So only the planner can emit JobStarted.v1, the one event the
 * producer acts on.
 */
export function eventsOf(service: ServiceName): Record<string, string[]> {
  const source = `rowstream.${service}`;
  const detailTypes = Object.entries(CATALOG)
    .filter(([, e]) => e.source === source)
    .map(([t]) => t);
  if (detailTypes.length === 0) throw new Error(`the event catalog has no event from ${source}`);
  return { 'events:source': [source], 'events:detail-type': detailTypes };
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
      // Exactly the stage's allow-list: no CreateTopic, and no topic outside the list.
      resources: s.kafka.allowedTopics.map((t) => under('topic', t)),
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
