/**
 * Each fix of local/moto/launcher.py, proven against the running local stack through the AWS SDK.
 * Every test here fails on plain moto 5.2.1 (`launcher.py --no-fixes`).
 */
import { randomBytes } from 'node:crypto';
import {
  CloudWatchClient,
  DeleteAlarmsCommand,
  PutMetricAlarmCommand,
  SetAlarmStateCommand,
} from '@aws-sdk/client-cloudwatch';
import { CostExplorerClient, GetCostAndUsageCommand } from '@aws-sdk/client-cost-explorer';
import {
  DeleteRuleCommand,
  DescribeReplayCommand,
  EnableRuleCommand,
  type EventBridgeClient,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  StartReplayCommand,
} from '@aws-sdk/client-eventbridge';
import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyClients, type LocalClients, localClients } from '../../local/clients.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/config.ts';
import { seedCostExplorer } from '../../local/cost-explorer.ts';
import { measurePutEvents } from '../../local/measure-put-events.ts';
import { MOTO_FIXES, motoFixes } from '../../local/moto.ts';
import { bodies, createTestQueue, receiveUntil } from '../../testkit/sqs.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

interface DeliveredEvent {
  version: string;
  id: string;
  'detail-type': string;
  source: string;
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: Record<string, unknown>;
  'replay-name'?: string;
  'ingestion-time'?: unknown;
}

let outputs: StackOutputs;
let endpoint: string;
let aws: LocalClients;
const cleanup: (() => Promise<unknown>)[] = [];

const queue = createTestQueue;

async function rule(
  events: EventBridgeClient,
  input: {
    name: string;
    bus?: string;
    pattern?: object;
    schedule?: string;
    state?: 'ENABLED' | 'DISABLED';
    targetArn: string;
  },
): Promise<void> {
  await events.send(
    new PutRuleCommand({
      Name: input.name,
      EventBusName: input.bus ?? 'default',
      ...(input.pattern ? { EventPattern: JSON.stringify(input.pattern) } : {}),
      ...(input.schedule ? { ScheduleExpression: input.schedule } : {}),
      State: input.state ?? 'ENABLED',
    }),
  );
  await events.send(
    new PutTargetsCommand({
      Rule: input.name,
      EventBusName: input.bus ?? 'default',
      Targets: [{ Id: 't', Arn: input.targetArn }],
    }),
  );
  cleanup.push(async () => {
    await events.send(
      new RemoveTargetsCommand({ Rule: input.name, EventBusName: input.bus ?? 'default', Ids: ['t'] }),
    );
    await events.send(new DeleteRuleCommand({ Name: input.name, EventBusName: input.bus ?? 'default' }));
  });
}

async function deleteAll(sqs: SQSClient, url: string, messages: readonly Message[]): Promise<void> {
  for (let i = 0; i < messages.length; i += 10) {
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: url,
        Entries: messages
          .slice(i, i + 10)
          .map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
}

/** Receives `expected` messages and deletes them, so the next test on the same queue starts empty. */
async function drain(sqs: SQSClient, url: string, expected: number): Promise<Message[]> {
  const got = await receiveUntil(sqs, url, (m) => m.length >= expected, 10_000);
  await deleteAll(sqs, url, got);
  return got;
}

beforeAll(async () => {
  ({ outputs } = await freshStack('f'));
  endpoint = outputs.endpoint!;
  aws = localClients({ endpoint });
});

afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {});
  destroyClients(aws);
});

describe('the launcher', () => {
  it('runs the pinned moto with every rowstream fix', async () => {
    const report = await motoFixes(endpoint);
    expect(report.moto).toBe('5.2.1');
    expect(Object.keys(report.fixes).sort()).toEqual([...MOTO_FIXES].sort());
  });
});

