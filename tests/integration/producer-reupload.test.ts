import { PutObjectCommand } from '@aws-sdk/client-s3';
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_METRICS } from '../../services/shared/metrics.ts';
import { type InProcessPlanner, inProcessPlanner } from '../../testkit/planner.ts';
import { checkJobRows, type FaultStage, faultStage } from '../../testkit/producer-faults.ts';
import { ROWS_HEADER, rowLine } from '../../testkit/rows.ts';

/**
 * The same object version arriving again (S3 delivers a notification twice, an operator re-drives
 * it) after its job COMPLETED: the planner recognises the version (same job id), starts no second
 * job and publishes no JobStarted, so nothing is sent again. Real S3 notification, the planner as its
 * Lambda entry wires it, a real producer process, the topic checked row by row.
 */

let stage: FaultStage;
let planner: InProcessPlanner;
const drainPlanner = () => planner.drain();

beforeAll(async () => {
  stage = await faultStage('preup');
  planner = inProcessPlanner(stage.env, stage.aws, { metrics: NO_METRICS });
  // Provisioning's s3:TestEvent.
  await drainPlanner();
});

afterAll(async () => {
  await stage?.close();
});

/** Takes messages off a queue until `enough` holds or the time is up. */
async function take(queueUrl: string, enough: (bodies: string[]) => boolean, timeoutMs: number) {
  const bodies: string[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !enough(bodies)) {
    const got = await stage.aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    const msgs = got.Messages ?? [];
    if (msgs.length === 0) continue;
    bodies.push(...msgs.map((m) => m.Body ?? ''));
    await stage.aws.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
  return bodies;
}

describe('the same object version again', () => {
  it('after its job COMPLETED, a second notification of the version starts no job and sends no row again', async () => {
    // Prepare: an object put into inbound/ (its real notification kept for later), planned, produced.
    const rows = 5000;
    const key = `inbound/reupload-${Date.now()}.csv`;
    const lines = [ROWS_HEADER.join(',')];
    for (let i = 1; i <= rows; i++) lines.push(rowLine(i));
    await stage.aws.s3.send(
      new PutObjectCommand({ Bucket: stage.outputs.bucket, Key: key, Body: `${lines.join('\n')}\n` }),
    );
    const [notification] = await take(
      stage.outputs.queues.planner.url,
      (b) => b.some((x) => x.includes(key)),
      10_000,
    );
    expect(notification).toContain('ObjectCreated');
    const producer = await stage.producer('reup');
    const claimed = producer.waitForLog(/job claimed/, 60_000);
    await stage.aws.sqs.send(
      new SendMessageCommand({ QueueUrl: stage.outputs.queues.planner.url, MessageBody: notification! }),
    );
    await drainPlanner();
    const jobId = JSON.parse(await claimed).jobId as string;
    const first = await stage.waitFor(jobId, (r) => r.status === 'COMPLETED', 60_000, 'COMPLETED');
    await stage.stopProducers();
    const topic = first.topic ?? '';

    // Act: the same notification again (same bucket, key, version).
    await stage.aws.sqs.send(
      new SendMessageCommand({ QueueUrl: stage.outputs.queues.planner.url, MessageBody: notification! }),
    );
    const again = await drainPlanner();

    // Assess: handled (no failure), no JobStarted for it, still one job for the key, the job untouched,
    // and the topic holds each row once.
    expect([again.received, again.failed]).toEqual([1, 0]);
    const started = await take(stage.outputs.queues.producer.url, (b) => b.length > 0, 3000);
    expect(started.filter((b) => b.includes(jobId))).toEqual([]);
    const jobsForKey = await stage.aws.doc.send(
      new ScanCommand({
        TableName: stage.outputs.tables.jobs,
        FilterExpression: '#k = :k',
        ExpressionAttributeNames: { '#k': 'key' },
        ExpressionAttributeValues: { ':k': key },
      }),
    );
    expect(jobsForKey.Items?.map((i) => i.jobId)).toEqual([jobId]);
    expect(await stage.record(jobId)).toMatchObject({
      status: 'COMPLETED',
      attempts: first.attempts,
      rowsDelivered: rows,
    });
    expect(await checkJobRows(stage.outputs.kafka.brokers, topic, jobId, rows, { values: true })).toEqual({
      delivered: rows,
      duplicated: 0,
      missing: 0,
      outOfOrder: 0,
      badValues: 0,
    });
  }, 120_000);
});
