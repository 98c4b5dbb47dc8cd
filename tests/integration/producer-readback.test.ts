import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { platformaticKafka } from '../../services/producer/adapters/kafka-platformatic.ts';
import type { JobProducer, OutRecord } from '../../services/producer/ports.ts';
import { readTopic } from '../../testkit/producer.ts';
import { requireLocalStack } from '../../testkit/stack.ts';
import { runCli, spawnCli } from './cli-harness.ts';

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

    // `rowstream topic read`, what an operator checks a topic with, reads the same log the same way.
    const all = await runCli(['topic', 'read', topic, '--limit', '10000'], process.env, 60_000);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { job: string; row: number; value: string; offset: string });
    expect(lines).toHaveLength(600);
    expect(lines.filter((l) => l.job === 'job-a').map((l) => l.row)).toEqual(expected);
    expect(lines.filter((l) => l.job === 'job-b').map((l) => l.row)).toEqual(expected);
    expect(JSON.parse(lines[0]!.value)).toEqual({ job: 'job-a', row: 1 });
    expect(all.stderr).toContain(`600 records of ${topic}, read_committed`);
    const one = await runCli(
      ['topic', 'read', topic, '--job', 'job-b', '--limit', '150'],
      process.env,
      60_000,
    );
    expect(one.code, one.stderr).toBe(0);
    const rowsB = one.stdout
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { job: string; row: number }).row);
    expect(rowsB).toEqual(expected.slice(0, 150));
  }, 120_000);

  it('topic read --follow prints records committed after it started, never an aborted one, and stops on SIGTERM', async () => {
    // Prepare: an empty topic and a reader following it.
    const topic = `it-follow-${randomBytes(3).toString('hex')}`;
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    await admin.disconnect();
    const cli = spawnCli(['topic', 'read', topic, '--follow', '--limit', '1000'], process.env);
    const lineCount = () => cli.output().stdout.split('\n').filter(Boolean).length;
    const waitFor = async (n: number) => {
      const deadline = Date.now() + 30_000;
      while (lineCount() < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    };

    // Act: an aborted transaction, then two committed ones, while the reader waits.
    await new Promise((r) => setTimeout(r, 2000));
    const p = await port().openJob('job-f', topic, { partitions: 2, partition: 1, keyed: false });
    opened.push(p);
    await p.begin();
    await p.send(rows('job-f', 1, 50));
    await p.abort();
    await p.begin();
    await p.send(rows('job-f', 1, 50));
    await p.commit();
    await waitFor(50);
    await p.begin();
    await p.send(rows('job-f', 51, 80));
    await p.commit();
    await waitFor(80);
    cli.child.kill('SIGTERM');
    const { code, stdout, stderr } = await cli.done;

    // Assess
    expect(code, stderr).toBe(0);
    const got = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { row: number; partition: number });
    expect(got.map((l) => l.row)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    expect(new Set(got.map((l) => l.partition))).toEqual(new Set([1]));
    expect(stderr).toContain(`80 records of ${topic}, read_committed`);
  }, 120_000);
});