describe('EventBridge rule matching', () => {
  it('a rule with only a ScheduleExpression is never matched by events put on the bus', async () => {
    const suffix = randomBytes(3).toString('hex');
    const scheduled = await queue(aws.sqs, `fx-sched-${suffix}`);
    const control = await queue(aws.sqs, `fx-ctl-${suffix}`);
    await rule(aws.events, {
      name: `fx-sched-${suffix}`,
      schedule: 'rate(5 minutes)',
      targetArn: scheduled.arn,
    });
    await rule(aws.events, {
      name: `fx-ctl-${suffix}`,
      pattern: { source: [`fx.${suffix}`] },
      targetArn: control.arn,
    });

    await aws.events.send(
      new PutEventsCommand({ Entries: [{ Source: `fx.${suffix}`, DetailType: 'Probe', Detail: '{"n":1}' }] }),
    );

    // Delivery is synchronous in moto: once the control rule has its event, the scheduled one would too.
    expect(await receiveUntil(aws.sqs, control.url, (m) => m.length >= 1)).toHaveLength(1);
    expect(await receiveUntil(aws.sqs, scheduled.url, () => false, 1500)).toHaveLength(0);
  });

  it('a DISABLED rule delivers nothing until it is enabled', async () => {
    const suffix = randomBytes(3).toString('hex');
    const target = await queue(aws.sqs, `fx-dis-${suffix}`);
    await rule(aws.events, {
      name: `fx-dis-${suffix}`,
      pattern: { source: [`fx.${suffix}`] },
      state: 'DISABLED',
      targetArn: target.arn,
    });
    const put = () =>
      aws.events.send(
        new PutEventsCommand({ Entries: [{ Source: `fx.${suffix}`, DetailType: 'Probe', Detail: '{}' }] }),
      );

    await put();
    expect(await receiveUntil(aws.sqs, target.url, () => false, 1500)).toHaveLength(0);

    await aws.events.send(new EnableRuleCommand({ Name: `fx-dis-${suffix}` }));
    await put();
    expect(await receiveUntil(aws.sqs, target.url, (m) => m.length >= 1)).toHaveLength(1);
  });

  it('a queue target receives the whole event as AWS sends it', async () => {
    await aws.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: outputs.busName,
            Source: 'rowstream.planner',
            DetailType: 'JobStarted.v1',
            Detail: JSON.stringify({ eventId: 'e-payload', jobId: 'j-payload' }),
            Resources: ['arn:aws:s3:::bucket/inbound/x.csv'],
          },
        ],
      }),
    );
    const [event] = bodies<DeliveredEvent>(await drain(aws.sqs, outputs.queues.producer.url, 1));
    expect(event).toMatchObject({
      version: '0',
      'detail-type': 'JobStarted.v1',
      source: 'rowstream.planner',
      account: '123456789012',
      region: LOCAL_REGION,
      resources: ['arn:aws:s3:::bucket/inbound/x.csv'],
      detail: { eventId: 'e-payload', jobId: 'j-payload' },
    });
    expect(event?.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(event?.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(event).not.toHaveProperty('ingestion-time');
  });

  it('an SNS topic target receives the event', async () => {
    const suffix = randomBytes(3).toString('hex');
    const subscriber = await queue(aws.sqs, `fx-sns-${suffix}`);
    const topic = await aws.sns.send(new CreateTopicCommand({ Name: `fx-sns-${suffix}` }));
    await aws.sns.send(
      new SubscribeCommand({ TopicArn: topic.TopicArn!, Protocol: 'sqs', Endpoint: subscriber.arn }),
    );
    await rule(aws.events, {
      name: `fx-sns-${suffix}`,
      pattern: { source: [`fx.${suffix}`] },
      targetArn: topic.TopicArn!,
    });

    const put = await aws.events.send(
      new PutEventsCommand({
        Entries: [{ Source: `fx.${suffix}`, DetailType: 'Probe', Detail: '{"via":"sns"}' }],
      }),
    );

    expect(put.FailedEntryCount).toBe(0);
    const [envelope] = bodies<{ Type: string; Message: string }>(
      await receiveUntil(aws.sqs, subscriber.url, (m) => m.length >= 1),
    );
    expect(envelope?.Type).toBe('Notification');
    expect(JSON.parse(envelope!.Message)).toMatchObject({ source: `fx.${suffix}`, detail: { via: 'sns' } });
  });
});

