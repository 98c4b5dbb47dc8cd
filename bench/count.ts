/**
 * Row-counting benchmark: `npm run bench:count [-- --size-mb 1100 --s3-mb 128 --workers 2]`.
 *
 * Generates (once, cached under .local/bench/) a CSV of quoted fields, some with newlines and escaped
 * quotes, then counts it in the same run with: `wc -l` (the yardstick: not quote-aware), the planner's
 * counter with its JS loop and with its WebAssembly SIMD kernel (count-simd.ts), each in one sequential
 * stream in this process, in one child process (`readSync` into a reused buffer, the leanest loop) and
 * over N ranges in N child processes (what the cores allow), and, when the local stack is up, the
 * planner's own S3 path (ranged GETs, SIMD) on a smaller object, since moto keeps objects in memory.
 * Prints rows, seconds, MB/s, peak RSS and the ratio to `wc -l`. Child runs are timed from the parent,
 * process start included (~0.1 s of node + tsx), and report their own peak RSS.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, createReadStream, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { Command } from 'commander';
import { s3ObjectStore } from '../services/planner/adapters/object-store-s3.ts';
import {
  countRegion,
  foldRanges,
  type RangeCount,
  RangeScanner,
  splitRanges,
} from '../services/planner/count.ts';
import { simdKernel } from '../services/planner/count-simd.ts';
import { MAX_HEADER_BYTES, readHeader } from '../services/planner/header.ts';
import { awsClients } from '../services/shared/aws.ts';
import { ensureBenchCsv } from '../testkit/csv.ts';
import type { StackOutputs } from '../topology/topology.ts';

const program = new Command()
  .option('--size-mb <n>', 'size of the generated CSV in MiB', '1100')
  .option('--workers <n>', 'worker threads for the parallel run', '2')
  .option('--s3-mb <n>', 'size of the S3 run on the local stack (0 = skip)', '128')
  .option('--file <path>', 'count this file instead of the generated one')
  .option('--chunk-kb <n>', 'readSync size of the in-process and child-process runs in KiB', '1024')
  .option('--repeat <n>', "rounds; the table shows each contender's best", '3')
  .parse();
const opts = program.opts<{
  sizeMb: string;
  workers: string;
  s3Mb: string;
  file?: string;
  chunkKb: string;
  repeat: string;
}>();

const ROOT = new URL('..', import.meta.url).pathname;
const MiB = 1024 * 1024;
const rssMb = () => Math.round(process.resourceUsage().maxRSS / 1024);
const fmt = (n: number, d = 2) => n.toFixed(d);

interface Result {
  readonly name: string;
  readonly rows: number;
  readonly seconds: number;
  /** Time spent counting, process start excluded (= seconds for in-process runs). */
  readonly scanSeconds: number;
  readonly bytes: number;
  readonly peakRssMb: number | null;
}

interface Run {
  readonly rows: number;
  readonly scanSeconds?: number;
  readonly peakRssMb?: number;
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
  if (!simdKernel())
    console.log('[bench] no WebAssembly SIMD in this runtime: the SIMD runs use the JS loop');
  const repeat = Math.max(1, Number(opts.repeat));
  const chunk = Number(opts.chunkKb) * 1024;
  const workers = Number(opts.workers);
  const wcRun = async (): Promise<Run> => ({
    rows: Number(execFileSync('wc', ['-l', path], { encoding: 'utf8' }).trim().split(/\s+/)[0]),
  });
  // Other work on a shared 2-core machine makes single runs noisy: each contender runs `repeat` times,
  // interleaved, and the table shows its best run.
  const contenders: { name: string; run: () => Promise<Run>; inProcess: boolean }[] = [
    { name: 'wc -l', run: wcRun, inProcess: false },
  ];
  for (const mode of ['js', 'simd'] as const) {
    const simd = mode === 'simd';
    const tag = simd ? 'SIMD' : 'JS';
    contenders.push(
      {
        name: `${tag}, in process, readSync ${opts.chunkKb} KiB`,
        run: () => inProcess(path, head.dataOffset, size, chunk, simd),
        inProcess: true,
      },
      {
        name: `${tag}, in process, stream 1 MiB`,
        run: () => sequential(path, head.dataOffset, simd),
        inProcess: true,
      },
    );
    for (const n of [...new Set([1, workers])])
      contenders.push({
        name: `${tag}, ${n} child process${n > 1 ? 'es over ranges' : ''}`,
        run: () => parallel(path, head.dataOffset, size, n, chunk, mode),
        inProcess: false,
      });
  }
  const best = new Map<string, Result>();
  for (let round = 1; round <= repeat; round++) {
    for (const c of contenders) {
      const t = performance.now();
      const r = await c.run();
      const seconds = (performance.now() - t) / 1000;
      const res: Result = {
        name: c.name,
        rows: r.rows,
        seconds,
        scanSeconds: r.scanSeconds ?? seconds,
        bytes: size,
        peakRssMb: r.peakRssMb ?? (c.inProcess ? rssMb() : null),
      };
      console.log(
        `[bench] round ${round}/${repeat} ${c.name}: ${r.rows} in ${fmt(seconds, 3)} s${r.scanSeconds ? ` (scan ${fmt(r.scanSeconds, 3)} s)` : ''}`,
      );
      const prev = best.get(c.name);
      if (prev && prev.rows !== res.rows) throw new Error(`${c.name}: ${prev.rows} then ${res.rows} rows`);
      if (!prev || res.seconds < prev.seconds) best.set(c.name, res);
    }
  }
  const results = [...best.values()];
  results.push(...(await s3Run(path, Number(opts.s3Mb) * MiB)));

