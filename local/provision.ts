import { readFileSync } from 'node:fs';
import { PutMetricAlarmCommand, type PutMetricAlarmCommandInput } from '@aws-sdk/client-cloudwatch';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  type KeySchemaElement,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import {
  CreateArchiveCommand,
  CreateEventBusCommand,
  DescribeArchiveCommand,
  DescribeEventBusCommand,
  PutRuleCommand,
  PutTargetsCommand,
  UpdateArchiveCommand,
} from '@aws-sdk/client-eventbridge';
import {
  type BucketLocationConstraint,
  CreateBucketCommand,
  GetBucketNotificationConfigurationCommand,
  type NotificationConfiguration,
  PutBucketNotificationConfigurationCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { type AlarmDef, alarmDefinitions, type MetricRef, RUNBOOKS_KEY } from '../monitoring/alarms.ts';
import { registryNameFor } from '../services/shared/schema/registry.ts';
import {
  ARCHIVE,
  archiveRetentionDays,
  PREFIXES,
  QUEUES,
  type QueueName,
  RULES,
  resourceNames,
  ruleEventPattern,
  SCHEDULES,
  type StackOutputs,
  TABLES,
  type TableDef,
  TOPICS,
} from '../topology/topology.ts';
import { destroyClients, type LocalClients, localClients } from './clients.ts';
import { ProvisionError } from './errors.ts';
import { ensureRegistry } from './registry.ts';

export interface ProvisionInput {
  readonly stage: string;
  readonly region: string;
  readonly endpoint: string;
  readonly brokers: readonly string[];
  /**
   * The Glue Schema Registry to use (created when missing); default `rowstream-<stage>-schemas`.
   * Throwaway test stages share one: Glue (and moto) allow 10 registries per account and Region.
   */
  readonly schemaRegistry?: string;
  /** Receives one line per resource ensured; silent by default. */
  readonly log?: (line: string) => void;
}

/** Dead-letter queues keep messages as long as SQS allows (14 days), so a weekend is no data loss. */
export const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;

/** ID of the bucket's only notification configuration (a constant so re-provisioning compares equal). */
export const INBOUND_NOTIFICATION_ID = 'rowstream-inbound-to-planner';
/** ID of each rule's queue target. */
export const RULE_TARGET_ID = 'queue';

/** The longest stage whose physical names still fit every service's limit. */
export const MAX_STAGE_LENGTH = 20;

/**
 * Stage names become part of S3 bucket names (lowercase letters, digits, hyphens, at most 63),
 * archive names (at most 48) and queue names: keep them short and plain.
 */
export function assertValidStage(stage: string): void {
  if (!/^[a-z][a-z0-9-]*$/.test(stage) || stage.endsWith('-') || stage.length > MAX_STAGE_LENGTH) {
    throw new ProvisionError(
      `stage "${stage}" is not valid: use 1-${MAX_STAGE_LENGTH} lowercase letters, digits or hyphens, starting with a letter`,
    );
  }
}

export function ruleArn(region: string, accountId: string, busName: string, ruleName: string): string {
  const bus = busName === 'default' ? '' : `${busName}/`;
  return `arn:aws:events:${region}:${accountId}:rule/${bus}${ruleName}`;
}

export function topicArn(region: string, accountId: string, topicName: string): string {
  return `arn:aws:sns:${region}:${accountId}:${topicName}`;
}

/** The queue the alert topics' subscriptions name in their RedrivePolicy. */
export const ALERT_DELIVERY_DLQ: QueueName = 'alertDelivery';

export function accountIdOf(arn: string): string {
  const account = arn.split(':')[4];
  if (!account) throw new ProvisionError(`cannot read the account id from ARN ${arn}`);
  return account;
}

/** The bus (name) a rule of the topology lives on. */
export function ruleBusName(stage: string, bus: 'custom' | 'default'): string {
  return bus === 'custom' ? resourceNames(stage).busName : 'default';
}

interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Principal: { Service: string };
  Action: 'sqs:SendMessage';
  Resource: string;
  Condition: { ArnEquals: { 'aws:SourceArn': string[] } };
}

