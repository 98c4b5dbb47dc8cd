/**
 * `npm run bench:metrics [-- --kafka fake,real --pairs 10 --rows-fake 5000000 --rows-real 2000000]`
 *
 * Does recording metrics cost the producer 2% of its throughput? Single runs cannot say: the same
 * configuration varies by ±20-30% on this shared 2-core machine. So: interleaved runs of the in-process
 * harness (bench/lib/producer-inproc.ts: the real core, file from memory), metrics on and off, same
 * file, each run in a fresh process (a producer process has one metrics implementation, its own heap
 * and JIT state). "on" is what main.ts builds: BufferedMetrics + the EMF file sink + the producer's
 * default flush interval, with the final flush charged to the run; "off" is NO_METRICS.
 *
 * The pairs alternate their order (on/off, off/on, ...), so a drift of the machine's load over the
 * session falls on both sides. Per pair d = (off - on) / off in percent (positive: metrics cost
 * throughput); the figure that decides is the median of d with its distribution-free confidence
 * interval (order statistics; 10 pairs give [d(2), d(9)] at 97.9%). Goal met when its upper bound is
 * below 2% (metrics cost less than 2%); missed when its lower bound is 2% or more; otherwise the noise
 * is too large to say, and it says so. Whether on and off are also within ±2% of each other is printed
 * beside it. Both wall-clock throughput (the goal's measure) and rows per CPU-second are compared.
 *
 * With the fake Kafka the core alone runs at ~660k rows/s, so any metrics cost shows most there.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Command } from 'commander';
import { REPO } from '../testkit/producer.ts';
import { writeRowsFile } from '../testkit/rows.ts';
import { median, medianCi, round, spread } from './lib/stats.ts';

const opts = new Command('bench:metrics')
  .option('--kafka <kinds>', 'comma-separated: fake, real', 'fake,real')
  .option('--pairs <n>', 'interleaved on/off pairs per kind', '10')
  .option('--rows-fake <n>', 'rows per run with the fake Kafka', '5000000')
  .option('--rows-real <n>', 'rows per run with the real broker', '2000000')
  .parse()
  .opts<{ kafka: string; pairs: string; rowsFake: string; rowsReal: string }>();
const kinds = opts.kafka.split(',') as ('fake' | 'real')[];
const pairs = Number(opts.pairs);
const rowsFor = { fake: Number(opts.rowsFake), real: Number(opts.rowsReal) };
const GOAL_PERCENT = 2;

interface Run {
  metrics: 'on' | 'off';
  rowsPerSecond: number;
  rowsPerCpuSecond: number;
  /** "on" only: points recorded and ms spent inside record() and flush() (bench/lib/producer-inproc.ts). */
  metricsPoints?: number;
  metricsMs?: number;
  seconds: number;
  finalFlushMs: number;
}

function runOnce(kafka: 'fake' | 'real', rows: number, metrics: 'on' | 'off'): Promise<Run> {
  const tsx = join(REPO, 'node_modules', '.bin', 'tsx');
  const args = ['bench/lib/producer-inproc.ts', '--rows', String(rows), '--kafka', kafka];
  args.push('--metrics', metrics);
  return new Promise((resolve, reject) => {
    const child = spawn(tsx, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0)
        return reject(new Error(`inproc run (${kafka}, metrics ${metrics}) exited ${code}: ${line}`));
      try {
        const r = JSON.parse(line) as Run;
        resolve({
          metrics,
          rowsPerSecond: r.rowsPerSecond,
          rowsPerCpuSecond: r.rowsPerCpuSecond,
          ...(r.metricsPoints === undefined
            ? {}
            : { metricsPoints: r.metricsPoints, metricsMs: r.metricsMs }),
          seconds: r.seconds,
          finalFlushMs: r.finalFlushMs,
        });
      } catch {
        reject(new Error(`inproc run printed no result: ${out}`));
      }
    });
  });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Paired differences (off - on) / off in percent, their median, CI and what they say about the goal. */
