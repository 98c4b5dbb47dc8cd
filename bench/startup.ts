/**
 * `npm run bench:startup [-- --rounds 3]`
 *
 * The producer's start-up and idle memory, as the image runs it (the bundle `npm run build:producer`
 * writes) and as the sources run through tsx: each round starts both, in turn, against a fresh stage of
 * the local stack, and measures the time from spawn to its "producer started" log line and the resident
 * memory (VmRSS) 3 s after it, idle (no job). Prints each round and the medians.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { buildProducer } from '../scripts/build-producer.ts';
import { REPO, startProducer } from '../testkit/producer.ts';
import { freshStack } from '../testkit/stack.ts';
import { median } from './lib/stats.ts';

const opts = new Command('bench:startup')
  .option('--rounds <n>', 'rounds of bundle then tsx', '3')
  .parse()
  .opts<{ rounds: string }>();
const rounds = Number(opts.rounds);

const { env } = await freshStack('boot');
const bundle = await buildProducer(join('.local', 'bench', 'producer', 'main.mjs'));

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

async function probe(runtime: 'bundle' | 'tsx'): Promise<{ startMs: number; idleRssMb: number }> {
  const t0 = Date.now();
  const p = startProducer(
    { ...env, LOG_LEVEL: 'INFO' },
    join(REPO, '.local', 'bench', `startup-${runtime}.log`),
    runtime === 'bundle' ? { bundle } : {},
  );
  await p.waitForLog(/producer started/);
  const startMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 3000));
  const idleRssMb = rssMb(p.child.pid ?? 0);
  p.kill('SIGTERM');
  await p.exited;
  return { startMs, idleRssMb };
}

const results: Record<'bundle' | 'tsx', { startMs: number; idleRssMb: number }[]> = { bundle: [], tsx: [] };
for (let round = 1; round <= rounds; round++) {
  for (const runtime of ['bundle', 'tsx'] as const) {
    const r = await probe(runtime);
    results[runtime].push(r);
    console.log(`[bench] round ${round} ${runtime}: started in ${r.startMs} ms, idle RSS ${r.idleRssMb} MB`);
  }
}
for (const runtime of ['bundle', 'tsx'] as const) {
  const rs = results[runtime];
  console.log(
    `[bench] ${runtime}: median start-up ${median(rs.map((r) => r.startMs))} ms, median idle RSS ${median(rs.map((r) => r.idleRssMb))} MB`,
  );
}
process.exit(0);
