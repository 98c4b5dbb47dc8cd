import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileWat, GENERATED_PATH, renderModule } from '../../../scripts/build-wasm.ts';
import {
  foldRanges,
  type RangeCount,
  RangeScanner,
  SIMD_MIN_BYTES,
  scanRange,
} from '../../../services/planner/count.ts';
import { SLICE_BYTES, simdKernel } from '../../../services/planner/count-simd.ts';
import { readHeader } from '../../../services/planner/header.ts';
import { rng, trickyCsv } from '../../../testkit/csv.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => JSON.stringify(new TextDecoder().decode(b)).slice(0, 300);

/** Scans `bytes` pushed in chunks of the given sizes (cycled), with or without the SIMD kernel. */
function scanChunked(bytes: Uint8Array, sizes: number[], simd: boolean, lookBack?: Uint8Array): RangeCount {
  const s = new RangeScanner(lookBack, { simd });
  let k = 0;
  for (let o = 0; o < bytes.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]!);
    s.push(bytes.subarray(o, o + n));
    o += n;
  }
  return s.result();
}

/** Random bytes over a small alphabet: every mask bit pattern (quotes, LF, CR runs) shows up often. */
function denseBytes(seed: number, length: number): Uint8Array {
  const r = rng(seed);
  const alphabet = enc('"\n\r\n"a,\n\r\r""');
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = alphabet[Math.floor(r() * alphabet.length)]!;
  return out;
}

describe('the WebAssembly module', () => {
  it('count-simd.wasm.ts is what count-simd.wat compiles to (run scripts/build-wasm.ts if not)', async () => {
    // Prepare
    const committed = readFileSync(GENERATED_PATH, 'utf8');
    // Act
    const fresh = renderModule(await compileWat());
    // Assess
    expect(committed).toBe(fresh);
  });

  it('loads on this runtime, so the tests below exercise the kernel and not only the JS fallback', () => {
    // Act
    const kernel = simdKernel();
    // Assess
    expect(kernel).not.toBeNull();
  });

  it('scans whole 64-byte blocks only and leaves the tail to the caller', () => {
    // Prepare
    const kernel = simdKernel()!;
    const out = {
      newlines: 0,
      newlinesOdd: 0,
      empties: 0,
      emptiesOdd: 0,
      crs: 0,
      crlfs: 0,
      stray: 0,
      parity: 0 as 0 | 1,
    };
    const bytes = enc(`${'\n'.repeat(64)}"\n\n`);
    // Act
    const done = kernel.scan(bytes, 0x0a, -1, 0, out, 0x2c);
    // Assess: 64 LFs after a LF: all empty lines, at even parity; the quote and LFs after it untouched
    expect(done).toBe(64);
    expect(out).toEqual({
      newlines: 64,
      newlinesOdd: 0,
      empties: 64,
      emptiesOdd: 0,
      crs: 0,
      crlfs: 0,
      stray: 0,
      parity: 0,
    });
  });
});

