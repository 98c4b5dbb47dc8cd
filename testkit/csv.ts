/**
 * Seeded CSV generators: small tricky files for tests (quoted newlines, `""`, CRLF, BOM, empty
 * fields, empty lines, no final newline) and big realistic files for benchmarks. Reusable by anyone
 * who needs CSV with known row counts.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Mulberry32: small, fast, seedable; the same seed gives the same file on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface TrickyCsv {
  readonly text: string;
  /** Data rows by our rules (records after the header, empty lines skipped). */
  readonly rows: number;
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

function field(r: () => number): string {
  const k = r();
  if (k < 0.15) return '';
  if (k < 0.25) return '""';
  if (k < 0.5) {
    // Quoted, with the hard parts: embedded newlines (LF, CRLF, bare CR), escaped quotes, commas.
    const parts = ['a', 'b c', ',', '""', '\n', '\r\n', '\r', 'é', '😀', ' '];
    let s = '';
    const n = 1 + Math.floor(r() * 6);
    for (let i = 0; i < n; i++) s += pick(r, parts);
    return `"${s}"`;
  }
  const plain = ['x', 'hello', '42', ' padded ', 'naïve', '3.14', '-'];
  return pick(r, plain);
}

/**
 * A random but well-formed CSV (RFC 4180: quotes only around whole fields, bare CR only inside
 * quotes, where every reader agrees) and its expected row count.
 */
export function trickyCsv(seed: number, maxRows = 40): TrickyCsv {
  const r = rng(seed);
  const eol = () => (r() < 0.5 ? '\r\n' : '\n');
  const cols = 1 + Math.floor(r() * 4);
  let text = r() < 0.3 ? '\uFEFF' : '';
  while (r() < 0.15) text += eol();
  text += Array.from({ length: cols }, (_, i) => `c${i}`).join(',');
  let rows = 0;
  const n = Math.floor(r() * maxRows);
  for (let i = 0; i < n; i++) {
    text += eol();
    while (r() < 0.1) text += eol(); // empty lines: skipped
    let rec = Array.from({ length: cols }, () => field(r)).join(',');
    // A single empty unquoted field would be an empty line: make it a quoted empty field (a row).
    if (rec === '') rec = '""';
    text += rec;
    rows++;
  }
  if (r() < 0.7) text += eol();
  while (r() < 0.1) text += eol();
  return { text, rows };
}

/** One realistic row: ids, names, a quoted comment (sometimes with a newline and escaped quotes). */
export function benchRow(i: number, r: () => number): string {
  const comment =
    r() < 0.05
      ? `"multi-line note ${i}\nsaid ""ok"", then left"`
      : r() < 0.5
        ? `"Street ${i % 997}, Apt ${i % 31}"`
        : `plain note ${i % 1000}`;
  return `${i},customer-${(i * 7919) % 100000},${comment},${(r() * 10000).toFixed(2)},2026-11-${String(1 + (i % 28)).padStart(2, '0')}T12:00:00Z\r\n`;
}

export const BENCH_HEADER = 'id,customer,comment,amount,created_at\r\n';

/**
 * Writes a bench CSV of at least `bytes` bytes to `path` unless a file of that size is already there
 * (cached under .local/bench/). Returns the data row count written (or null when reused).
 */
export async function ensureBenchCsv(
  path: string,
  bytes: number,
  onProgress?: (written: number) => void,
): Promise<{ reused: boolean; rows: number | null; size: number }> {
  const existing = await stat(path).catch(() => null);
  if (existing && existing.size >= bytes) return { reused: true, rows: null, size: existing.size };
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.partial`;
  const out = createWriteStream(tmp, { highWaterMark: 1 << 20 });
  const r = rng(20261125);
  let written = 0;
  let rows = 0;
  let batch = BENCH_HEADER;
  while (written + batch.length < bytes) {
    for (let k = 0; k < 5000; k++) batch += benchRow(rows++, r);
    const buf = Buffer.from(batch);
    written += buf.length;
    batch = '';
    if (!out.write(buf)) await new Promise<void>((res) => out.once('drain', () => res()));
    onProgress?.(written);
  }
  await new Promise<void>((res, rej) => out.end((e?: Error | null) => (e ? rej(e) : res())));
  await rename(tmp, path);
  return { reused: false, rows, size: written };
}