function compare(label: string, unit: string, on: number[], off: number[]) {
  const diffs = on.map((a, i) => ((off[i]! - a) / off[i]!) * 100);
  const ci = medianCi(diffs);
  const dMed = median(diffs);
  // The goal is about what metrics cost: the upper bound decides. A difference the other way (on
  // faster than off) is no cost, but it is said, because it means something besides metrics differs.
  const cost =
    ci.high < GOAL_PERCENT
      ? `goal met: metrics cost under ${GOAL_PERCENT}% (upper bound ${round(ci.high, 2)}%)`
      : ci.low >= GOAL_PERCENT
        ? `goal missed: metrics cost ${GOAL_PERCENT}% or more (lower bound ${round(ci.low, 2)}%)`
        : `not decided: the interval reaches past ${GOAL_PERCENT}% (too much noise for ${diffs.length} pairs)`;
  const twoSided =
    ci.low > -GOAL_PERCENT && ci.high < GOAL_PERCENT
      ? `on and off within ±${GOAL_PERCENT}% of each other`
      : ci.high <= -GOAL_PERCENT || ci.high < 0
        ? 'metrics on was faster than off (no cost; the difference is not the metrics work)'
        : `on vs off not shown within ±${GOAL_PERCENT}%`;
  const verdict = `${cost}; ${twoSided}`;
  const sOn = spread(on);
  const sOff = spread(off);
  const line = (which: string, s: ReturnType<typeof spread>) =>
    `${which} median ${fmt(s.median)} ${unit}, min ${fmt(s.min)}, max ${fmt(s.max)}, IQR ${fmt(s.q1)}-${fmt(s.q3)}, range ${round(s.rangePercent)}% of the median`;
  console.log(`[metrics] ${label}: ${line('on ', sOn)}`);
  console.log(`[metrics] ${label}: ${line('off', sOff)}`);
  console.log(
    `[metrics] ${label}: paired (off - on) / off: median ${round(dMed, 2)}%, ${round(ci.coverage * 100)}% CI [${round(ci.low, 2)}%, ${round(ci.high, 2)}%]; pairs ${diffs.map((d) => round(d, 1)).join(', ')}`,
  );
  console.log(`[metrics] ${label}: ${verdict}`);
  return { on: sOn, off: sOff, pairedDiffPercent: { median: dMed, ci, all: diffs }, verdict };
}

const summary: Record<string, unknown> = {};
for (const kafka of kinds) {
  const rows = rowsFor[kafka];
  await writeRowsFile(join(REPO, '.local', 'bench', `chaos-${rows}.csv`), rows);
  console.log(`[metrics] ${kafka} Kafka, ${fmt(rows)} rows, ${pairs} pairs`);
  // Warm-up (page cache, tsx's compile cache, a first topic on the broker); not counted.
  await runOnce(kafka, rows, 'off');
  const on: Run[] = [];
  const off: Run[] = [];
  for (let p = 0; p < pairs; p++) {
    const order: ('on' | 'off')[] = p % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    const got: Partial<Record<'on' | 'off', Run>> = {};
    for (const m of order) got[m] = await runOnce(kafka, rows, m);
    const a = got.on!;
    const b = got.off!;
    on.push(a);
    off.push(b);
    const d = ((b.rowsPerSecond - a.rowsPerSecond) / b.rowsPerSecond) * 100;
    const dc = ((b.rowsPerCpuSecond - a.rowsPerCpuSecond) / b.rowsPerCpuSecond) * 100;
    console.log(
      `[metrics] pair ${p + 1} (${order.join('/')}): on ${fmt(a.rowsPerSecond)} rows/s, ${fmt(a.rowsPerCpuSecond)} rows/cpu-s (final flush ${a.finalFlushMs} ms); off ${fmt(b.rowsPerSecond)} rows/s, ${fmt(b.rowsPerCpuSecond)} rows/cpu-s; d = ${round(d, 2)}% wall, ${round(dc, 2)}% cpu`,
    );
  }
  // Wall-clock throughput is the goal's measure; rows per CPU-second is the same cost seen with far
  // less noise from the other processes on the machine (the metrics work is CPU in this process).
  const wall = compare(
    `${kafka} throughput`,
    'rows/s',
    on.map((r) => r.rowsPerSecond),
    off.map((r) => r.rowsPerSecond),
  );
  const cpu = compare(
    `${kafka} CPU`,
    'rows/cpu-s',
    on.map((r) => r.rowsPerCpuSecond),
    off.map((r) => r.rowsPerCpuSecond),
  );
  // Direct cost, free of run-to-run noise: the time spent inside the metrics code over the run time.
  const direct = on.map((r) => ((r.metricsMs ?? 0) / (r.seconds * 1000)) * 100);
  const points = median(on.map((r) => r.metricsPoints ?? 0));
  console.log(
    `[metrics] ${kafka} direct: ${fmt(points)} points per run (${fmt((points / rows) * 1e6)} per million rows), time inside record()+flush() median ${round(median(on.map((r) => r.metricsMs ?? 0)))} ms = ${round(median(direct), 2)}% of the run (max ${round(Math.max(...direct), 2)}%)`,
  );
  summary[kafka] = {
    rows,
    pairs,
    metricsPointsPerRun: points,
    directPercent: { median: median(direct), max: Math.max(...direct) },
    medianFinalFlushMs: median(on.map((r) => r.finalFlushMs)),
    throughput: wall,
    cpu,
  };
}
console.log(JSON.stringify(summary, null, 2));
