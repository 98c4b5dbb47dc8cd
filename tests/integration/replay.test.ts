/**
 * A replay is harmless: on the local stack, a day containing JobStarted, JobCompleted, JobRejected and a
 * CloudWatch alarm is replayed from the bus archive while the real planner, producer and alarm-router
 * run, and afterwards Kafka holds no extra record, the finished job was not started again, and nobody
 * got a second alert. A probe rule on the bus proves the replay did re-deliver those events.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, type Message } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplay } from '../../cli/replay/index.ts';
import { jobIdFor } from '../../events/ids.ts';
import { runSqsLambda } from '../../local/runner/sqs-lambda.ts';
import { alarmDefinitions } from '../../monitoring/alarms.ts';
import { alarmRouterFromEnv } from '../../services/alarm-router/handler.ts';
import { plannerFromEnv } from '../../services/planner/handler.ts';
import { awsClients } from '../../services/shared/aws.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import {
  getJob,
  type ProducerProcess,
  REPO,
  readTopic,
  startProducer,
  waitForJob,
} from '../../testkit/producer.ts';
import { bodies, createTestQueue, receiveUntil, tapBus } from '../../testkit/sqs.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: ReturnType<typeof awsClients>;
let producer: ProducerProcess;
const stop = new AbortController();
const loops: Promise<unknown>[] = [];
const logDir = join(REPO, '.local', 'test-logs');
const topic = `it-replay-${randomBytes(3).toString('hex')}`;
let alertsUrl: string;
let probeUrl: string;
/** Messages the alarm-router was handed, so the test knows the replay reached it. */
let routerReceived = 0;

const queue = (name: string) => createTestQueue(aws.sqs, name);

