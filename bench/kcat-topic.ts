/**
 * `npm run bench:kcat-topic [-- --rows 1000000 --pairs 4]`
 * What the yardstick costs when its topic is new: `kcat -P` (bench/lib/kcat.ts, the call every bench
 * makes) of the same file into a topic the broker auto-creates, then into one created first (leader
 * waited for), pair by pair. librdkafka waits ~1 s for a new topic's leader: with one partition,
 * bench:producer used to leave kcat's topic to auto-creation, and that second sat in the reference of
 * its 1M-row ratios (docs/producer.md, "Speed round 8"). Needs `npm run local:up`; deletes its topics.
 */
import { join } from 'node:path';
import { Command } from 'commander';
import { localEndpoints, portsFromEnv } from '../local/config.ts';
import { deleteTopics, REPO } from '../testkit/producer.ts';
import { writeRowsFile } from '../testkit/rows.ts';
import { ensureKcat, runKcat } from './lib/kcat.ts';
import { median } from './lib/stats.ts';
import { benchTopics } from './lib/topics.ts';

const opts = new Command('kcat-topic')
  .option('--rows <n>', 'rows of the file', '1000000')
  .option('--pairs <n>', 'auto-created / created-first pairs', '4')
  .parse()
  .opts<{ rows: string; pairs: string }>();
const rows = Number(opts.rows);
const pairs = Number(opts.pairs);
if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(pairs) || pairs < 1)
  throw new Error(`--rows and --pairs: positive counts, not ${opts.rows} / ${opts.pairs}`);

const brokers = localEndpoints(portsFromEnv()).brokers;
const kcat = ensureKcat();
const path = join(REPO, '.local', 'bench', `chaos-${rows}.csv`);
const { size } = await writeRowsFile(path, rows);
const bench = await benchTopics(brokers, 'bench-kcat-topic');
const topics: string[] = [];
const auto: number[] = [];
const created: number[] = [];
try {
  for (let i = 1; i <= pairs; i++) {
    const a = await runKcat({
      kcat,
      brokers: brokers.join(','),
      rows,
      path,
      size,
      topicPrefix: 'bench-kcat-auto',
    });
    topics.push(a.topic);
    const c = await runKcat({
      kcat,
      brokers: brokers.join(','),
      rows,
      path,
      size,
      topicPrefix: 'bench-kcat-created',
      createTopic: (topic) => bench.createTopic(topic),
    });
    topics.push(c.topic);
    auto.push(a.seconds);
    created.push(c.seconds);
    console.log(
      `[bench] pair ${i}: kcat -P ${rows} rows into an auto-created topic ${a.seconds.toFixed(2)} s | into a created one ${c.seconds.toFixed(2)} s | difference ${(a.seconds - c.seconds).toFixed(2)} s`,
    );
  }
  console.log(
    `[bench] median: auto-created ${median(auto).toFixed(2)} s, created first ${median(created).toFixed(2)} s, ratio ${(median(auto) / median(created)).toFixed(2)}`,
  );
} finally {
  await bench.admin.disconnect();
  await deleteTopics(brokers, topics);
}
