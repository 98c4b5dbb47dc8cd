import { GetObjectCommand } from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkJobRows, type FaultStage, faultStage } from '../../testkit/producer-faults.ts';
import { ROWS_HEADER, rowLine } from '../../testkit/rows.ts';

/**
 * A row the broker would refuse (MESSAGE_TOO_LARGE against a topic's own, lower max.message.bytes)
 * is rejected with the broker's reason at job start, instead of failing the job; every other row
 * arrives, in order. Real broker, topic created with a small limit.
 */

let stage: FaultStage;

beforeAll(async () => {
  stage = await faultStage('plimit');
});

afterAll(async () => {
  await stage?.close();
});

describe("the topic's max.message.bytes", () => {
  it('one oversized row goes to rejects with the broker reason; all other rows arrive in order; COMPLETED_WITH_REJECTS', async () => {
    // Prepare: a topic whose max.message.bytes (4,096) is far below the producer's default (1 MB),
    // and a file of 2,000 rows where row 1,234 carries a 20 KB field.
    const rows = 2000;
    const big = 1234;
    const topic = stage.topic('limit');
    const kafka = new Kafka({
      clientId: 'it-limits',
      brokers: [...stage.outputs.kafka.brokers],
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const lines = [ROWS_HEADER.join(',')];
    for (let i = 1; i <= rows; i++)
      lines.push(i === big ? `${i},${'x'.repeat(20_000)},Oslo,"n",1.00,z` : rowLine(i));
    const job = await stage.job('limit', topic, rows, Buffer.from(`${lines.join('\n')}\n`));
    await stage.producer('limit');

    // Act
    await stage.start(job);
    const done = await stage.waitFor(
      job.jobId,
      (r) => r.status !== 'RUNNING' && r.status !== 'PLANNED',
      60_000,
      'the end',
    );

    // Assess: the job went on, with the right counts...
    expect(done).toMatchObject({
      status: 'COMPLETED_WITH_REJECTS',
      rowsDelivered: rows - 1,
      rowsRejected: 1,
    });
    // ...the rejects object names the row and the broker's limit...
    const uri = new URL(done.rejectsUri ?? '');
    const rejects = await stage.aws.s3.send(
      new GetObjectCommand({ Bucket: uri.host, Key: uri.pathname.slice(1) }),
    );
    const text = await rejects.Body!.transformToString();
    const rejected = text
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split(',').slice(0, 3).join(','));
    expect(rejected).toEqual([
      `${big},${Buffer.byteLength(lines.slice(0, big).join('\n')) + 1},MESSAGE_TOO_LARGE`,
    ]);
    // The reason says which limit: the topic's own max.message.bytes, as the producer learnt it.
    const detail = text.trim().split('\n')[1] ?? '';
    expect(detail).toMatch(new RegExp(`exceeds \\d+ \\(topic ${topic} max\\.message\\.bytes \\d+\\)`));
    // ...and every other row is on the topic once, in order, with its value.
    expect(
      await checkJobRows(stage.outputs.kafka.brokers, topic, job.jobId, rows, {
        values: true,
        skip: new Set([big]),
      }),
    ).toEqual({ delivered: rows - 1, duplicated: 0, missing: 0, outOfOrder: 0, badValues: 0 });
  }, 90_000);
});