/** Waits until a queue has no message, visible or in flight, `quietMs` in a row. */
async function drained(url: string, quietMs = 3000, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let since = Date.now();
  while (Date.now() < deadline) {
    const a = await aws.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const n =
      Number(a.Attributes?.ApproximateNumberOfMessages) +
      Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible);
    if (n > 0) since = Date.now();
    else if (Date.now() - since >= quietMs) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} not drained in ${timeoutMs} ms`);
}

/** Every alert delivered so far (SNS envelopes in the subscribed queue), by subject. */
async function alerts(expectAtLeast: number, timeoutMs: number): Promise<string[]> {
  const got = await receiveUntil(aws.sqs, alertsUrl, (m) => m.length >= expectAtLeast, timeoutMs);
  return bodies<{ Subject: string; TopicArn: string }>(got).map(
    (b) => `${b.TopicArn.split(':').pop()}: ${b.Subject}`,
  );
}

beforeAll(async () => {
  ({ outputs, env } = await freshStack('rp'));
  aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  const serviceEnv = {
    ...env,
    ROWSTREAM_DEFAULT_TOPIC: topic,
    ROWSTREAM_METRICS_SINK: `file:${join(logDir, `replay-emf-${outputs.stage}.log`)}`,
  };

  // What people receive: one queue subscribed to all three topics (raw SNS envelopes, with the subject).
  const sink = await queue(`${outputs.stage}-alerts-sink`);
  alertsUrl = sink.url;
  for (const t of Object.values(outputs.topics)) {
    await aws.sns.send(new SubscribeCommand({ TopicArn: t.arn, Protocol: 'sqs', Endpoint: sink.arn }));
  }
  // The probe: a rule on the stage's bus that copies every rowstream event, so the test sees what a
  // replay re-delivered (replayed copies carry `replay-name`).
  probeUrl = (
    await tapBus(aws, outputs.busName, `${outputs.stage}-probe`, { source: [{ prefix: 'rowstream.' }] })
  ).url;

  // The services, as the local runner runs them: planner and router through the SQS Lambda runner,
  // the producer as its own process.
  const planner = plannerFromEnv(serviceEnv);
  const router = alarmRouterFromEnv(serviceEnv);
  loops.push(
    runSqsLambda({
      queueUrl: outputs.queues.planner.url,
      handler: planner.handler as never,
      sqs: aws.sqs,
      signal: stop.signal,
      waitSeconds: 1,
    }),
    runSqsLambda({
      queueUrl: outputs.queues.alarmRouter.url,
      handler: router.handler as never,
      sqs: aws.sqs,
      signal: stop.signal,
      waitSeconds: 1,
      onBatch: (b) => {
        routerReceived += b.received;
      },
    }),
  );
  producer = startProducer(
    { ...serviceEnv, ROWSTREAM_PRODUCER_WAIT_SECONDS: '1', ROWSTREAM_PRODUCER_SWEEP_MS: '2000' },
    join(logDir, `replay-producer-${outputs.stage}.log`),
  );
  await producer.waitForLog(/producer started/);
});

afterAll(async () => {
  stop.abort();
  producer?.kill('SIGTERM');
  await Promise.allSettled([...loops, producer?.exited]);
});

describe('replaying a day of events from the archive', () => {
  it('adds no Kafka record, restarts no finished job and sends no second alert', async () => {
    // Prepare: a real day. A good file becomes a job (JobStarted -> producer -> Kafka -> JobCompleted),
    // an empty file is rejected (JobRejected -> warning alert), and an alarm fires (critical alert).
    const from = new Date(Date.now() - 60_000);
    const rows = Array.from({ length: 25 }, (_, i) => `${i + 1},name-${i + 1},${(i * 1.5).toFixed(1)}`);
    const csv = Buffer.from(`id,name,amount\n${rows.join('\n')}\n`);
    const good = await aws.s3.send(
      new PutObjectCommand({ Bucket: outputs.bucket, Key: 'inbound/replay-good.csv', Body: csv }),
    );
    await aws.s3.send(
      new PutObjectCommand({
        Bucket: outputs.bucket,
        Key: 'inbound/replay-empty.csv',
        Body: Buffer.alloc(0),
      }),
    );
    const jobId = jobIdFor(outputs.bucket, 'inbound/replay-good.csv', {
      versionId: good.VersionId ?? null,
      etag: (good.ETag ?? '').replaceAll('"', ''),
    });
    const finished = await waitForJob(
      aws.doc,
      outputs.tables.jobs,
      jobId,
      (j) => j.status === 'COMPLETED',
      90_000,
    );
    const alarm = alarmDefinitions(outputs.stage).find(
      (a) => a.delivery === 'router' && a.severity === 'critical',
    )!;
    const at = new Date().toISOString();
    await aws.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: 'default',
            Source: 'aws.cloudwatch',
            DetailType: 'CloudWatch Alarm State Change',
            Resources: [`arn:aws:cloudwatch:${outputs.region}:123456789012:alarm:${alarm.name}`],
            Detail: JSON.stringify({
              alarmName: alarm.name,
              state: { value: 'ALARM', reason: 'Threshold Crossed: test', timestamp: at },
              previousState: { value: 'OK', reason: '', timestamp: at },
              configuration: { description: alarm.description },
            }),
          },
        ],
      }),
    );
    const before = await alerts(2, 30_000);
    expect(before.length, `alerts of the day: ${before.join(' | ')}`).toBeGreaterThanOrEqual(2);
    await drained(outputs.queues.producer.url);
    await drained(outputs.queues.alarmRouter.url);
    const recordsBefore = await readTopic(outputs.kafka.brokers, topic);
    expect(recordsBefore).toHaveLength(25);
    const originals = await receiveUntil(aws.sqs, probeUrl, () => false, 2_000);
    const to = new Date();

    const routerBefore = routerReceived;
    const producerSawReplay = producer.waitForLog(new RegExp(`already terminal.*${jobId}`), 60_000);
    // Act: replay the whole window, every event to every rule of the bus.
    const progress: string[] = [];
    const summary = await startReplay({
      stage: outputs.stage,
      region: outputs.region,
      endpoint: outputs.endpoint,
      archiveName: outputs.archiveName,
      busName: outputs.busName,
      from,
      to,
      onProgress: (l) => progress.push(l),
    });
    await new Promise((r) => setTimeout(r, 2000));
    await drained(outputs.queues.producer.url);
    await drained(outputs.queues.alarmRouter.url);

    // Assess: the replay happened...
    expect(summary.state).toBe('COMPLETED');
    expect(progress.at(-1)).toMatch(/COMPLETED 100%/);
    const probed = bodies<{ 'detail-type': string; 'replay-name'?: string; detail: { jobId?: string } }>(
      await receiveUntil(aws.sqs, probeUrl, () => false, 3_000),
    );
    const replayed = probed.filter((e) => e['replay-name'] === summary.name);
    const types = new Set(replayed.map((e) => e['detail-type']));
    expect([...types]).toEqual(
      expect.arrayContaining(['JobStarted.v1', 'JobCompleted.v1', 'JobRejected.v1']),
    );
    expect(originals.length).toBeGreaterThanOrEqual(replayed.length);
    // ...reached the consumers (the producer was handed the finished job again, the router its events)...
    expect(await producerSawReplay).toContain(jobId);
    expect(routerReceived).toBeGreaterThan(routerBefore);
    // ...and changed nothing downstream.
    const recordsAfter = await readTopic(outputs.kafka.brokers, topic);
    expect(recordsAfter.map((r) => `${r.partition}:${r.offset}`)).toEqual(
      recordsBefore.map((r) => `${r.partition}:${r.offset}`),
    );
    const job = (await getJob(aws.doc, outputs.tables.jobs, jobId)) as JobRecord;
    expect(job.status).toBe('COMPLETED');
    expect(job.attempts).toBe(finished.attempts);
    expect(job.finishedAt).toBe(finished.finishedAt);
    expect(job.updatedAt).toBe(finished.updatedAt);
    const second: Message[] = await receiveUntil(aws.sqs, alertsUrl, () => false, 5_000);
    expect(bodies<{ Subject: string }>(second).map((b) => b.Subject)).toEqual([]);
  });
});