  const wc = best.get('wc -l')!;
  const rows = results.filter((r) => !r.name.startsWith('wc') && r.bytes === size).map((r) => r.rows);
  const s3Rows = results.filter((r) => r.bytes !== size).map((r) => r.rows);
  const ratio = (seconds: number, bytes: number) => bytes / size / (seconds / wc.seconds);
  console.log('');
  console.log(
    `| run (${fmt(size / MiB, 0)} MiB, best of ${repeat}) | rows | s | MB/s | x wc -l | scan s | scan MB/s | scan x wc -l | peak RSS MB |`,
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r.name} | ${r.rows} | ${fmt(r.seconds, 3)} | ${fmt(r.bytes / 1e6 / r.seconds, 0)} | ${fmt(ratio(r.seconds, r.bytes))} | ${fmt(r.scanSeconds, 3)} | ${fmt(r.bytes / 1e6 / r.scanSeconds, 0)} | ${fmt(ratio(r.scanSeconds, r.bytes))} | ${r.peakRssMb ?? '-'} |`,
    );
  }
  console.log('');
  console.log(
    `[bench] wc -l counts newlines (${wc.rows}), not rows: quoted newlines and the header make it differ from the row count (${rows[0]}).`,
  );
  console.log(
    "[bench] s = wall time (child runs include starting node + tsx); scan s = time inside the children (the slowest one). In-process peak RSS is the bench process's, cumulative.",
  );
  if (rows.some((c) => c !== rows[0])) throw new Error(`the counters disagree: ${rows.join(', ')}`);
  if (s3Rows.some((c) => c !== s3Rows[0])) throw new Error(`the S3 runs disagree: ${s3Rows.join(', ')}`);
}

function readHeaderOf(path: string, size: number) {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(Math.min(size, MAX_HEADER_BYTES));
  readSync(fd, buf, 0, buf.length, 0);
  closeSync(fd);
  return readHeader(buf, size);
}

// A stream allocates a buffer per chunk: 1 MiB measured faster than 4 MiB (fewer page faults) and than
// 256 KiB (fewer async hops).
async function sequential(path: string, dataOffset: number, simd: boolean): Promise<Run> {
  const scanner = new RangeScanner(readFileSlice(path, dataOffset - 2, dataOffset), { simd });
  for await (const chunk of createReadStream(path, { start: dataOffset, highWaterMark: MiB })) {
    scanner.push(chunk as Buffer);
  }
  return { rows: foldRanges([scanner.result()]) };
}

// The leanest loop: one reused buffer, synchronous reads (what a dedicated counting process would do).
async function inProcess(
  path: string,
  dataOffset: number,
  size: number,
  chunk: number,
  simd: boolean,
): Promise<Run> {
  const scanner = new RangeScanner(readFileSlice(path, dataOffset - 2, dataOffset), { simd });
  const buf = Buffer.allocUnsafeSlow(chunk);
  const fd = openSync(path, 'r');
  try {
    for (let pos = dataOffset; pos < size; ) {
      const n = readSync(fd, buf, 0, Math.min(chunk, size - pos), pos);
      if (n === 0) break;
      scanner.push(n === chunk ? buf : buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return { rows: foldRanges([scanner.result()]) };
}

const WORKER_ENTRY = new URL('./lib/count-worker.ts', import.meta.url).pathname;

// One child process per range (tsx's loader does not reach worker threads on Node 20, and processes
// are what two cores give either way); each prints its RangeCount and its peak RSS as JSON.
async function parallel(
  path: string,
  dataOffset: number,
  size: number,
  workers: number,
  chunk: number,
  mode: 'js' | 'simd',
): Promise<Run> {
  const part = Math.ceil((size - dataOffset) / workers);
  const ranges = splitRanges(dataOffset, size, part);
  const results = await Promise.all(
    ranges.map(
      (r) =>
        new Promise<RangeCount & { maxRssMb: number; scanSeconds: number }>((resolve, reject) => {
          execFile(
            process.execPath,
            [...process.execArgv, WORKER_ENTRY, path, String(r.start), String(r.end), String(chunk), mode],
            (error, stdout) => (error ? reject(error) : resolve(JSON.parse(stdout))),
          );
        }),
    ),
  );
  return {
    rows: foldRanges(results),
    scanSeconds: Math.max(...results.map((r) => r.scanSeconds)),
    peakRssMb: Math.max(...results.map((r) => r.maxRssMb)),
  };
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
    ['S3 (SIMD) sequential (1 GET)', cut, 1],
    ['S3 (SIMD) ranges 16 MiB x 4', 16 * MiB, 4],
    ['S3 (SIMD) ranges 8 MiB x 8', 8 * MiB, 8],
  ] as const) {
    const r = await timeAsync(`${name} (${fmt(cut / MiB, 0)} MiB)`, () =>
      countRegion(
        (s, e) => store.read(ref, s, e),
        { dataOffset: h.dataOffset, size: cut },
        { partSize, concurrency },
      ),
    );
    out.push({ ...r, name: `${r.name}`, scanSeconds: r.seconds, bytes: cut, peakRssMb: rssMb() });
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

async function timeAsync(name: string, fn: () => Promise<number>) {
  const t = performance.now();
  const rows = await fn();
  const seconds = (performance.now() - t) / 1000;
  console.log(`[bench] ${name}: ${rows} rows in ${fmt(seconds, 3)} s`);
  return { name, rows, seconds };
}

await main();
