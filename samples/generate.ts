/**
 * Sample CSV for the demo and the CLI tests: `tsx samples/generate.ts [--rows 300000] [--bad-rows 0]
 * [--out .local/samples/orders.csv]`, written by testkit/sample.ts from the benchmark generator:
 * quoted fields with commas, escaped quotes and newlines inside quotes. Written under .local/ (ignored):
 * a few hundred thousand rows is tens of MB, which does not belong in git.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeSample } from '../testkit/sample.ts';

const invokedDirectly =
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '300000' },
      'bad-rows': { type: 'string', default: '0' },
      out: {
        type: 'string',
        default: resolve(fileURLToPath(new URL('..', import.meta.url)), '.local/samples/orders.csv'),
      },
    },
  });
  const rows = Number(values.rows);
  const badRows = Number(values['bad-rows']);
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(badRows) || badRows < 0) {
    console.error('usage: tsx samples/generate.ts [--rows N] [--bad-rows N] [--out file.csv]');
    process.exit(1);
  }
  const t0 = Date.now();
  const res = await writeSample(resolve(values.out), { rows, badRows });
  console.log(
    `wrote ${values.out}: ${res.rows} data rows (${res.bad} bad) with quoted commas, quotes and newlines in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
}