/**
 * The queue policies the topology needs, by queue: S3 may send the bucket's notifications to the
 * planner queue; EventBridge may send each rule's matches to its target queue and the dead
 * letters of every rule target to the rule-targets DLQ; SNS may send what the alert topics could
 * not deliver to a subscription to the alert-delivery DLQ. Pure, so it is unit-tested.
 */
export function queuePolicies(input: {
  readonly stage: string;
  readonly region: string;
  readonly accountId: string;
  readonly queueArns: Record<QueueName, string>;
}): Partial<Record<QueueName, { Version: '2012-10-17'; Statement: PolicyStatement[] }>> {
  const { stage, region, accountId, queueArns } = input;
  const names = resourceNames(stage);
  const statements = new Map<QueueName, PolicyStatement[]>();
  const add = (queue: QueueName, statement: Omit<PolicyStatement, 'Resource' | 'Effect' | 'Action'>) => {
    const list = statements.get(queue) ?? [];
    list.push({ ...statement, Effect: 'Allow', Action: 'sqs:SendMessage', Resource: queueArns[queue] });
    statements.set(queue, list);
  };

  add('planner', {
    Sid: 'S3InboundNotifications',
    Principal: { Service: 's3.amazonaws.com' },
    Condition: { ArnEquals: { 'aws:SourceArn': [`arn:aws:s3:::${names.bucket}`] } },
  });

  const rulesByQueue = new Map<QueueName, string[]>();
  for (const rule of RULES) {
    const arn = ruleArn(region, accountId, ruleBusName(stage, rule.bus), names.rules[rule.name] ?? rule.name);
    rulesByQueue.set(rule.target.queue, [...(rulesByQueue.get(rule.target.queue) ?? []), arn]);
  }
  for (const [queue, arns] of rulesByQueue) {
    add(queue, {
      Sid: 'EventBridgeRuleTargets',
      Principal: { Service: 'events.amazonaws.com' },
      Condition: { ArnEquals: { 'aws:SourceArn': arns } },
    });
  }
  add('ruleTargets', {
    Sid: 'EventBridgeDeadLetters',
    Principal: { Service: 'events.amazonaws.com' },
    Condition: { ArnEquals: { 'aws:SourceArn': [...rulesByQueue.values()].flat() } },
  });
  // Only rowstream's own alert topics may dead-letter here, whatever subscriptions operators add.
  add(ALERT_DELIVERY_DLQ, {
    Sid: 'SnsSubscriptionDeadLetters',
    Principal: { Service: 'sns.amazonaws.com' },
    Condition: {
      ArnEquals: { 'aws:SourceArn': TOPICS.map((t) => topicArn(region, accountId, names.topics[t.name])) },
    },
  });

  return Object.fromEntries(
    [...statements].map(([queue, list]) => [queue, { Version: '2012-10-17', Statement: list }]),
  ) as Partial<Record<QueueName, { Version: '2012-10-17'; Statement: PolicyStatement[] }>>;
}

/** The bucket's notification: every object created under inbound/ goes to the planner queue. */
export function inboundNotification(plannerQueueArn: string): NotificationConfiguration {
  return {
    QueueConfigurations: [
      {
        Id: INBOUND_NOTIFICATION_ID,
        QueueArn: plannerQueueArn,
        Events: ['s3:ObjectCreated:*'],
        Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: PREFIXES.inbound }] } },
      },
    ],
  };
}

const metricStat = (ref: MetricRef, periodSeconds: number) => ({
  Metric: {
    Namespace: ref.namespace,
    MetricName: ref.metricName,
    Dimensions: Object.entries(ref.dimensions).map(([Name, Value]) => ({ Name, Value })),
  },
  Period: periodSeconds,
  Stat: ref.statistic,
});

