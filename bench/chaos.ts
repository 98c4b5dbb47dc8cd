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

import { runChaos } from '../testkit/chaos.ts';
import { FAULTS, type Fault, runFaultChaos } from '../testkit/fault-chaos.ts';
import { freshStack } from '../testkit/stack.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
};
const faultsArg = process.argv.includes('--faults') ? arg('faults', FAULTS.join(',')) : null;
if (faultsArg !== null) {
  const faults = faultsArg.split(',').filter(Boolean) as Fault[];
  const unknown = faults.filter((f) => !(FAULTS as readonly string[]).includes(f));
  if (unknown.length > 0) {
    console.error(`unknown fault(s) ${unknown.join(', ')}; known: ${FAULTS.join(', ')}`);
    process.exit(1);
  }
  const runs = Number(arg('runs', '1'));
  let ok = true;
  for (let run = 1; run <= runs; run++) {
    const { outputs, env } = await freshStack('faults');
    const report = await runFaultChaos({
      outputs,
      env,
      jobs: Number(arg('jobs', '4')),
      rows: Number(arg('rows', '300000')),
      faults,
      awsRate: Number(arg('aws-rate', '0.1')),
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

const rows = Number(arg('rows', '1000000'));
const kills = Number(arg('kills', '6'));
// The produce path: our record-batch encoder (default) or the library's per-message path.
const encoderArg = arg('encoder', 'fast');
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
