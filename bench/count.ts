/**
 * Row-counting benchmark: `npm run bench:count [-- --size-mb 1100 --s3-mb 128 --workers 2]`.
 *
 * Generates (once, cached under .local/bench/) a CSV of quoted fields, some with newlines and escaped
 * quotes, then counts it in the same run with: `wc -l` (the yardstick: not quote-aware), the planner's
 * counter in one sequential stream, the counter over N ranges in worker threads (what the cores allow),
 * and, when the local stack is up, the planner's own S3 path (ranged GETs) on a smaller object, since moto
 * keeps objects in memory. Prints rows, seconds, MB/s, peak RSS and the ratio to `wc -l`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Command } from 'commander';
import { s3ObjectStore } from '../services/planner/adapters/s3.ts';
import {
  countRegion,
  foldRanges,
  type RangeCount,
  RangeScanner,
  splitRanges,
} from '../services/planner/count.ts';
import { MAX_HEADER_BYTES, readHeader } from '../services/planner/header.ts';
import { awsClients } from '../services/shared/aws.ts';
import type { StackOutputs } from '../topology/topology.ts';
import { ensureBenchCsv } from './lib/gen-csv.ts';

const program = new Command()
  .option('--size-mb <n>', 'size of the generated CSV in MiB', '1100')
  .option('--workers <n>', 'worker threads for the parallel run', '2')
  .option('--s3-mb <n>', 'size of the S3 run on the local stack (0 = skip)', '128')
  .option('--file <path>', 'count this file instead of the generated one')
  .parse();
const opts = program.opts<{ sizeMb: string; workers: string; s3Mb: string; file?: string }>();

const ROOT = new URL('..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const rssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const fmt = (n: number, d = 2) => n.toFixed(d);

interface Result {
  readonly name: string;
  readonly rows: number;
  readonly seconds: number;
  readonly bytes: number;
  readonly peakRssMb: number | null;
}

async function main() {
  const path = opts.file ?? join(ROOT, '.local/bench/count-1g.csv');
  if (!opts.file) {
    const want = Number(opts.sizeMb) * MiB;
    process.stdout.write(`[bench] bench CSV ${path} (>= ${opts.sizeMb} MiB) ... `);
    const g = await ensureBenchCsv(path, want, (w) => {
      if (w % (100 * MiB) < 600_000) process.stdout.write(`${Math.round(w / MiB)} `);
    });
    console.log(g.reused ? 'reused' : `written, ${g.rows} data rows`);
  }
  const size = (await import('node:fs')).statSync(path).size;
  const head = readHeaderOf(path, size);
  console.log(
    `[bench] ${path}: ${fmt(size / MiB, 0)} MiB, header [${head.header.join(', ')}], data from byte ${head.dataOffset}`,
  );

  // Warm the page cache once so every contender reads from memory, not the disk.
  execFileSync('cat', [path], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 });
  const results: Result[] = [];

  const wc = timeSync('wc -l', () =>
    Number(execFileSync('wc', ['-l', path], { encoding: 'utf8' }).trim().split(/\s+/)[0]),
  );
  results.push({ ...wc, bytes: size, peakRssMb: null });

  const seq = await timeAsync('counter, sequential stream', () => sequential(path, head.dataOffset));
  results.push({ ...seq, bytes: size, peakRssMb: rssMb() });

  const workers = Number(opts.workers);
  const par = await timeAsync(`counter, ${workers} processes over ranges`, () =>
    parallel(path, head.dataOffset, size, workers),
  );
  results.push({ ...par, bytes: size, peakRssMb: rssMb() });

  const wc2 = timeSync('wc -l (again)', () =>
    Number(execFileSync('wc', ['-l', path], { encoding: 'utf8' }).trim().split(/\s+/)[0]),
  );
  results.push({ ...wc2, bytes: size, peakRssMb: null });

  const s3 = await s3Run(path, Number(opts.s3Mb) * MiB);
  results.push(...s3);

  const wcBest = Math.min(wc.seconds, wc2.seconds);
  console.log('');
  console.log('| run | rows | s | MB/s | x wc -l | peak RSS MB |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const mbs = r.bytes / 1e6 / r.seconds;
    const ratio = r.name.startsWith('wc') ? 1 : r.bytes / size / (r.seconds / wcBest);
    console.log(
      `| ${r.name} | ${r.rows} | ${fmt(r.seconds, 3)} | ${fmt(mbs, 0)} | ${r.name.startsWith('wc') ? '1' : fmt(ratio, 2)} | ${r.peakRssMb ?? '-'} |`,
    );
  }
  console.log('');
  console.log(
    `[bench] wc -l counts newlines (${wc.rows}), not rows: quoted newlines and the header make it differ from the row count (${seq.rows}).`,
  );
  if (seq.rows !== par.rows) throw new Error(`sequential ${seq.rows} != parallel ${par.rows}`);
}

function readHeaderOf(path: string, size: number) {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(Math.min(size, MAX_HEADER_BYTES));
  readSync(fd, buf, 0, buf.length, 0);
  closeSync(fd);
  return readHeader(buf, size);
}

async function sequential(path: string, dataOffset: number): Promise<number> {
  const scanner = new RangeScanner(readFileSlice(path, dataOffset - 2, dataOffset));
  for await (const chunk of createReadStream(path, { start: dataOffset, highWaterMark: 4 * MiB })) {
    scanner.push(chunk as Buffer);
  }
  return foldRanges([scanner.result()]);
}

const WORKER_ENTRY = new URL('./lib/count-worker.ts', import.meta.url).pathname;

// One child process per range (tsx's loader does not reach worker threads on Node 20, and processes
// are what two cores give either way); each prints its RangeCount as JSON.
async function parallel(path: string, dataOffset: number, size: number, workers: number): Promise<number> {
  const part = Math.ceil((size - dataOffset) / workers);
  const ranges = splitRanges(dataOffset, size, part);
  const results = await Promise.all(
    ranges.map(
      (r) =>
        new Promise<RangeCount>((resolve, reject) => {
          execFile(
            process.execPath,
            [...process.execArgv, WORKER_ENTRY, path, String(r.start), String(r.end), String(4 * MiB)],
            (error, stdout) => (error ? reject(error) : resolve(JSON.parse(stdout) as RangeCount)),
          );
        }),
    ),
  );
  return foldRanges(results);
}

async function s3Run(path: string, bytes: number): Promise<Result[]> {
  const stackFile = join(ROOT, '.local/stack.json');
  if (bytes <= 0 || !existsSync(stackFile)) {
    console.log('[bench] S3 run skipped (no .local/stack.json or --s3-mb 0)');
    return [];
  }
  const outputs = JSON.parse(readFileSync(stackFile, 'utf8')) as StackOutputs;
  const clients = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  const bucket = `${outputs.bucket}-bench`;
  const key = 'bench/count.csv';
  // A whole-rows prefix of the big file, uploaded once per run to a bench-only bucket (no notifications).
  const body = readFileSlice(path, 0, bytes);
  const cut = body.lastIndexOf(0x0a) + 1;
  await clients.s3.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => undefined);
  await clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body.subarray(0, cut) }));
  const store = s3ObjectStore(clients.s3, { readTags: false });
  const ref = { bucket, key, versionId: null };
  const h = readHeader(body.subarray(0, Math.min(cut, MAX_HEADER_BYTES)), cut);
  const out: Result[] = [];
  for (const [name, partSize, concurrency] of [
    ['S3 sequential (1 GET)', cut, 1],
    ['S3 ranges 16 MiB x 4', 16 * MiB, 4],
    ['S3 ranges 8 MiB x 8', 8 * MiB, 8],
  ] as const) {
    const r = await timeAsync(`${name} (${fmt(cut / MiB, 0)} MiB)`, () =>
      countRegion(
        (s, e) => store.read(ref, s, e),
        { dataOffset: h.dataOffset, size: cut },
        { partSize, concurrency },
      ),
    );
    out.push({ ...r, name: `${r.name}`, bytes: cut, peakRssMb: rssMb() });
  }
  return out;
}

function readFileSlice(path: string, start: number, end: number): Buffer {
  const from = Math.max(0, start);
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(Math.max(0, end - from));
  const n = readSync(fd, buf, 0, buf.length, from);
  closeSync(fd);
  return buf.subarray(0, n);
}

function timeSync(name: string, fn: () => number) {
  const t = performance.now();
  const rows = fn();
  const seconds = (performance.now() - t) / 1000;
  console.log(`[bench] ${name}: ${rows} in ${fmt(seconds, 3)} s`);
  return { name, rows, seconds };
}

async function timeAsync(name: string, fn: () => Promise<number>) {
  const t = performance.now();
  const rows = await fn();
  const seconds = (performance.now() - t) / 1000;
  console.log(`[bench] ${name}: ${rows} rows in ${fmt(seconds, 3)} s`);
  return { name, rows, seconds };
}

await main();