/**
 * The PutMetricAlarm request for one alarm definition: what stacks/ Monitoring.ts declares through CDK
 * (same name, description, metric or metric math, threshold, periods, missing-data treatment; actions
 * only for `direct` alarms), so the local stage has the cloud stage's alarms. Pure, unit-tested.
 */
export function metricAlarmInput(def: AlarmDef, topicArn: string): PutMetricAlarmCommandInput {
  const src = def.source;
  const actions = def.delivery === 'direct' ? { AlarmActions: [topicArn], OKActions: [topicArn] } : {};
  const common = {
    AlarmName: def.name,
    AlarmDescription: def.description,
    Threshold: def.threshold,
    ComparisonOperator: def.comparison,
    EvaluationPeriods: def.evaluationPeriods,
    DatapointsToAlarm: def.datapointsToAlarm,
    TreatMissingData: def.treatMissingData,
    ActionsEnabled: true,
    ...actions,
  };
  if (src.kind === 'metric') {
    const m = src.metric;
    return {
      ...common,
      Namespace: m.namespace,
      MetricName: m.metricName,
      Dimensions: Object.entries(m.dimensions).map(([Name, Value]) => ({ Name, Value })),
      Statistic: m.statistic as PutMetricAlarmCommandInput['Statistic'],
      Period: m.periodSeconds,
    };
  }
  return {
    ...common,
    Metrics: [
      { Id: 'expr_1', Expression: src.expression, Label: src.label, ReturnData: true },
      ...Object.entries(src.metrics).map(([id, ref]) => ({
        Id: id,
        MetricStat: metricStat(ref, src.periodSeconds),
        ReturnData: false,
      })),
    ],
  };
}

/** docs/runbooks.md of this checkout: the runbooks this version ships. */
export const RUNBOOKS_FILE = new URL('../docs/runbooks.md', import.meta.url);

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : '';
}

async function ensureQueue(
  clients: LocalClients,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  // CreateQueue with attributes fails when the queue exists with other values; creating bare and
  // then setting the attributes converges whatever was there before.
  const created = await clients.sqs.send(new CreateQueueCommand({ QueueName: name }));
  const url = created.QueueUrl;
  if (!url) throw new ProvisionError(`CreateQueue ${name} returned no QueueUrl`);
  await clients.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }));
  const got = await clients.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  const arn = got.Attributes?.QueueArn;
  if (!arn) throw new ProvisionError(`GetQueueAttributes ${name} returned no QueueArn`);
  return { url, arn };
}

async function ensureBucket(clients: LocalClients, bucket: string, region: string): Promise<void> {
  try {
    await clients.s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        ...(region === 'us-east-1'
          ? {}
          : { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } }),
      }),
    );
  } catch (error) {
    if (errorName(error) !== 'BucketAlreadyOwnedByYou') throw error;
  }
  await clients.s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
}

function sameNotification(current: NotificationConfiguration, wanted: NotificationConfiguration): boolean {
  const pick = (c: NotificationConfiguration) =>
    JSON.stringify(
      (c.QueueConfigurations ?? []).map((q) => ({
        id: q.Id,
        arn: q.QueueArn,
        events: [...(q.Events ?? [])].sort(),
        rules: (q.Filter?.Key?.FilterRules ?? []).map((r) => `${r.Name?.toLowerCase()}=${r.Value}`).sort(),
      })),
    );
  return (
    pick(current) === pick(wanted) &&
    (current.TopicConfigurations ?? []).length === 0 &&
    (current.LambdaFunctionConfigurations ?? []).length === 0
  );
}

