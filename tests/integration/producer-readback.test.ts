import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { platformaticKafka } from '../../services/producer/adapters/kafka-platformatic.ts';
import type { JobProducer, OutRecord } from '../../services/producer/ports.ts';
import { readTopic } from '../../testkit/producer.ts';
import { requireLocalStack } from '../../testkit/stack.ts';

/**
 * The long fault run's 2,002 "duplicated" rows: after a broker restart two jobs on one partition
 * re-open their producers, and the coordinator aborts their open transactions in the opposite order
 * of their starts. The topic itself was right (Kafka's Java console consumer, read_committed, read
 * 1,000,000 rows, none twice); the tests' reader (kafkajs 2.2.4, read_committed) handed out the rows
 * of the transaction aborted second, because it expects the broker's aborted-transaction list in
 * first-offset order. This makes exactly that log on the real broker, through the producer's own
 * Kafka adapter, and checks the read-back row by row.
 */

let brokers: readonly string[];
let kafka: Kafka;

beforeAll(async () => {
  ({ brokers } = await requireLocalStack());
  kafka = new Kafka({ clientId: 'it-readback', brokers: [...brokers], logLevel: logLevel.NOTHING });
});

const port = () =>
  platformaticKafka({
    brokers,
    clientId: 'it-readback',
    transactionTimeoutMs: 15_000,
    fenceRetryMs: 20_000,
  });

const rows = (job: string, from: number, to: number): OutRecord[] => {
  const out: OutRecord[] = [];
  for (let r = from; r <= to; r++) {
    out.push({
      key: null,
      value: JSON.stringify({ job, row: r }),
      headers: { 'rowstream-job': job, 'rowstream-row': String(r), 'rowstream-offset': String(r * 10) },
    });
  }
  return out;
};

const opened: JobProducer[] = [];
afterAll(async () => {
  for (const p of opened) await p.close().catch(() => {});
});

describe('reading a topic back after interleaved aborted transactions', () => {
  it('two jobs on one partition, aborted in the opposite order of their starts: each job rows 1..N once, in order', async () => {
    // Prepare: a one-partition topic, two jobs with a first committed transaction each.
    const topic = `it-readback-${randomBytes(3).toString('hex')}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    const placement = { partitions: 1, partition: 0, keyed: false };
    const kafkaPort = port();
    const a = await kafkaPort.openJob('job-a', topic, placement);
    const b = await kafkaPort.openJob('job-b', topic, placement);
    opened.push(a, b);
    for (const [p, job] of [
      [a, 'job-a'],
      [b, 'job-b'],
    ] as const) {
      await p.begin();
      await p.send(rows(job, 1, 100));
      await p.commit();
    }

    // Act: A opens a transaction first, B second, interleaved; B is aborted first, then A (what the
    // coordinator does when B's producer is re-opened before A's after a broker restart).
    await a.begin();
    await a.send(rows('job-a', 101, 200));
    await b.begin();
    await b.send(rows('job-b', 101, 200));
    await a.send(rows('job-a', 201, 300));
    await b.abort();
    await a.abort();
    // Both resume after their last commit and finish.
    for (const [p, job] of [
      [a, 'job-a'],
      [b, 'job-b'],
    ] as const) {
      await p.begin();
      await p.send(rows(job, 101, 300));
      await p.commit();
    }

    // Assess: the aborted records are really in the log (100 + 100 + 100 of them, with 6 markers)...
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.disconnect();
    expect(Number(ends[0]?.high)).toBe(300 + 300 + 300 + 6);
    // ...and the read-back sees each job's rows 1..300 exactly once, in order, nothing aborted.
    const records = await readTopic(brokers, topic);
    const byJob = (job: string) =>
      records
        .filter((r) => r.headers['rowstream-job'] === job)
        .map((r) => Number(r.headers['rowstream-row']));
    const expected = Array.from({ length: 300 }, (_, i) => i + 1);
    expect(byJob('job-a')).toEqual(expected);
    expect(byJob('job-b')).toEqual(expected);
    expect(records).toHaveLength(600);
  }, 60_000);
});