describe('SIMD equals JS', () => {
  it('on every pattern of LF / CR / quote placed across a block boundary and a slice boundary', () => {
    // Prepare: short patterns that exercise the carries (parity, LF one and two bytes back, CR)
    const patterns = [
      '\n\n',
      '\r\n\r\n',
      '\n\r\n',
      '"\n"\n',
      '\n"',
      '""\n\n',
      '\r\n\n',
      'a\r\n\r\n',
      '"\r\n\r\n"',
    ];
    const filler = 'x,';
    for (const pattern of patterns) {
      for (const around of [64, 128, SLICE_BYTES]) {
        for (let at = around - 5; at <= around + 2; at++) {
          const text = filler.repeat(Math.ceil(at / 2)).slice(0, at) + pattern + filler.repeat(40);
          const bytes = enc(text);
          for (const look of [undefined, enc('\n'), enc('\r'), enc('\n\r'), enc('a"')]) {
            // Act
            const js = scanChunked(bytes, [bytes.length], false, look);
            const simd = scanChunked(bytes, [bytes.length], true, look);
            // Assess
            expect(simd, `${JSON.stringify(pattern)} at ${at}, look-back ${look}`).toEqual(js);
          }
        }
      }
    }
  });

  it('on dense random bytes (quotes, LF, CR runs) at random chunk sizes, larger than a slice', () => {
    for (let seed = 1; seed <= 40; seed++) {
      // Prepare
      const r = rng(seed);
      const bytes = denseBytes(seed, seed <= 4 ? 2 * SLICE_BYTES + 77 : 1 + Math.floor(r() * 9000));
      const sizes = Array.from({ length: 7 }, () => Math.floor(r() * (r() < 0.3 ? 200 : 5000)));
      const look = denseBytes(seed + 1000, Math.floor(r() * 3));
      // Act
      const js = scanChunked(bytes, [bytes.length], false, look);
      const simdWhole = scanChunked(bytes, [bytes.length], true, look);
      const simdChunked = scanChunked(bytes, sizes, true, look);
      // Assess
      expect(simdWhole, `seed ${seed}`).toEqual(js);
      expect(simdChunked, `seed ${seed} sizes ${sizes}`).toEqual(js);
    }
  });

  it('on random CSVs at random chunk sizes and random range cuts: counts, parity, last bytes', () => {
    const r = rng(4242);
    for (let seed = 1; seed <= 200; seed++) {
      // Prepare
      const bytes = enc(trickyCsv(seed, 300).text);
      const sizes = Array.from({ length: 5 }, () => SIMD_MIN_BYTES - 3 + Math.floor(r() * 2000));
      const cut = Math.floor(r() * bytes.length);
      const ranges = [
        [0, cut],
        [cut, bytes.length],
      ] as const;
      for (const [s, e] of ranges) {
        const part = bytes.subarray(s, e);
        const look = bytes.subarray(Math.max(0, s - 2), s);
        // Act
        const js = scanChunked(part, [part.length], false, look.length > 0 ? look : undefined);
        const simd = scanChunked(part, sizes, true, look.length > 0 ? look : undefined);
        // Assess
        expect(simd, `seed ${seed} [${s}, ${e}) sizes ${sizes}: ${dec(part)}`).toEqual(js);
      }
    }
  });

  it('splitting a tricky file at every byte, both halves through the kernel, changes nothing', () => {
    // Prepare: a tricky file longer than two blocks on each side of every cut
    const unit = '"a\r\n""b""\n",1\r\n\r\n\n"",\r\nlast,"x\n"\n';
    const bytes = enc(unit.repeat(30));
    const whole = foldRanges([scanRange(bytes, undefined, { simd: false })]);
    for (let c = 0; c <= bytes.length; c++) {
      // Act
      const a = scanRange(bytes.subarray(0, c), undefined, { simd: true });
      const b = scanRange(bytes.subarray(c), bytes.subarray(Math.max(0, c - 2), c), { simd: true });
      // Assess
      expect(foldRanges([a, b]), `cut ${c}`).toBe(whole);
    }
  });
});

describe('SIMD path vs Python csv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'planner-count-simd-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const N = 150;

  it(`${N} random CSVs (large enough for the kernel) agree with the generator and Python`, () => {
    // Prepare
    const files: { path: string; bytes: Uint8Array; rows: number; seed: number }[] = [];
    for (let seed = 1; seed <= N; seed++) {
      const { text, rows } = trickyCsv(10_000 + seed, 400);
      const bytes = enc(text);
      const path = join(dir, `f${seed}.csv`);
      writeFileSync(path, bytes);
      files.push({ path, bytes, rows, seed });
    }
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
    const r = rng(7);
    // Act + Assess
    for (const [i, f] of files.entries()) {
      const h = readHeader(f.bytes, f.bytes.length);
      const data = f.bytes.subarray(h.dataOffset);
      const look = f.bytes.subarray(Math.max(0, h.dataOffset - 2), h.dataOffset);
      const sizes = [SIMD_MIN_BYTES + Math.floor(r() * 4000)];
      const got = foldRanges([scanChunked(data, sizes, true, look)]);
      const ctx = `seed ${f.seed}: ${dec(f.bytes)}`;
      expect(pyCounts[i], ctx).toBe(f.rows);
      expect(got, ctx).toBe(f.rows);
    }
  });
});