async function ensureTable(clients: LocalClients, name: string, def: TableDef): Promise<void> {
  const attributeNames = new Set<string>([def.partitionKey]);
  if (def.sortKey) attributeNames.add(def.sortKey);
  for (const index of def.indexes) {
    attributeNames.add(index.partitionKey);
    if (index.sortKey) attributeNames.add(index.sortKey);
  }
  // Every key attribute of the topology is a string (ids, statuses, ISO timestamps).
  const attributeDefinitions = [...attributeNames].map((a) => ({
    AttributeName: a,
    AttributeType: 'S' as const,
  }));
  const keySchema = (pk: string, sk?: string): KeySchemaElement[] => [
    { AttributeName: pk, KeyType: 'HASH' },
    ...(sk ? [{ AttributeName: sk, KeyType: 'RANGE' as const }] : []),
  ];
  const gsi = (index: TableDef['indexes'][number]) => ({
    IndexName: index.name,
    KeySchema: keySchema(index.partitionKey, index.sortKey),
    Projection: { ProjectionType: 'ALL' as const },
  });

  try {
    await clients.dynamodb.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: attributeDefinitions,
        KeySchema: keySchema(def.partitionKey, def.sortKey),
        ...(def.indexes.length > 0 ? { GlobalSecondaryIndexes: def.indexes.map(gsi) } : {}),
      }),
    );
  } catch (error) {
    if (errorName(error) !== 'ResourceInUseException') throw error;
    const existing = await clients.dynamodb.send(new DescribeTableCommand({ TableName: name }));
    const key = existing.Table?.KeySchema?.map((k) => `${k.AttributeName}:${k.KeyType}`).join(',');
    const wantedKey = keySchema(def.partitionKey, def.sortKey)
      .map((k) => `${k.AttributeName}:${k.KeyType}`)
      .join(',');
    if (key !== wantedKey) {
      throw new ProvisionError(
        `table ${name} exists with key (${key}) but the topology wants (${wantedKey}); ` +
          'restart the emulator (npm run local:down && npm run local:up) to start from scratch',
      );
    }
    const present = new Set((existing.Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName));
    for (const index of def.indexes.filter((i) => !present.has(i.name))) {
      await clients.dynamodb.send(
        new UpdateTableCommand({
          TableName: name,
          AttributeDefinitions: attributeDefinitions,
          GlobalSecondaryIndexUpdates: [{ Create: gsi(index) }],
        }),
      );
    }
  }

  if (def.ttlAttribute) {
    const ttl = await clients.dynamodb.send(new DescribeTimeToLiveCommand({ TableName: name }));
    const description = ttl.TimeToLiveDescription;
    if (description?.TimeToLiveStatus !== 'ENABLED' || description.AttributeName !== def.ttlAttribute) {
      await clients.dynamodb.send(
        new UpdateTimeToLiveCommand({
          TableName: name,
          TimeToLiveSpecification: { AttributeName: def.ttlAttribute, Enabled: true },
        }),
      );
    }
  }
}

/**
 * Creates exactly the topology of topology/topology.ts for `stage` on the emulator at `endpoint`,
 * idempotently: running it again converges to the same resources and changes nothing visible
 * (the bucket notification is only re-put when it differs, so no extra s3:TestEvent is sent).
 *
 * Schedules become EventBridge rules with their ScheduleExpression on the default bus and no
 * target: moto never fires them, the local runner calls the scheduled services itself.
 */
