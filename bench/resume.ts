/**
 * `npm run bench:resume [-- --unrelated 100000,1000000 --partitions 3 --job-rows 20000 --repeat 3]`
 *
 * Resume cost against topic size, on the local broker: a shared topic first gets `unrelated` records
 * of other writers (history older than the job, spread over every partition), then one job writes
 * `job-rows` rows through the producer's own Kafka adapter (transactions, its placement), and the
 * resume scan (kafka-scan.ts readLastCommitted) is timed twice: with the hint the producer now gives it
 * (the job's own partition, its start time, the checkpoint floor of the first half of its rows) and
 * without any hint (every partition back to the log start, the scan before issue 13 item 5).
 */
import { randomBytes } from 'node:crypto';
import { Producer } from '@platformatic/kafka';
import { Command } from 'commander';
import { platformaticKafka } from '../services/producer/adapters/kafka-platformatic.ts';
import { readLastCommitted } from '../services/producer/adapters/kafka-scan.ts';
import { requireLocalStack } from '../testkit/stack.ts';

const opts = new Command('bench:resume')
  .option(
    '--unrelated <counts>',
    'comma-separated counts of unrelated records on the topic',
    '100000,1000000',
  )
  .option('--partitions <n>', 'partitions of the shared topic', '3')
  .option('--job-rows <n>', 'rows the job writes', '20000')
  .option('--repeat <n>', 'timed scans per size (the median is printed)', '3')
  .parse()
  .opts<{ unrelated: string; partitions: string; jobRows: string; repeat: string }>();
const sizes = opts.unrelated.split(',').map(Number);
const partitions = Number(opts.partitions);
const jobRows = Number(opts.jobRows);
const repeat = Number(opts.repeat);

const { brokers } = await requireLocalStack();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function fillUnrelated(topic: string, n: number) {
  const p = new Producer({
    clientId: 'bench-resume-fill',
    bootstrapBrokers: [...brokers],
    autocreateTopics: false,
  });
  const value = Buffer.from(JSON.stringify({ other: 'writer', pad: 'x'.repeat(60) }));
  const batch = 5000;
  for (let i = 0; i < n; i += batch) {
    const messages = Array.from({ length: Math.min(batch, n - i) }, (_, k) => ({
      topic,
      value,
      partition: (i + k) % partitions,
      headers: new Map([[Buffer.from('rowstream-job'), Buffer.from('j-someone-else')]]),
    }));
    await p.send({ messages, acks: 1 });
  }
  await p.close();
}

async function createTopic(topic: string) {
  const { Admin } = await import('@platformatic/kafka');
  const admin = new Admin({ clientId: 'bench-resume', bootstrapBrokers: [...brokers] });
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 });
  await admin.close();
}

const results: { unrelated: number; hintedMs: number; unhintedMs: number; row: number | null }[] = [];
for (const n of sizes) {
  const topic = `bench-resume-${randomBytes(3).toString('hex')}`;
  await createTopic(topic);
  const t0 = Date.now();
  await fillUnrelated(topic, n);
  console.log(`[resume] ${topic}: ${n} unrelated records in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  // The job: starts after the history, writes through the producer's adapter in transactions.
  await new Promise((r) => setTimeout(r, 1500));
  const jobStart = Date.now();
  const jobId = `j-bench${randomBytes(8).toString('hex')}`;
  const kafka = platformaticKafka({
    brokers,
    clientId: 'bench-resume',
    transactionTimeoutMs: 15_000,
    fenceRetryMs: 30_000,
  });
  const placement = await kafka.place(jobId, topic, false);
  const producer = await kafka.openJob(jobId, topic, placement);
  let floor: string | null = null;
  for (let row = 1; row <= jobRows; row += 1000) {
    await producer.begin();
    const acks = await producer.send(
      Array.from({ length: 1000 }, (_, k) => ({
        key: null,
        value: `{"row":"${row + k}"}`,
        headers: {
          'rowstream-job': jobId,
          'rowstream-source': 's3://bench/x.csv',
          'rowstream-row': String(row + k),
          'rowstream-offset': String((row + k) * 10),
        },
      })),
    );
    await producer.commit();
    if (row + 999 === jobRows / 2) {
      const a = acks[0]!;
      floor = (BigInt(a.baseOffset) + BigInt(a.count - 1)).toString();
    }
  }
  await producer.close();
  const hint = {
    floor: floor ? [{ partition: placement.partition, firstOffset: null, lastOffset: floor }] : null,
    sinceMs: jobStart - 1000,
    partitions: [placement.partition],
  };
  const hinted: number[] = [];
  const unhinted: number[] = [];
  let row: number | null = null;
  for (let i = 0; i < repeat; i++) {
    let t = performance.now();
    row = (await readLastCommitted({ brokers }, jobId, topic, hint))?.row ?? null;
    hinted.push(performance.now() - t);
    t = performance.now();
    const r2 = (
      await readLastCommitted({ brokers }, jobId, topic, { floor: null, sinceMs: null, partitions: null })
    )?.row;
    unhinted.push(performance.now() - t);
    if (row !== jobRows || r2 !== jobRows)
      throw new Error(`scan found rows ${row} / ${r2}, expected ${jobRows}`);
  }
  results.push({
    unrelated: n,
    hintedMs: Math.round(median(hinted)),
    unhintedMs: Math.round(median(unhinted)),
    row,
  });
  console.log(
    `[resume] ${n} unrelated: job-bounded scan ${Math.round(median(hinted))} ms, unbounded ${Math.round(median(unhinted))} ms (median of ${repeat}; last committed row ${row})`,
  );
}
console.log(JSON.stringify({ partitions, jobRows, results }, null, 2));
process.exit(0);
