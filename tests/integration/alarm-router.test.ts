/**
 * alarm-router against the local stack: a CloudWatch alarm state change put on the DEFAULT bus (shape
 * of AWS's event) is routed by the stage's `alarm-state` rule to the router's queue; the router runs
 * through the local Lambda runner; what people get is read through an SQS queue subscribed to the
 * critical topic.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import { DeleteMessageBatchCommand, type Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyClients, type LocalClients, localClients } from '../../local/clients.ts';
import { runSqsLambda } from '../../local/runner/sqs-lambda.ts';
import { alarmDefinitions } from '../../monitoring/alarms.ts';
import { createAlarmRouterService } from '../../services/alarm-router/handler.ts';
import { AlarmRouterEnv } from '../../services/alarm-router/settings.ts';
import { loadConfig } from '../../services/shared/config.ts';
import { createTestQueue, receiveUntil, tapBus } from '../../testkit/sqs.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

interface SnsEnvelope {
  Type: string;
  TopicArn: string;
  Subject: string;
  Message: string;
  MessageAttributes: Record<string, { Type: string; Value: string }>;
}

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: LocalClients;
let subscriptionUrl: string;
let routedUrl: string;
let tmp: string;
let emfPath: string;

const queue = (name: string) => createTestQueue(aws.sqs, name);

/** AWS's own shape of the event (source aws.cloudwatch, always on the default bus). */
async function putAlarmChange(alarmName: string, value: 'ALARM' | 'OK', previous: string, timestamp: string) {
  const out = await aws.events.send(
    new PutEventsCommand({
      Entries: [
        {
          EventBusName: 'default',
          Source: 'aws.cloudwatch',
          DetailType: 'CloudWatch Alarm State Change',
          Resources: [`arn:aws:cloudwatch:us-east-1:123456789012:alarm:${alarmName}`],
          Detail: JSON.stringify({
            alarmName,
            state: {
              value,
              reason:
                value === 'ALARM'
                  ? 'Threshold Crossed: 1 datapoint [4.0 (25/11/26 10:00:00)] was greater than the threshold (0.0).'
                  : 'Threshold Crossed: 1 datapoint [0.0 (25/11/26 10:02:00)] was not greater than the threshold (0.0).',
              reasonData: JSON.stringify({
                version: '1.0',
                statistic: 'Maximum',
                period: 60,
                recentDatapoints: [value === 'ALARM' ? 4 : 0],
                threshold: 0,
              }),
              timestamp,
            },
            previousState: { value: previous, reason: '', timestamp },
            configuration: { description: 'rowstream alarm', metrics: [] },
          }),
        },
      ],
    }),
  );
  expect(out.FailedEntryCount ?? 0).toBe(0);
}

function routerService(over: Record<string, string> = {}) {
  const config = loadConfig(AlarmRouterEnv, {
    ...env,
    LOG_LEVEL: 'WARN',
    ROWSTREAM_METRICS_SINK: `file:${emfPath}`,
    ...over,
  });
  return createAlarmRouterService(config);
}

/** One run of the router over its queue, through the local Lambda runner, until the queue is empty. */
async function runRouter(over: Record<string, string> = {}, idleSeconds = 2) {
  const service = routerService(over);
  const controller = new AbortController();
  return runSqsLambda({
    queueUrl: outputs.queues.alarmRouter.url,
    handler: (event, context) => service.handler(event, context),
    sqs: aws.sqs,
    signal: controller.signal,
    waitSeconds: 1,
    stopWhenIdle: idleSeconds,
  });
}

/** CloudWatch's timestamp format, `seconds` from now. */
const stamp = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString().replace('Z', '+0000');

