import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import { platformaticKafka } from '../../services/producer/adapters/kafka-platformatic.ts';
import type { KafkaPort, OutRecord, PartitionAck } from '../../services/producer/ports.ts';
import { readTopic, rowsOf } from '../../testkit/producer.ts';
import { requireLocalStack } from '../../testkit/stack.ts';

/**
 * Several produce requests in flight (kafka-pipeline.ts) against the real local broker: a request in
 * the middle of the pipeline is refused by the broker (a batch above the topic's max.message.bytes),
 * the requests behind it are refused too (their sequence numbers now leave a gap), and the job does
 * what the core does on any Kafka error: abort, re-open (fence), read its last committed row back,
 * and write from there. The topic, read back by an independent client (kafkajs, read_committed), must
 * hold every row once and in order, with nothing of the failed transaction.
 */

let brokers: readonly string[];
beforeAll(async () => {
  ({ brokers } = await requireLocalStack());
});

const JOB = `j-pipeline-${randomBytes(4).toString('hex')}`;
const record = (row: number, value = `{"row":${row}}`): OutRecord => ({
  key: null,
  value,
  headers: {
    'rowstream-job': JOB,
    'rowstream-source': 's3://b/inbound/pipeline.csv',
    'rowstream-row': String(row),
    'rowstream-offset': String((row + 1) * 10),
  },
});
const rows = (from: number, to: number, big?: number) =>
  Array.from({ length: to - from + 1 }, (_, i) =>
    record(from + i, from + i === big ? `"${'x'.repeat(120_000)}"` : undefined),
  );

function adapter(): KafkaPort {
  return platformaticKafka({
    brokers,
    clientId: 'it-pipeline',
    transactionTimeoutMs: 15_000,
    fenceRetryMs: 30_000,
    autocreateTopics: true,
    maxInflight: 5,
  });
}

describe('produce requests in flight (real broker)', () => {
  it('a refused request in the middle of the pipeline leaves no gap and no duplicate after abort and resume', async () => {
    // Prepare: a topic whose max.message.bytes a 120 kB record exceeds.
    const topic = `it-pipeline-${randomBytes(3).toString('hex')}`;
    const admin = new Kafka({ clientId: 'it', brokers: [...brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '100000' }] }],
      waitForLeaders: true,
    });
    await admin.disconnect();
    const kafka = adapter();
    const placement = await kafka.place(JOB, topic, false);

    // Act 1: a committed transaction of rows 1-300 sent as 3 requests in flight at once.
    const first = await kafka.openJob(JOB, topic, placement);
    expect(first.maxInflight).toBe(5);
    await first.begin();
    const sent1 = [rows(1, 100), rows(101, 200), rows(201, 300)].map((b) => first.send(b));
    const acks1 = await Promise.all(sent1);
    await first.commit();

    // Act 2: the next transaction's 2nd request (rows 401-500) is too large; 4 requests are in flight.
    await first.begin();
    const sent2 = [rows(301, 400), rows(401, 500, 450), rows(501, 600), rows(601, 700)].map((b) =>
      first.send(b).then(
        (a): readonly PartitionAck[] | Error => a,
        (e: unknown) => e as Error,
      ),
    );
    const outcome = await Promise.all(sent2);
    await first.abort().catch(() => {});
    await first.close();

    // Act 3: what the core does next: re-open (fence), read the last committed row, write from there.
    const second = await kafka.openJob(JOB, topic, placement);
    const last = await kafka.readLastCommitted(JOB, topic, {
      floor: null,
      sinceMs: null,
      partitions: [placement.partition],
    });
    await second.begin();
    const resumeFrom = (last?.row ?? 0) + 1;
    const batches = [];
    for (let r = resumeFrom; r <= 700; r += 100) batches.push(rows(r, Math.min(700, r + 99)));
    await Promise.all(batches.map((b) => second.send(b)));
    await second.commit();
    await second.close();
    await kafka.close();
    const records = await readTopic(brokers, topic);

    // Assess: the first transaction's acks are consecutive (in order on the wire).
    expect(acks1.map((a) => [a[0]!.baseOffset, a[0]!.count])).toEqual([
      ['0', 100],
      ['100', 100],
      ['200', 100],
    ]);
    // The request before the refused one was written, the refused one failed with the broker's reason,
    // and nothing behind it succeeded.
    expect(outcome[0]).not.toBeInstanceOf(Error);
    expect(String(outcome[1])).toMatch(/TOO_LARGE|too large|larger/i);
    expect(outcome.slice(2).every((o) => o instanceof Error)).toBe(true);
    expect(last?.row).toBe(300);
    expect(last?.nextByteOffset).toBe(3010);
    // Every row once, in order (the rows of the aborted transaction, 301-400 included, only once).
    expect(rowsOf(records)).toEqual(Array.from({ length: 700 }, (_, i) => i + 1));
    expect(records.filter((r) => r.value.length > 100_000).map((r) => r.headers['rowstream-row'])).toEqual(
      [],
    );
  }, 120_000);
});
