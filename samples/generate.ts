/**
 * Sample CSV for the demo and the CLI tests: `tsx samples/generate.ts [--rows 300000] [--bad-rows 0]
 * [--out .local/samples/orders.csv]`. Rows come from the benchmark generator (testkit/csv.ts):
 * quoted fields with commas, escaped quotes and newlines inside quotes. Written under .local/ (ignored):
 * a few hundred thousand rows is tens of MB, which does not belong in git.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { BENCH_HEADER, benchRow, rng } from '../testkit/csv.ts';

export interface SampleOptions {
  readonly rows: number;
  /** Rows with a wrong field count, spread evenly through the file (they become rejects). */
  readonly badRows?: number;
  readonly seed?: number;
}

/** 1-based data row numbers that are bad, evenly spread. */
export function badRowNumbers(rows: number, badRows: number): Set<number> {
  const out = new Set<number>();
  if (badRows <= 0 || rows <= 0) return out;
  const step = rows / badRows;
  for (let k = 0; k < badRows; k++) out.add(Math.min(rows, Math.floor(step * k + step / 2) + 1));
  return out;
}

/** Writes the sample; returns the data rows written (good + bad). */
export async function writeSample(path: string, opts: SampleOptions): Promise<{ rows: number; bad: number }> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.partial`;
  const out = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  const r = rng(opts.seed ?? 20261125);
  const bad = badRowNumbers(opts.rows, opts.badRows ?? 0);
  let batch = BENCH_HEADER;
  for (let i = 1; i <= opts.rows; i++) {
    batch += bad.has(i) ? `${i},only-two-fields\r\n` : benchRow(i, r);
    if (batch.length > 1 << 20) {
      if (!out.write(batch)) await new Promise<void>((res) => out.once('drain', () => res()));
      batch = '';
    }
  }
  await new Promise<void>((res, rej) => out.end(batch, (e?: Error | null) => (e ? rej(e) : res())));
  await rename(tmp, path);
  return { rows: opts.rows, bad: bad.size };
}

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
