import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { StackContext } from 'sst/constructs';
import {
  ARCHIVE,
  archiveRetentionDays,
  QUEUES,
  type QueueName,
  RULES,
  resourceNames,
  ruleEventPattern,
  SCHEDULES,
  TOPICS,
} from '../topology/topology.ts';
import { type CheckovSkip, skipChecks } from './checkov.ts';
import { arn, bucketNameFor, cdkEventPattern, removalFor, tagService } from './common.ts';
import { settingsOf } from './settings.ts';

/** The queue that receives the bucket's `inbound/` ObjectCreated notifications (DESIGN.md, Flow). */
export const S3_NOTIFICATION_QUEUE: QueueName = 'planner';
/** The queue that collects events a rule could not deliver to its target. */
export const RULE_TARGET_DLQ: QueueName = 'ruleTargets';
/** The queue the alert topics' subscriptions name in their RedrivePolicy (docs/deploy.md, Subscribing). */
export const ALERT_DELIVERY_DLQ: QueueName = 'alertDelivery';

/** checkov's SQS encryption check looks for a KMS key only; every rowstream queue is encrypted with SSE-SQS. */
const SSE_SQS: CheckovSkip = {
  id: 'CKV_AWS_27',
  comment:
    'Encrypted at rest with SSE-SQS (SqsManagedSseEnabled). A KMS key would have to admit S3, EventBridge, SNS and CloudWatch in its policy to keep their deliveries working, and costs per key and per request, for the same protection of data that is only job ids and alarm names.',
};

export interface QueuePair {
  readonly queue: sqs.Queue;
  readonly dlq: sqs.Queue | null;
}

/**
 * Messaging: every queue and DLQ of the topology, the custom bus, its archive, and the rules with their
 * queue targets. Queues live here, next to the rules that target them, because a rule target grants
 * EventBridge on the queue's policy: in another stack that grant would make the two stacks depend on
 * each other.
 */
export function Bus({ stack, app }: StackContext) {
  tagService(stack, 'bus');
  const names = resourceNames(app.stage);
  const removalPolicy = removalFor(app.stage);

  const queues = {} as Record<QueueName, QueuePair>;
  for (const def of QUEUES) {
    const n = names.queues[def.name];
    const dlq = n.dlqName
      ? new sqs.Queue(stack, `${def.name}Dlq`, {
          queueName: n.dlqName,
          retentionPeriod: Duration.days(14),
          encryption: sqs.QueueEncryption.SQS_MANAGED,
          enforceSSL: true,
          removalPolicy,
        })
      : null;
    const queue = new sqs.Queue(stack, `${def.name}Queue`, {
      queueName: n.name,
      visibilityTimeout: Duration.seconds(def.visibilityTimeoutSeconds),
      retentionPeriod: Duration.seconds(def.retentionSeconds),
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy,
      ...(dlq && def.maxReceiveCount
        ? { deadLetterQueue: { queue: dlq, maxReceiveCount: def.maxReceiveCount } }
        : {}),
    });
    for (const q of [queue, dlq]) if (q) skipChecks(q, [SSE_SQS]);
    queues[def.name] = { queue, dlq };
  }

  // S3 may send to the planner queue. Written by name (the bucket's name is derived from the stage), so
  // this stack does not depend on Storage, which depends on this one for the queue.
  queues[S3_NOTIFICATION_QUEUE].queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'S3InboundNotifications',
      principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queues[S3_NOTIFICATION_QUEUE].queue.queueArn],
      conditions: {
        ArnLike: {
          'aws:SourceArn': arn('s3', bucketNameFor(stack, app.stage, settingsOf(app)), {
            region: false,
            account: false,
          }),
        },
        StringEquals: { 'aws:SourceAccount': stack.account },
      },
    }),
  );

  // SNS may dead-letter what the alert topics could not deliver to a subscription. The topics live in
  // Monitoring, which is built after this stack (SST's use() only reaches earlier stacks): naming them
  // by their stage-derived ARNs, like the bucket above, needs no cross-stack reference either way.
  queues[ALERT_DELIVERY_DLQ].queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'SnsSubscriptionDeadLetters',
      principals: [new iam.ServicePrincipal('sns.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queues[ALERT_DELIVERY_DLQ].queue.queueArn],
      conditions: {
        ArnEquals: { 'aws:SourceArn': TOPICS.map((t) => arn('sns', names.topics[t.name])) },
        StringEquals: { 'aws:SourceAccount': stack.account },
      },
    }),
  );

  // EventBridge may dead-letter what a schedule could not deliver to its function (the schedules live in
  // Pipeline, which uses this stack: named by their stage-derived ARNs, no reference back).
  queues[RULE_TARGET_DLQ].queue.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'ScheduleTargetDeadLetters',
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queues[RULE_TARGET_DLQ].queue.queueArn],
      conditions: {
        ArnEquals: {
          'aws:SourceArn': SCHEDULES.map((s) => arn('events', `rule/${names.schedules[s.name]}`)),
        },
      },
    }),
  );

  const bus = new events.EventBus(stack, 'EventBus', { eventBusName: names.busName });
  const archive = new events.CfnArchive(stack, 'Archive', {
    archiveName: names.archiveName,
    sourceArn: bus.eventBusArn,
    description: 'every rowstream event; replay with `rowstream replay --from --to`',
    eventPattern: ARCHIVE.eventPattern,
    retentionDays: archiveRetentionDays(app.stage),
  });
  // Removing prod must not delete a year of events.
  archive.applyRemovalPolicy(removalPolicy);
  const defaultBus = events.EventBus.fromEventBusName(stack, 'DefaultBus', 'default');

  const rules: Record<string, events.Rule> = {};
  for (const def of RULES) {
    const rule = new events.Rule(stack, `Rule-${def.name}`, {
      ruleName: names.rules[def.name],
      description: def.description,
      eventBus: def.bus === 'custom' ? bus : defaultBus,
      eventPattern: cdkEventPattern(ruleEventPattern(def, app.stage)) as events.EventPattern,
    });
    rule.addTarget(
      new targets.SqsQueue(queues[def.target.queue].queue, {
        deadLetterQueue: queues[RULE_TARGET_DLQ].queue,
        retryAttempts: 185,
        maxEventAge: Duration.hours(24),
      }),
    );
    rules[def.name] = rule;
  }

  stack.addOutputs({
    BusName: bus.eventBusName,
    BusArn: bus.eventBusArn,
    ArchiveArn: archive.attrArn,
    PlannerQueueUrl: queues.planner.queue.queueUrl,
    // What operators put in each subscription's RedrivePolicy (docs/deploy.md, Subscribing).
    AlertDeliveryDlqArn: queues[ALERT_DELIVERY_DLQ].queue.queueArn,
  });
  return { bus, archive, queues, rules };
}