/** Messages that arrived on the critical topic's subscription since the last call (deleted once read). */
async function newAlerts(expected: number): Promise<SnsEnvelope[]> {
  // Wait for what is expected, then a little longer so an unexpected extra message would be seen too.
  const messages: Message[] = await receiveUntil(
    aws.sqs,
    subscriptionUrl,
    (m) => m.length > expected,
    expected > 0 ? 4000 : 3000,
  );
  if (messages.length > 0) {
    await aws.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: subscriptionUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
  return messages.map((m) => JSON.parse(m.Body!) as SnsEnvelope);
}

beforeAll(async () => {
  ({ outputs, env } = await freshStack('ar'));
  aws = localClients({ endpoint: env.AWS_ENDPOINT_URL! });
  tmp = await mkdtemp(join(tmpdir(), 'rowstream-ar-'));
  emfPath = join(tmp, 'alarm-router.emf.jsonl');
  const sub = await queue(`${outputs.stage}-critical-subscriber`);
  subscriptionUrl = sub.url;
  await aws.sns.send(
    new SubscribeCommand({ TopicArn: outputs.topics.critical.arn, Protocol: 'sqs', Endpoint: sub.arn }),
  );
  // AlertRouted.v1 on the stage's bus, caught by a rule of the test's own.
  routedUrl = (
    await tapBus(aws, outputs.busName, `${outputs.stage}-alert-routed`, { 'detail-type': ['AlertRouted.v1'] })
  ).url;
});

afterAll(async () => {
  if (aws) destroyClients(aws);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('alarm-router on the local stack', () => {
  it('routes an alarm state change from the default bus to exactly one critical message with attributes', async () => {
    // Prepare
    const alarm = alarmDefinitions(outputs.stage).find((a) => a.id === 'dlq-planner')!;
    await putAlarmChange(alarm.name, 'ALARM', 'OK', '2026-11-25T10:00:00.000+0000');
    // Act
    const run = await runRouter();
    // Assess
    expect(run.received).toBe(1);
    expect(run.failed).toBe(0);
    const alerts = await newAlerts(1);
    expect(alerts).toHaveLength(1);
    const a = alerts[0]!;
    expect(a.TopicArn).toBe(outputs.topics.critical.arn);
    expect(a.Subject).toBe(`[CRITICAL] rowstream ${outputs.stage}: Messages in DLQ planner-dlq`);
    expect(a.Subject.length).toBeLessThan(100);
    expect(a.Message).toContain('Value vs threshold: 4 > 0 messages.');
    // The runbook link points to the copy the stage ships in its bucket, and it resolves.
    const link = /Runbook: +(\S+)/.exec(a.Message)?.[1] ?? '';
    expect(link).toBe(`${env.AWS_ENDPOINT_URL}/${outputs.bucket}/runbooks/runbooks.md#dlq-not-empty`);
    const page = await fetch(link);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<a id="dlq-not-empty"></a>');
    expect(a.MessageAttributes.severity).toEqual({ Type: 'String', Value: 'critical' });
    expect(a.MessageAttributes.service).toEqual({ Type: 'String', Value: 'planner' });
    expect(a.MessageAttributes.kind).toEqual({ Type: 'String', Value: 'ALERT' });
    expect(a.MessageAttributes.alarmName?.Value).toBe(alarm.name);
    // AlertRouted.v1 went to the stage's bus.
    const routed = await receiveUntil(aws.sqs, routedUrl, (m) => m.length >= 1, 5000);
    expect(routed.map((m) => JSON.parse(m.Body!).detail)).toEqual([
      expect.objectContaining({ kind: 'ALERT', severity: 'critical', alarmName: alarm.name }),
    ]);
    // And AlertsRouted with its Severity dimension is in the EMF output.
    const emf = (await readFile(emfPath, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const point = emf.find((r) => r.AlertsRouted !== undefined);
    expect(point).toMatchObject({
      AlertsRouted: 1,
      Severity: 'critical',
      Service: 'alarm-router',
      Stage: outputs.stage,
    });
  });

  it('the same event again sends nothing new', async () => {
    // Prepare: the very same fact (alarm name + state timestamp), put again: a new envelope id, like a replay
    const alarm = alarmDefinitions(outputs.stage).find((a) => a.id === 'dlq-planner')!;
    await putAlarmChange(alarm.name, 'ALARM', 'OK', '2026-11-25T10:00:00.000+0000');
    // Act
    const run = await runRouter();
    // Assess
    expect(run.received).toBe(1);
    expect(run.deleted).toBe(1);
    expect(await newAlerts(0)).toEqual([]);
  });

  it('ALARM / OK / ALARM inside the suppression window: one alert, then one resolved, then nothing', async () => {
    // Prepare: changes minutes apart, the last one now, so the 15-minute window is still running
    const alarm = alarmDefinitions(outputs.stage).find((a) => a.id === 'job-stalled')!;
    const steps = [
      ['ALARM', 'OK', stamp(-360)],
      ['OK', 'ALARM', stamp(-180)],
      ['ALARM', 'OK', stamp(0)],
    ] as const;
    const kinds: string[] = [];
    for (const [value, previous, timestamp] of steps) {
      // Act: one change at a time, as CloudWatch spaces them by minutes
      await putAlarmChange(alarm.name, value, previous, timestamp);
      await runRouter();
      kinds.push(
        ...(await newAlerts(kinds.length < 2 ? 1 : 0)).map(
          (m) => `${m.MessageAttributes.kind?.Value}:${m.Subject}`,
        ),
      );
    }
    // Assess
    expect(kinds).toEqual([
      `ALERT:[CRITICAL] rowstream ${outputs.stage}: A RUNNING job made no progress`,
      `RESOLVED:[RESOLVED] rowstream ${outputs.stage}: A RUNNING job made no progress`,
    ]);
  });

  it('a flap is suppressed and the alarm still in ALARM when the window ends is paged once', async () => {
    // Prepare: an 8-second suppression window; ALARM, OK, ALARM a router run apart (1-2 s)
    const alarm = alarmDefinitions(outputs.stage).find((a) => a.id === 'dlq-producer')!;
    const routing = { ROWSTREAM_ALERT_ROUTING: JSON.stringify({ suppressionWindowSeconds: 8 }) };
    const steps = [
      ['ALARM', 'OK'],
      ['OK', 'ALARM'],
      ['ALARM', 'OK'],
    ] as const;
    let lastAlarmAt = '';
    for (const [value, previous] of steps) {
      lastAlarmAt = stamp(0);
      await putAlarmChange(alarm.name, value, previous, lastAlarmAt);
      await runRouter(routing, 1);
    }
    const first = await newAlerts(2);
    // Act: the router keeps polling its queue; the recheck it left there comes back when the window ends
    await runRouter(routing, 8);
    const late = await newAlerts(1);
    // Assess
    expect(first.map((m) => m.MessageAttributes.kind?.Value)).toEqual(['ALERT', 'RESOLVED']);
    expect(late.map((m) => m.MessageAttributes.kind?.Value)).toEqual(['ALERT']);
    expect(late[0]?.Subject).toBe(`[CRITICAL] rowstream ${outputs.stage}: Messages in DLQ producer-dlq`);
    expect(late[0]?.Message).toContain(
      `Still in ALARM since ${new Date(Date.parse(lastAlarmAt)).toISOString()}`,
    );
  });

  it('EventBridge refusing AlertRouted.v1 after the SNS publish: the redelivery pages no second time', async () => {
    // Prepare: the router's bus does not exist, so the step after the publish fails on the real stack
    // (dlq-planner was alerted by the first test: this OK resolves it)
    const alarm = alarmDefinitions(outputs.stage).find((a) => a.id === 'dlq-planner')!;
    const at = stamp(0);
    const body = JSON.stringify({
      version: '0',
      id: 'redelivered-envelope',
      'detail-type': 'CloudWatch Alarm State Change',
      source: 'aws.cloudwatch',
      account: '123456789012',
      time: new Date().toISOString(),
      region: 'us-east-1',
      resources: [],
      detail: {
        alarmName: alarm.name,
        state: { value: 'OK', reason: 'back', timestamp: at },
        previousState: { value: 'ALARM', reason: '', timestamp: at },
        configuration: { description: 'x', metrics: [] },
      },
    });
    const broken = routerService({ ROWSTREAM_BUS_NAME: `${outputs.stage}-no-such-bus` });
    const healthy = routerService();
    // Act: the first delivery fails after SNS accepted the message; SQS delivers the same body again
    await expect(broken.processRecord({ messageId: 'm1', body })).rejects.toThrow();
    const retry = await healthy.processRecord({ messageId: 'm1', body });
    // Assess: exactly one RESOLVED message, and the retry finished the job (AlertRouted.v1 once)
    expect(retry).toMatchObject({ outcome: 'sent', kind: 'RESOLVED' });
    const alerts = await newAlerts(1);
    expect(alerts.map((m) => m.MessageAttributes.kind?.Value)).toEqual(['RESOLVED']);
    const resolved = (await receiveUntil(aws.sqs, routedUrl, () => false, 4000))
      .map((m) => JSON.parse(m.Body!).detail)
      .filter((d) => d.alarmName === alarm.name && d.kind === 'RESOLVED');
    expect(resolved).toHaveLength(1);
  });
});
