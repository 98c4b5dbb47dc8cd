/**
 * Deterministic ~100-byte CSV rows whose content can be recomputed from the row number, so the chaos
 * test checks every value, not just counts. No embedded newlines: `kcat -P` (one message per line)
 * produces the same records from the same file, which keeps the benchmark comparison fair.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export const ROWS_HEADER = ['id', 'customer', 'city', 'note', 'amount', 'created_at'];

/** Data row `i` (1-based) without its line ending. */
export function rowFields(i: number): string[] {
  return [
    String(i),
    `customer-${(i * 7919) % 100_000}`,
    ['Lisbon', 'Oslo', 'Zürich', 'Kraków', 'Porto'][i % 5]!,
    `"note ${i % 997}, quoted"`,
    `${(i * 37) % 10_000}.${String(i % 100).padStart(2, '0')}`,
    `2026-11-${String(1 + (i % 28)).padStart(2, '0')}T12:00:00Z`,
  ];
}
export const rowLine = (i: number) => rowFields(i).join(',');

/** The JSON value the producer should send for row `i` (quotes removed by CSV decoding). */
export function rowValue(i: number): Record<string, string> {
  const f = rowFields(i);
  const obj: Record<string, string> = {};
  ROWS_HEADER.forEach((h, k) => {
    obj[h] = k === 3 ? f[k]!.slice(1, -1) : f[k]!;
  });
  return obj;
}

/** Writes header + rows 1..n (LF endings) unless the file already has the expected size. */
export async function writeRowsFile(path: string, n: number): Promise<{ size: number; head: Buffer }> {
  const headerLine = `${ROWS_HEADER.join(',')}\n`;
  let size = Buffer.byteLength(headerLine);
  for (let i = 1; i <= n; i++) size += Buffer.byteLength(rowLine(i)) + 1;
  const existing = await stat(path).catch(() => null);
  const head = Buffer.from(headerLine + rowLine(1));
  if (existing?.size === size) return { size, head };
  await mkdir(dirname(path), { recursive: true });
  const out = createWriteStream(path, { highWaterMark: 1 << 20 });
  let buf = headerLine;
  for (let i = 1; i <= n; i++) {
    buf += `${rowLine(i)}\n`;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
      buf = '';
    }
  }
  await new Promise<void>((res, rej) => out.end(buf, (e?: Error | null) => (e ? rej(e) : res())));
  return { size, head };
}
