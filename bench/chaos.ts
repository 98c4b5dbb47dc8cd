/**
 * `npm run chaos [-- --rows 1000000 --kills 6 --encoder fast|library|both]`
 * Kills the producer with SIGKILL at random moments (one right after a commit), restarts it, sends one
 * SIGTERM, and checks the topic holds every row exactly once, in order. Needs `npm run local:up`.
 */

import { runChaos } from '../testkit/chaos.ts';
import { freshStack } from '../testkit/stack.ts';

const arg = (name: string, def: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
};
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
