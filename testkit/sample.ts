/**
 * The sample CSV of the demo and the CLI tests (samples/generate.ts writes it from the command line):
 * rows from the benchmark generator (csv.ts), quoted fields with commas, escaped quotes and newlines
 * inside quotes, and optionally rows with a wrong field count spread through the file.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BENCH_HEADER, benchRow, rng } from './csv.ts';

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
