import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { countRegion, countRows, foldRanges, scanRange } from '../../../services/planner/count.ts';
import { readHeader } from '../../../services/planner/header.ts';
import { rng, trickyCsv } from '../../../testkit/csv.ts';

const enc = (s: string) => new TextEncoder().encode(s);

/** Data rows of a whole file by our pipeline: header first, then the counter from dataOffset. */
function dataRows(bytes: Uint8Array): number {
  const h = readHeader(bytes, bytes.length);
  return countRows(bytes.subarray(h.dataOffset), bytes.subarray(Math.max(0, h.dataOffset - 2), h.dataOffset));
}

/** Counts [dataOffset, end) split at the given cut points, each range with its real 2-byte look-back. */
function splitCount(bytes: Uint8Array, dataOffset: number, cuts: number[]): number {
  const points = [
    dataOffset,
    ...cuts.filter((c) => c > dataOffset && c < bytes.length).sort((a, b) => a - b),
    bytes.length,
  ];
  const ranges = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const s = points[i]!;
    const e = points[i + 1]!;
    ranges.push(scanRange(bytes.subarray(s, e), bytes.subarray(Math.max(0, s - 2), s)));
  }
  return foldRanges(ranges);
}

describe('countRows (region after the header)', () => {
  // Prepare: each case is the region after a header's "\n"; expected = data rows by our rules.
  const cases: [string, string, number][] = [
    ['empty region', '', 0],
    ['one row, final LF', 'a,b\n', 1],
    ['one row, no final newline', 'a,b', 1],
    ['CRLF rows', 'a\r\nb\r\n', 2],
    ['CRLF, no final newline', 'a\r\nb', 2],
    ['quoted LF is not a row end', '"x\ny",1\n2,3\n', 2],
    ['quoted CRLF', '"x\r\ny",1\r\n', 1],
    ['escaped quotes', '"he said ""hi""\n",1\nz,2', 2],
    ['empty lines skipped (LF)', '\n\na\n\nb\n\n', 2],
    ['empty lines skipped (CRLF)', '\r\n\r\na\r\n\r\nb\r\n\r\n', 2],
    ['quoted empty field is a row', '""\n', 1],
    ['spaces are a row', '  \n', 1],
    ['only empty lines', '\n\r\n\n', 0],
    ['trailing CR only', 'a\n\r', 1],
    ['unterminated quote counts once', 'a\n"b\nc', 2],
    ['empty fields', ',,\n,,', 2],
    ['newlines inside quotes then empty line', '"\n\n"\n\n', 1],
    ['bare CR ends a row (classic Mac)', 'a\rb\r', 2],
    ['bare CR, no final line end', 'a\rb', 2],
    ['bare CR empty lines skipped', '\ra\r\r\rb\r\n\r', 2],
    ['bare CR inside quotes is data', '"x\ry"\rz', 2],
    ['literal quote inside an unquoted field', '1,a"b\n2,c\n3,d\n', 3],
    ['literal quote before a delimiter', '1,a",2\n3,"x\ny"\n', 2],
    ['text after a closing quote', '"a"b"\nc\n', 2],
  ];
  for (const [name, text, expected] of cases) {
    it(name, () => {
      // Act
      const got = countRows(enc(text));
      // Assess
      expect(got).toBe(expected);
    });
  }
});

describe('range splitting', () => {
  it('gives the same count for every single cut point of a tricky file', () => {
    // Prepare
    const bytes = enc('h1,h2\r\n"a\r\n""b""\n",1\r\n\r\n\n"",\r\nlast,"x\n"');
    const h = readHeader(bytes, bytes.length);
    const whole = splitCount(bytes, h.dataOffset, []);
    // Act + Assess: cutting anywhere, even inside "\r\n" or between "" quotes, changes nothing
    expect(whole).toBe(3);
    for (let c = h.dataOffset; c <= bytes.length; c++)
      expect(splitCount(bytes, h.dataOffset, [c])).toBe(whole);
  });

  it('countRegion with tiny parts and concurrency equals one pass', async () => {
    // Prepare
    const { text, rows } = trickyCsv(7, 200);
    const bytes = enc(text);
    const h = readHeader(bytes, bytes.length);
    const read = async function* (start: number, end: number) {
      // Uneven chunks, to cross chunk boundaries inside ranges too.
      for (let s = start; s < end; s += 3) yield bytes.subarray(s, Math.min(end, s + 3));
    };
    // Act
    const got = await countRegion(
      read,
      { dataOffset: h.dataOffset, size: bytes.length },
      { partSize: 7, concurrency: 4 },
    );
    // Assess
    expect(got).toBe(rows);
  });
});

describe('fuzz: whole vs random ranges vs Python csv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'planner-count-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const N = 300;

  it(`${N} random CSVs: generator, one pass, random splits and Python agree`, () => {
    // Prepare
    const files: { path: string; bytes: Uint8Array; rows: number; seed: number }[] = [];
    for (let seed = 1; seed <= N; seed++) {
      const { text, rows } = trickyCsv(seed);
      const bytes = enc(text);
      const path = join(dir, `f${seed}.csv`);
      writeFileSync(path, bytes);
      files.push({ path, bytes, rows, seed });
    }
    // Python's csv module is the independent reader: records that are not [] (empty lines), minus the header.
    const py = [
      'import csv, sys',
      'for p in sys.argv[1:]:',
      "    with open(p, newline='', encoding='utf-8-sig') as f:",
      '        print(sum(1 for r in csv.reader(f) if r) - 1)',
    ].join('\n');
    const pyCounts = execFileSync('python3', ['-c', py, ...files.map((f) => f.path)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map(Number);
    const r = rng(99);
    // Act + Assess
    for (const [i, f] of files.entries()) {
      const one = dataRows(f.bytes);
      const h = readHeader(f.bytes, f.bytes.length);
      const cuts = Array.from({ length: 1 + Math.floor(r() * 6) }, () => Math.floor(r() * f.bytes.length));
      const split = splitCount(f.bytes, h.dataOffset, cuts);
      const ctx = `seed ${f.seed}: ${JSON.stringify(new TextDecoder().decode(f.bytes)).slice(0, 300)}`;
      expect(pyCounts[i], ctx).toBe(f.rows);
      expect(one, ctx).toBe(f.rows);
      expect(split, `${ctx} cuts ${cuts}`).toBe(f.rows);
    }
  });
});