describe('EventBridge PutEvents speed', () => {
  it('sustains well over the ~5-8 calls/s of plain moto (10 routed + archived entries per call)', async () => {
    const rate = await measurePutEvents(endpoint, 3);
    console.log(
      `PutEvents: ${rate.customBus.toFixed(1)} calls/s on a rowstream bus, ${rate.defaultBus.toFixed(1)} on default`,
    );
    expect(rate.customBus).toBeGreaterThan(40);
  });
});

describe('EventBridge archive replay', () => {
  it('re-delivers only the archived events inside the time window, with replay-name, and completes', async () => {
    const now = Math.floor(Date.now() / 1000);
    const hoursAgo = (h: number) => new Date((now - h * 3600) * 1000);
    const put = await aws.events.send(
      new PutEventsCommand({
        Entries: [3, 2, 1].map((h) => ({
          EventBusName: outputs.busName,
          Source: 'rowstream.planner',
          DetailType: 'JobStarted.v1',
          Time: hoursAgo(h),
          Detail: JSON.stringify({ eventId: `replay-${h}h`, jobId: `j-${h}` }),
        })),
      }),
    );
    expect(put.FailedEntryCount).toBe(0);
    const originals = await drain(aws.sqs, outputs.queues.producer.url, 3);
    expect(originals).toHaveLength(3);

    const replayName = `fx-replay-${randomBytes(3).toString('hex')}`;
    await aws.events.send(
      new StartReplayCommand({
        ReplayName: replayName,
        EventSourceArn: outputs.archiveArn,
        EventStartTime: hoursAgo(2.5),
        EventEndTime: hoursAgo(1.5),
        Destination: { Arn: outputs.busArn },
      }),
    );

    const replayed = bodies<DeliveredEvent>(
      await receiveUntil(aws.sqs, outputs.queues.producer.url, () => false, 2500),
    );
    expect(replayed.map((e) => e.detail.eventId)).toEqual(['replay-2h']);
    expect(replayed[0]?.['replay-name']).toBe(replayName);
    const described = await aws.events.send(new DescribeReplayCommand({ ReplayName: replayName }));
    expect(described.State).toBe('COMPLETED');
  });

  it('replays only to the rules named in Destination.FilterArns', async () => {
    const now = Date.now();
    await aws.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: outputs.busName,
            Source: 'rowstream.planner',
            DetailType: 'JobStarted.v1',
            Time: new Date(now - 60_000),
            Detail: JSON.stringify({ eventId: 'filtered', jobId: 'j-f' }),
          },
        ],
      }),
    );
    await drain(aws.sqs, outputs.queues.producer.url, 1);
    const replayName = `fx-filter-${randomBytes(3).toString('hex')}`;
    await aws.events.send(
      new StartReplayCommand({
        ReplayName: replayName,
        EventSourceArn: outputs.archiveArn,
        EventStartTime: new Date(now - 120_000),
        EventEndTime: new Date(now),
        Destination: { Arn: outputs.busArn, FilterArns: [outputs.rules['ops-events']!.arn] },
      }),
    );
    expect(await receiveUntil(aws.sqs, outputs.queues.producer.url, () => false, 1500)).toHaveLength(0);
  });
});