export async function provision(input: ProvisionInput): Promise<StackOutputs> {
  const { stage, region, endpoint } = input;
  const log = input.log ?? (() => {});
  assertValidStage(stage);
  const names = resourceNames(stage);
  const clients = localClients({ endpoint, region });
  try {
    // Queues: every DLQ first, so the source queue's RedrivePolicy can name it.
    const queues = {} as Record<
      QueueName,
      { name: string; url: string; arn: string; dlqUrl: string | null; dlqArn: string | null }
    >;
    for (const def of QUEUES) {
      const { name, dlqName } = names.queues[def.name];
      let dlq: { url: string; arn: string } | null = null;
      if (dlqName && def.maxReceiveCount !== null) {
        dlq = await ensureQueue(clients, dlqName, {
          MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS),
          VisibilityTimeout: String(def.visibilityTimeoutSeconds),
        });
      }
      const main = await ensureQueue(clients, name, {
        VisibilityTimeout: String(def.visibilityTimeoutSeconds),
        MessageRetentionPeriod: String(def.retentionSeconds),
        ...(dlq && def.maxReceiveCount !== null
          ? {
              RedrivePolicy: JSON.stringify({
                deadLetterTargetArn: dlq.arn,
                maxReceiveCount: def.maxReceiveCount,
              }),
            }
          : {}),
      });
      queues[def.name] = {
        name,
        url: main.url,
        arn: main.arn,
        dlqUrl: dlq?.url ?? null,
        dlqArn: dlq?.arn ?? null,
      };
      log(`queue ${name}${dlq ? ` (+ DLQ ${dlqName}, maxReceiveCount ${def.maxReceiveCount})` : ''}`);
    }
    const accountId = accountIdOf(queues.planner.arn);

    // Policies before the bucket notification: S3 checks it may deliver when the notification is put.
    const policies = queuePolicies({
      stage,
      region,
      accountId,
      queueArns: Object.fromEntries(Object.entries(queues).map(([k, q]) => [k, q.arn])) as Record<
        QueueName,
        string
      >,
    });
    for (const [queue, policy] of Object.entries(policies) as [QueueName, unknown][]) {
      await clients.sqs.send(
        new SetQueueAttributesCommand({
          QueueUrl: queues[queue].url,
          Attributes: { Policy: JSON.stringify(policy) },
        }),
      );
    }
    log(`queue policies for ${Object.keys(policies).join(', ')}`);

    await ensureBucket(clients, names.bucket, region);
    const wanted = inboundNotification(queues.planner.arn);
    const current = await clients.s3.send(
      new GetBucketNotificationConfigurationCommand({ Bucket: names.bucket }),
    );
    if (!sameNotification(current, wanted)) {
      await clients.s3.send(
        new PutBucketNotificationConfigurationCommand({
          Bucket: names.bucket,
          NotificationConfiguration: wanted,
        }),
      );
    }
    log(`bucket ${names.bucket} (versioned; ${PREFIXES.inbound} ObjectCreated -> ${queues.planner.name})`);

    const tables = {} as Record<(typeof TABLES)[number]['name'], string>;
    for (const def of TABLES) {
      const name = names.tables[def.name];
      await ensureTable(clients, name, def);
      tables[def.name] = name;
      log(`table ${name}${def.indexes.length ? ` (GSI ${def.indexes.map((i) => i.name).join(', ')})` : ''}`);
    }

    try {
      await clients.events.send(new CreateEventBusCommand({ Name: names.busName }));
    } catch (error) {
      if (errorName(error) !== 'ResourceAlreadyExistsException') throw error;
    }
    const bus = await clients.events.send(new DescribeEventBusCommand({ Name: names.busName }));
    const busArn = bus.Arn;
    if (!busArn) throw new ProvisionError(`DescribeEventBus ${names.busName} returned no Arn`);
    log(`event bus ${names.busName}`);

    const archivePattern = JSON.stringify(ARCHIVE.eventPattern);
    const retentionDays = archiveRetentionDays(stage);
    try {
      await clients.events.send(
        new CreateArchiveCommand({
          ArchiveName: names.archiveName,
          EventSourceArn: busArn,
          EventPattern: archivePattern,
          RetentionDays: retentionDays,
          Description: 'every rowstream event on the bus',
        }),
      );
    } catch (error) {
      if (errorName(error) !== 'ResourceAlreadyExistsException') throw error;
      await clients.events.send(
        new UpdateArchiveCommand({
          ArchiveName: names.archiveName,
          EventPattern: archivePattern,
          RetentionDays: retentionDays,
        }),
      );
    }
    const archive = await clients.events.send(new DescribeArchiveCommand({ ArchiveName: names.archiveName }));
    const archiveArn = archive.ArchiveArn;
    if (!archiveArn) throw new ProvisionError(`DescribeArchive ${names.archiveName} returned no ArchiveArn`);
    log(`archive ${names.archiveName} (${retentionDays} days)`);

    const rules: Record<string, { name: string; bus: string; arn: string }> = {};
    for (const def of RULES) {
      const name = names.rules[def.name] ?? def.name;
      const busName = ruleBusName(stage, def.bus);
      const put = await clients.events.send(
        new PutRuleCommand({
          Name: name,
          EventBusName: busName,
          EventPattern: JSON.stringify(ruleEventPattern(def, stage)),
          State: 'ENABLED',
          Description: def.description,
        }),
      );
      await clients.events.send(
        new PutTargetsCommand({
          Rule: name,
          EventBusName: busName,
          Targets: [
            {
              Id: RULE_TARGET_ID,
              Arn: queues[def.target.queue].arn,
              DeadLetterConfig: { Arn: queues.ruleTargets.arn },
            },
          ],
        }),
      );
      rules[def.name] = { name, bus: busName, arn: put.RuleArn ?? ruleArn(region, accountId, busName, name) };
      log(`rule ${name} on ${busName} -> ${queues[def.target.queue].name}`);
    }

    const schedules: Record<string, StackOutputs['schedules'][string]> = {};
    for (const def of SCHEDULES) {
      const name = names.schedules[def.name] ?? def.name;
      await clients.events.send(
        new PutRuleCommand({
          Name: name,
          ScheduleExpression: def.expression,
          State: 'ENABLED',
          Description: `${def.description} (locally fired by the local runner, not by moto)`,
        }),
      );
      schedules[def.name] = {
        name,
        expression: def.expression,
        everySeconds: def.everySeconds,
        service: def.service,
      };
      log(`schedule ${name} ${def.expression} (no target: the local runner fires ${def.service})`);
    }

    const topics = {} as Record<(typeof TOPICS)[number]['name'], { name: string; arn: string }>;
    for (const def of TOPICS) {
      const name = names.topics[def.name];
      const created = await clients.sns.send(new CreateTopicCommand({ Name: name }));
      if (!created.TopicArn) throw new ProvisionError(`CreateTopic ${name} returned no TopicArn`);
      topics[def.name] = { name, arn: created.TopicArn };
      log(`topic ${name}`);
    }

    // Runbooks ship with the version: alert messages link this object (no guessed public URL).
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: names.bucket,
        Key: RUNBOOKS_KEY,
        Body: readFileSync(RUNBOOKS_FILE),
        ContentType: 'text/markdown; charset=utf-8',
        // Locally the emulator serves it to the links in alert messages (127.0.0.1 only); on AWS the
        // bucket stays private and messages link the S3 console.
        ACL: 'public-read',
      }),
    );
    log(`runbooks s3://${names.bucket}/${RUNBOOKS_KEY}`);

    // The cloud stage's alarms, from the same definitions; the local runner evaluates them.
    const defs = alarmDefinitions(stage, {
      runbooks: { kind: 'bucket', bucket: names.bucket, region, endpoint },
    });
    for (const def of defs) {
      await clients.cloudwatch.send(new PutMetricAlarmCommand(metricAlarmInput(def, topics[def.topic].arn)));
    }
    log(`${defs.length} alarms (${defs.map((d) => d.id).join(', ')})`);

    const registry = input.schemaRegistry ?? registryNameFor(stage);
    await ensureRegistry(endpoint, region, registry);
    log(`schema registry ${registry}`);

    return {
      stage,
      region,
      endpoint,
      bucket: names.bucket,
      prefixes: PREFIXES,
      busName: names.busName,
      busArn,
      archiveName: names.archiveName,
      archiveArn,
      queues,
      tables,
      topics,
      rules,
      schedules,
      kafka: { brokers: [...input.brokers] },
      schemaRegistry: registry,
    };
  } catch (error) {
    if (error instanceof ProvisionError) throw error;
    const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new ProvisionError(`provisioning stage ${stage} on ${endpoint} failed: ${detail}`, {
      cause: error,
    });
  } finally {
    destroyClients(clients);
  }
}
