/**
 * Fuzz bench: `npm run bench:fuzz [-- --seconds 60 --seed 1]`. Mutates valid CSVs (testkit's tricky
 * generator: quotes, quoted newlines, CRLF, BOM, unicode) and random bytes, and runs each input
 * through the planner (header + range count, SIMD and JS) and the producer's splitter and decoder,
 * in process, for a set time. Fails (exit 1) on a crash, an input slower than 2 s, or a count that
 * disagrees: planner totalRows must equal the producer's rows (delivered + rejected).
 */
import { Command } from 'commander';
import { countRegion } from '../services/planner/count.ts';
import { RejectedObjectError } from '../services/planner/errors.ts';
import { readHeader } from '../services/planner/header.ts';
import { SUPPORTED_DELIMITERS } from '../services/shared/csv.ts';
import { decodeRow, RowSplitter } from '../services/shared/rows.ts';
import { rng, trickyCsv } from '../testkit/csv.ts';

const opts = new Command('bench:fuzz')
  .option('--seconds <n>', 'how long to run', '30')
  .option('--seed <n>', 'first seed', '1')
  .parse()
  .opts<{ seconds: string; seed: string }>();

const SPECIAL = Buffer.from('"\r\n,;\t|:a\u00e9 \u0000\xff');

function mutate(base: Buffer, r: () => number): Buffer {
  const out = Buffer.from(base);
  const n = 1 + Math.floor(r() * 8);
  let b = out;
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * (b.length + 1));
    const op = r();
    const byte = r() < 0.8 ? SPECIAL[Math.floor(r() * SPECIAL.length)]! : Math.floor(r() * 256);
    if (op < 0.4 && b.length > 0) b[Math.min(at, b.length - 1)] = byte;
    else if (op < 0.7) b = Buffer.concat([b.subarray(0, at), Buffer.of(byte), b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + Math.floor(r() * 4))]);
  }
  return b;
}

function randomBytes(r: () => number): Buffer {
  const n = Math.floor(r() * 400);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++)
    b[i] = r() < 0.6 ? SPECIAL[Math.floor(r() * SPECIAL.length)]! : Math.floor(r() * 256);
  return b;
}

async function one(buf: Buffer, delimiter: string, r: () => number) {
  let header: ReturnType<typeof readHeader>;
  try {
    header = readHeader(buf.subarray(0, 1 << 20), buf.length, delimiter);
  } catch (e) {
    if (e instanceof RejectedObjectError) return 'rejected' as const;
    throw e;
  }
  const partSize = 1 + Math.floor(r() * 300);
  const chunk = 1 + Math.floor(r() * 97);
  const read = async function* (start: number, end: number) {
    for (let o = start; o < end; o += chunk) yield buf.subarray(o, Math.min(end, o + chunk));
  };
  const totalRows = await countRegion(
    read,
    { dataOffset: header.dataOffset, size: buf.length },
    {
      partSize,
      concurrency: 3,
      delimiter,
    },
  );
  const s = new RowSplitter({
    rowsBefore: 0,
    startOffset: header.dataOffset,
    delimiter,
    maxRecordBytes: 4096,
  });
  let delivered = 0;
  let rejected = 0;
  const take = (rows: ReturnType<RowSplitter['push']>) => {
    for (const raw of rows) {
      if (decodeRow(raw, header.header, delimiter).ok) delivered++;
      else rejected++;
    }
  };
  for (let o = header.dataOffset; o < buf.length; o += chunk) take(s.push(buf.subarray(o, o + chunk)));
  take(s.end());
  if (delivered + rejected !== totalRows) {
    throw new Error(`counts disagree: totalRows ${totalRows}, delivered ${delivered} + rejected ${rejected}`);
  }
  return { delivered, rejected };
}

const until = Date.now() + Number(opts.seconds) * 1000;
let seed = Number(opts.seed);
const stats = {
  inputs: 0,
  bytes: 0,
  jobs: 0,
  rejectedObjects: 0,
  rowsDelivered: 0,
  rowsRejected: 0,
  slowestMs: 0,
};
const started = Date.now();
while (Date.now() < until) {
  const r = rng(seed);
  const delimiter = SUPPORTED_DELIMITERS[seed % SUPPORTED_DELIMITERS.length]!;
  let buf: Buffer;
  if (seed % 4 === 0) buf = randomBytes(r);
  else {
    const base = Buffer.from(trickyCsv(seed).text.replaceAll(',', delimiter));
    buf = mutate(base, r);
  }
  const t0 = performance.now();
  let out: Awaited<ReturnType<typeof one>>;
  try {
    out = await one(buf, delimiter, r);
  } catch (e) {
    console.error(`FAIL seed ${seed} delimiter ${JSON.stringify(delimiter)}: ${(e as Error).stack}`);
    console.error(`input (base64): ${buf.toString('base64')}`);
    process.exit(1);
  }
  const ms = performance.now() - t0;
  if (ms > 2000) {
    console.error(`FAIL seed ${seed}: took ${ms.toFixed(0)} ms (hang?)`);
    process.exit(1);
  }
  stats.slowestMs = Math.max(stats.slowestMs, ms);
  stats.inputs++;
  stats.bytes += buf.length;
  if (out === 'rejected') stats.rejectedObjects++;
  else {
    stats.jobs++;
    stats.rowsDelivered += out.delivered;
    stats.rowsRejected += out.rejected;
  }
  seed++;
}
const secs = (Date.now() - started) / 1000;
console.log(
  `fuzz: ${stats.inputs} inputs (${(stats.bytes / 1e6).toFixed(1)} MB) in ${secs.toFixed(1)} s, seeds ${opts.seed}..${seed - 1}: ` +
    `${stats.jobs} planned (rows ${stats.rowsDelivered} delivered + ${stats.rowsRejected} rejected = totalRows every time), ` +
    `${stats.rejectedObjects} rejected at planning, 0 crashes, 0 disagreements, slowest input ${stats.slowestMs.toFixed(1)} ms`,
);