describe('CloudWatch alarm state changes', () => {
  it('SetAlarmState puts AWS-shaped events on the default bus, routed by the alarm-state rule', async () => {
    const cloudwatch = new CloudWatchClient({
      endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    // Named like the stage's alarms: the alarm-state rule takes only `rowstream-<stage>-` alarms.
    const alarmName = `rowstream-${outputs.stage}-fx-alarm`;
    await cloudwatch.send(
      new PutMetricAlarmCommand({
        AlarmName: alarmName,
        AlarmDescription: 'rows are rejected',
        Namespace: 'Rowstream',
        MetricName: 'Errors',
        Dimensions: [
          { Name: 'Service', Value: 'producer' },
          { Name: 'Stage', Value: outputs.stage },
        ],
        Statistic: 'Sum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      }),
    );
    cleanup.push(() => cloudwatch.send(new DeleteAlarmsCommand({ AlarmNames: [alarmName] })));
    const set = (value: 'ALARM' | 'OK', reason: string) =>
      cloudwatch.send(
        new SetAlarmStateCommand({ AlarmName: alarmName, StateValue: value, StateReason: reason }),
      );

    await set('ALARM', 'test: errors');
    await set('ALARM', 'test: still errors'); // no change of state: no event
    await set('OK', 'test: recovered');

    const events = bodies<DeliveredEvent>(
      await receiveUntil(aws.sqs, outputs.queues.alarmRouter.url, (m) => m.length >= 3, 4000),
    ).filter((e) => e.detail.alarmName === alarmName);
    expect(events.map((e) => (e.detail.state as { value: string }).value)).toEqual(['ALARM', 'OK']);
    const [alarm] = events;
    expect(alarm).toMatchObject({
      source: 'aws.cloudwatch',
      'detail-type': 'CloudWatch Alarm State Change',
      resources: [`arn:aws:cloudwatch:${LOCAL_REGION}:123456789012:alarm:${alarmName}`],
      detail: {
        alarmName,
        state: { value: 'ALARM', reason: 'test: errors' },
        previousState: { value: 'OK' },
        configuration: {
          description: 'rows are rejected',
          metrics: [
            {
              metricStat: {
                metric: {
                  namespace: 'Rowstream',
                  name: 'Errors',
                  dimensions: { Service: 'producer', Stage: outputs.stage },
                },
                period: 60,
                stat: 'Sum',
              },
              returnData: true,
            },
          ],
        },
      },
    });
    expect((alarm!.detail.state as { timestamp: string }).timestamp).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/,
    );
    expect(events[1]?.detail.previousState).toMatchObject({ value: 'ALARM' });
    cloudwatch.destroy();
  });

  it('describes metric-math alarms by their expressions', async () => {
    const cloudwatch = new CloudWatchClient({
      endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    const alarmName = `rowstream-${outputs.stage}-fx-math`;
    await cloudwatch.send(
      new PutMetricAlarmCommand({
        AlarmName: alarmName,
        EvaluationPeriods: 1,
        Threshold: 5,
        ComparisonOperator: 'GreaterThanThreshold',
        Metrics: [
          { Id: 'e1', Expression: '100 * rejected / rows', Label: 'RejectedPercent', ReturnData: true },
          {
            Id: 'rejected',
            MetricStat: {
              Metric: { Namespace: 'Rowstream', MetricName: 'RowsRejected' },
              Period: 300,
              Stat: 'Sum',
            },
            ReturnData: false,
          },
          {
            Id: 'rows',
            MetricStat: { Metric: { Namespace: 'Rowstream', MetricName: 'Rows' }, Period: 300, Stat: 'Sum' },
            ReturnData: false,
          },
        ],
      }),
    );
    cleanup.push(() => cloudwatch.send(new DeleteAlarmsCommand({ AlarmNames: [alarmName] })));
    await cloudwatch.send(
      new SetAlarmStateCommand({ AlarmName: alarmName, StateValue: 'ALARM', StateReason: 'test' }),
    );

    const [event] = bodies<DeliveredEvent>(
      await receiveUntil(aws.sqs, outputs.queues.alarmRouter.url, (m) =>
        bodies<DeliveredEvent>(m).some((e) => e.detail.alarmName === alarmName),
      ),
    ).filter((e) => e.detail.alarmName === alarmName);
    const metrics = (event!.detail.configuration as { metrics: Record<string, unknown>[] }).metrics;
    expect(metrics[0]).toMatchObject({
      id: 'e1',
      expression: '100 * rejected / rows',
      label: 'RejectedPercent',
      returnData: true,
    });
    expect(metrics[1]).toMatchObject({
      id: 'rejected',
      returnData: false,
      metricStat: { metric: { namespace: 'Rowstream', name: 'RowsRejected' }, period: 300, stat: 'Sum' },
    });
    cloudwatch.destroy();
  });
});

describe('alarm actions and queue figures', () => {
  it("an alarm's SNS actions get CloudWatch's JSON message on ALARM and OK", async () => {
    // Prepare: a topic with a queue subscribed, an alarm whose actions name the topic
    const cloudwatch = new CloudWatchClient({
      endpoint,
      region: LOCAL_REGION,
      credentials: LOCAL_CREDENTIALS,
    });
    const topicArn = (await aws.sns.send(new CreateTopicCommand({ Name: `fx-actions-${outputs.stage}` })))
      .TopicArn!;
    const sub = await queue(aws.sqs, `fx-actions-${outputs.stage}`);
    await aws.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: sub.arn }));
    const alarmName = `fx-direct-${outputs.stage}`;
    await cloudwatch.send(
      new PutMetricAlarmCommand({
        AlarmName: alarmName,
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: 'x' }],
        Statistic: 'Maximum',
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        AlarmActions: [topicArn],
        OKActions: [topicArn],
      }),
    );
    cleanup.push(() => cloudwatch.send(new DeleteAlarmsCommand({ AlarmNames: [alarmName] })));
    // Act
    for (const value of ['ALARM', 'OK'] as const) {
      await cloudwatch.send(
        new SetAlarmStateCommand({ AlarmName: alarmName, StateValue: value, StateReason: `to ${value}` }),
      );
    }
    // Assess
    const got = await receiveUntil(aws.sqs, sub.url, (m) => m.length >= 2, 8000);
    const messages = bodies<{ Subject: string; Message: string }>(got).map((b) => ({
      subject: b.Subject,
      message: JSON.parse(b.Message) as Record<string, unknown>,
    }));
    expect(messages.map((m) => m.subject)).toEqual([
      `ALARM: "${alarmName}" in ${LOCAL_REGION}`,
      `OK: "${alarmName}" in ${LOCAL_REGION}`,
    ]);
    expect(messages[0]?.message).toMatchObject({
      AlarmName: alarmName,
      NewStateValue: 'ALARM',
      OldStateValue: expect.stringMatching(/^(OK|INSUFFICIENT_DATA)$/),
      NewStateReason: 'to ALARM',
      Trigger: { MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0 },
    });
  });

  it('sqs-queue-stats answers visible, in-flight and the age of the oldest message', async () => {
    const q = await queue(aws.sqs, `fx-stats-${outputs.stage}`);
    const name = q.url.split('/').at(-1)!;
    const stats = async () =>
      (await (
        await fetch(`${endpoint}/moto-api/rowstream/sqs-queue-stats?queue=${name}&region=${LOCAL_REGION}`)
      ).json()) as Record<string, number>;
    expect(await stats()).toMatchObject({ visible: 0, inFlight: 0, oldestAgeSeconds: 0 });
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'a' }));
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: 'b' }));
    await aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 1, VisibilityTimeout: 60 }),
    );
    await new Promise((r) => setTimeout(r, 2100));
    const s = await stats();
    expect(s).toMatchObject({ visible: 1, inFlight: 1, delayed: 0 });
    expect(s.oldestAgeSeconds).toBeGreaterThanOrEqual(2);
    const missing = await fetch(
      `${endpoint}/moto-api/rowstream/sqs-queue-stats?queue=nope&region=${LOCAL_REGION}`,
    );
    expect(missing.status).toBe(404);
  });
});

describe('Cost Explorer', () => {
  it('answers what seedCostExplorer queued', async () => {
    const ce = new CostExplorerClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
    const start = `2026-0${1 + Math.floor(Math.random() * 8)}-01`;
    const amount = (Math.random() * 100).toFixed(4);
    await seedCostExplorer(endpoint, [
      {
        ResultsByTime: [
          {
            TimePeriod: { Start: start, End: '2026-12-01' },
            Total: { UnblendedCost: { Amount: amount, Unit: 'USD' } },
            Groups: [],
            Estimated: true,
          },
        ],
      },
    ]);
    const got = await ce.send(
      new GetCostAndUsageCommand({
        TimePeriod: { Start: start, End: '2026-12-01' },
        Granularity: 'MONTHLY',
        Metrics: ['UnblendedCost'],
        Filter: { Tags: { Key: 'stage', Values: [outputs.stage] } },
      }),
    );
    expect(got.ResultsByTime?.[0]?.Total?.UnblendedCost?.Amount).toBe(amount);
    ce.destroy();
  });
});
