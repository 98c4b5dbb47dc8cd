/**
 * `npm run chaos [-- --rows 1000000 --kills 6 --encoder fast|library|both]`
 * Kills the producer with SIGKILL at random moments (one right after a commit), restarts it, sends one
 * SIGTERM, and checks the topic holds every row exactly once, in order. Needs `npm run local:up`.
 *
 * `npm run chaos -- --faults aws,stall,broker,kill [--jobs 4] [--rows 300000] [--aws-rate 0.1] [--runs 1]`
 * The fault run instead (testkit/fault-chaos.ts): several jobs on one topic while AWS calls fail
 * through a fault-injecting proxy in front of moto, an S3 read stalls, the Kafka broker is SIGKILLed
 * and restarted, and the producer is SIGKILLed; prints rows expected / delivered / duplicated / out of
 * order and jobs FAILED.
 */

import { Command } from 'commander';
import { runChaos } from '../testkit/chaos.ts';
import { FAULTS, type Fault, runFaultChaos } from '../testkit/fault-chaos.ts';
import { freshStack } from '../testkit/stack.ts';

const opts = new Command('chaos')
  .option('--rows <n>', 'rows per job (default 1000000, or 300000 with --faults)')
  .option('--kills <n>', 'SIGKILLs of the producer during the job', '6')
  .option('--encoder <name>', 'produce path: fast, library or both', 'fast')
  .option('--faults [list]', `the fault run instead, comma-separated from: ${FAULTS.join(', ')}`)
  .option('--jobs <n>', 'jobs of the fault run, on one topic', '4')
  .option('--aws-rate <p>', 'share of AWS calls the fault proxy breaks', '0.1')
  .option('--runs <n>', 'fault runs, each on a fresh stack', '1')
  .parse()
  .opts<{
    rows?: string;
    kills: string;
    encoder: string;
    faults?: string | true;
    jobs: string;
    awsRate: string;
    runs: string;
  }>();
if (opts.faults !== undefined) {
  const faultsArg = opts.faults === true ? FAULTS.join(',') : opts.faults;
  const faults = faultsArg.split(',').filter(Boolean) as Fault[];
  const unknown = faults.filter((f) => !(FAULTS as readonly string[]).includes(f));
  if (unknown.length > 0) {
    console.error(`unknown fault(s) ${unknown.join(', ')}; known: ${FAULTS.join(', ')}`);
    process.exit(1);
  }
  const runs = Number(opts.runs);
  let ok = true;
  for (let run = 1; run <= runs; run++) {
    const { outputs, env } = await freshStack('faults');
    const report = await runFaultChaos({
      outputs,
      env,
      jobs: Number(opts.jobs),
      rows: Number(opts.rows ?? '300000'),
      faults,
      awsRate: Number(opts.awsRate),
      log: (l) => console.log(`[faults] run ${run}: ${l}`),
    });
    console.log(JSON.stringify(report, null, 2));
    console.log(
      `[faults] run ${run}: rows expected ${report.rowsExpected}, delivered ${report.rowsDelivered}, ` +
        `duplicated ${report.duplicated}, missing ${report.missing}, out of order ${report.outOfOrder}; ` +
        `jobs FAILED ${report.jobsFailed}/${report.jobs.length}; ${report.wallSeconds} s: ${report.ok ? 'PASS' : 'FAIL'}`,
    );
    ok &&= report.ok;
  }
  process.exit(ok ? 0 : 1);
}

const rows = Number(opts.rows ?? '1000000');
const kills = Number(opts.kills);
// The produce path: our record-batch encoder (default) or the library's per-message path.
const encoderArg = opts.encoder;
const encoders = encoderArg === 'both' ? (['fast', 'library'] as const) : [encoderArg as 'fast' | 'library'];

let allOk = true;
for (const client of encoders) {
  const { outputs, env } = await freshStack('chaos');
  console.log(`[chaos] ${client}: ${rows} rows, ${kills} kills, stage ${outputs.stage}`);
  const report = await runChaos({
    outputs,
    env,
    rows,
    kills,
    fastEncoder: client === 'fast',
    log: (l) => console.log(`[chaos] ${client}: ${l}`),
  });
  console.log(JSON.stringify({ client, ...report }, null, 2));
  console.log(`[chaos] ${client}: ${report.ok ? 'PASS' : 'FAIL'}`);
  allOk &&= report.ok;
}
process.exit(allOk ? 0 : 1);
