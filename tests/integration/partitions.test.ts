import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { javaPartitionOf } from '../../services/producer/adapters/kafka-placement.ts';
import { awsClients } from '../../services/shared/aws.ts';
import {
  getJob,
  type ProducerProcess,
  REPO,
  readTopic,
  sendJobStarted,
  startProducer,
  uploadJob,
  waitForJob,
} from '../../testkit/producer.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

/**
 * Order on multi-partition topics, on the real broker: an un-keyed job keeps total order on one
 * partition, a keyed job puts each key where the Java client would, and partitions added to the topic
 * mid-job move nothing. Topics are created here (6 partitions); the producer runs with topic
 * auto-creation off, as in the cloud, so a job for a missing topic fails with TOPIC_NOT_FOUND.
 */

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: ReturnType<typeof awsClients>;
let producer: ProducerProcess;
let admin: ReturnType<Kafka['admin']>;
const logDir = join(REPO, '.local', 'test-logs');
const topicName = (name: string) => `it-partitions-${name}-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  ({ outputs, env } = await freshStack('part'));
  aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  admin = new Kafka({
    clientId: 'it',
    brokers: [...outputs.kafka.brokers],
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  producer = startProducer(
    {
      ...env,
      ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS: 'false',
      ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
      ROWSTREAM_PRODUCER_SWEEP_MS: '2000',
      // Small transactions and batches: the job runs long enough to add partitions while it runs.
      ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '500',
      ROWSTREAM_PRODUCER_BATCH_ROWS: '100',
      ROWSTREAM_PRODUCER_CHECKPOINT_ROWS: '500',
      ROWSTREAM_PRODUCER_CHECKPOINT_MS: '100',
      ROWSTREAM_METRICS_SINK: `file:${join(logDir, `producer-emf-${outputs.stage}.log`)}`,
    },
    join(logDir, `producer-${outputs.stage}.log`),
  );
  await producer.waitForLog(/producer started/);
});

afterAll(async () => {
  producer?.kill('SIGTERM');
  await producer?.exited;
  await admin?.disconnect();
});

/** Starts the job, and once its first rows are committed grows the topic from 6 to 12 partitions. */
async function runGrowingMidJob(topic: string, csv: Buffer, rows: number, keyColumn: string | null) {
  await admin.createTopics({ topics: [{ topic, numPartitions: 6 }], waitForLeaders: true });
  const job = await uploadJob(aws.s3, outputs.bucket, `inbound/${topic}.csv`, csv, {
    topic,
    totalRows: rows,
    options: { keyColumn, format: 'csv' },
  });
  await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
    doc: aws.doc,
    table: outputs.tables.jobs,
  });
  const started = await waitForJob(
    aws.doc,
    outputs.tables.jobs,
    job.jobId,
    (r) => (r.checkpoint?.rowsDone ?? 0) > 0 || r.status === 'COMPLETED' || r.status === 'FAILED',
  );
  await admin.createPartitions({ topicPartitions: [{ topic, count: 12 }] });
  const done = await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) => r.status === 'COMPLETED');
  return { job, rowsBeforeGrowth: started.checkpoint?.rowsDone ?? 0, done };
}

describe('partitions', () => {
  it('puts an un-keyed job on one partition, in order, row by row, while partitions are added', async () => {
    // Prepare
    const rows = 20_000;
    const lines = Array.from({ length: rows }, (_, i) => `${i + 1},name-${i + 1}`);
    const csv = Buffer.from(`id,name\n${lines.join('\n')}\n`);
    const topic = topicName('unkeyed');
    // Act
    const { rowsBeforeGrowth, done } = await runGrowingMidJob(topic, csv, rows, null);
    const records = await readTopic(outputs.kafka.brokers, topic);
    // Assess: the recorded placement says one partition out of the 6 at job start ...
    const placement = done.checkpoint?.placement;
    expect(placement).toMatchObject({ partitions: 6, keyed: false });
    expect(rowsBeforeGrowth).toBeLessThan(rows); // the growth happened mid-job
    // ... and every record is there, on that partition, once, in file order.
    expect(new Set(records.map((r) => r.partition))).toEqual(new Set([placement!.partition]));
    expect(records.map((r) => r.value)).toEqual(lines);
    expect(records.map((r) => Number(r.headers['rowstream-row']))).toEqual(lines.map((_, i) => i + 1));
  });

  it("puts each key on the Java client's partition for the job's count, in order, while partitions are added", async () => {
    // Prepare: 40 keys, 500 rows each, interleaved.
    const rows = 20_000;
    const lines = Array.from({ length: rows }, (_, i) => `key-${i % 40},${i + 1}`);
    const csv = Buffer.from(`k,seq\n${lines.join('\n')}\n`);
    const topic = topicName('keyed');
    // Act
    const { rowsBeforeGrowth, done } = await runGrowingMidJob(topic, csv, rows, 'k');
    const records = await readTopic(outputs.kafka.brokers, topic);
    // Assess
    expect(done.checkpoint?.placement).toMatchObject({ partitions: 6, keyed: true });
    expect(rowsBeforeGrowth).toBeLessThan(rows);
    expect(records.map((r) => r.value).sort()).toEqual([...lines].sort());
    expect(new Set(records.map((r) => r.partition)).size).toBeGreaterThan(1);
    for (let k = 0; k < 40; k++) {
      const key = `key-${k}`;
      const mine = records.filter((r) => r.key === key);
      // Every record of the key on one partition: the Java client's toPositive(murmur2(key)) % 6.
      expect(new Set(mine.map((r) => r.partition)), key).toEqual(
        new Set([javaPartitionOf(Buffer.from(key), 6)]),
      );
      const seqs = mine.map((r) => Number(r.value.split(',')[1]));
      expect(seqs, key).toEqual(
        lines.flatMap((l) => (l.startsWith(`${key},`) ? [Number(l.split(',')[1])] : [])),
      );
    }
  });

  it('fails a job whose topic does not exist with TOPIC_NOT_FOUND when auto-creation is off', async () => {
    // Prepare
    const topic = topicName('missing');
    const csv = Buffer.from('id\n1\n2\n');
    const job = await uploadJob(aws.s3, outputs.bucket, `inbound/${topic}.csv`, csv, { topic, totalRows: 2 });
    // Act
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    const failed = await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) => r.status === 'FAILED');
    const topics = await admin.listTopics();
    // Assess
    expect(failed.failure?.reason).toBe('TOPIC_NOT_FOUND');
    expect(topics).not.toContain(topic);
    expect((await getJob(aws.doc, outputs.tables.jobs, job.jobId))?.rowsDelivered ?? 0).toBe(0);
  });
});
