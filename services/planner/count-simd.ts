/**
 * Loader and JS face of the WebAssembly SIMD counting kernel (count-simd.wat, compiled into
 * count-simd.wasm.ts by scripts/build-wasm.ts). It computes, for whole 64-byte blocks, exactly what
 * RangeScanner's JS loop computes (see count.ts for the row rules); RangeScanner uses it for large
 * chunks and keeps the JS loop for tails, small chunks and runtimes without WASM SIMD.
 *
 * WebAssembly cannot read a JS buffer in place, so each chunk is copied into the module's memory, in
 * slices of at most {@link SLICE_BYTES} (the copy then stays in cache for the scan, and memory stays
 * small whatever the chunk size). The module is instantiated once per process, on first use; scans are
 * synchronous, so one instance serves every scanner.
 */
import { COUNT_SIMD_WASM_BASE64 } from './count-simd.wasm.ts';

/** Where the data starts in the module's memory; the two bytes before it are the look-back. */
const DATA = 64;
const BLOCK = 64;
const PAGE = 65536;
/**
 * Bytes copied and scanned per kernel call. Copy + scan of 512 MiB in memory measured 4.2 GB/s with
 * 16 KiB slices and 4.6-4.8 GB/s from 64 KiB to 1 MiB; 128 KiB keeps the copy in L2 for the scan.
 */
export const SLICE_BYTES = 128 * 1024;

/** Counts of one {@link SimdKernel.scan}, by quote parity since the start of the range. */
export interface SimdScan {
  newlines: number;
  newlinesOdd: number;
  empties: number;
  emptiesOdd: number;
  /** CR bytes, and LFs right after a CR: a difference means a bare CR (count.ts then counts exactly). */
  crs: number;
  crlfs: number;
  /** Bit 0: a quote opened mid-field if the range starts outside quotes; bit 1: if it starts inside. */
  stray: number;
  parity: 0 | 1;
}

export interface SimdKernel {
  /**
   * Scans the longest prefix of `chunk` made of whole 64-byte blocks and returns its length (the
   * caller scans the rest). `prev1`/`prev2` are the one/two bytes before `chunk` (-1 = none),
   * `parity` the quote parity before it, `delim` the delimiter byte. Adds the counts into `out` (ORs
   * the stray flags) and sets `out.parity`.
   */
  scan(chunk: Uint8Array, prev1: number, prev2: number, parity: 0 | 1, out: SimdScan, delim: number): number;
}

type ScanFn = (p: number, blocks: number, parity: number, delim: number) => number;

let cached: SimdKernel | null | undefined;

/** The kernel, or null when this runtime has no WebAssembly SIMD (callers fall back to JS). */
export function simdKernel(): SimdKernel | null {
  if (cached === undefined) cached = instantiate();
  return cached;
}

function instantiate(): SimdKernel | null {
  try {
    const bytes = Buffer.from(COUNT_SIMD_WASM_BASE64, 'base64');
    if (!WebAssembly.validate(bytes)) return null;
    // Synchronous compile: the module is < 1 KiB, and count.ts's API is synchronous.
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
    const memory = instance.exports.memory as WebAssembly.Memory;
    const scanFn = instance.exports.scan as ScanFn;
    return createKernel(memory, scanFn);
  } catch {
    return null;
  }
}

function createKernel(memory: WebAssembly.Memory, scanFn: ScanFn): SimdKernel {
  // Views are rebuilt after memory.grow, which detaches the old buffer.
  let heap = new Uint8Array(memory.buffer);
  let results = new Uint32Array(memory.buffer, 0, 7);
  const ensure = (bytes: number) => {
    const need = DATA + bytes;
    if (need <= memory.buffer.byteLength) return;
    memory.grow(Math.ceil((need - memory.buffer.byteLength) / PAGE));
    heap = new Uint8Array(memory.buffer);
    results = new Uint32Array(memory.buffer, 0, 7);
  };
  return {
    scan(chunk, prev1, prev2, parity, out, delim) {
      const total = chunk.length - (chunk.length % BLOCK);
      let p = parity;
      for (let off = 0; off < total; off += SLICE_BYTES) {
        const n = Math.min(SLICE_BYTES, total - off);
        ensure(n);
        // Look-back: the two bytes before this slice (off is 0 or >= SLICE_BYTES). -1 (none) -> 0,
        // which is neither LF nor CR, as "none" must be.
        const b1 = off === 0 ? prev1 : chunk[off - 1]!;
        const b2 = off === 0 ? prev2 : chunk[off - 2]!;
        heap[DATA - 1] = Math.max(b1, 0);
        heap[DATA - 2] = Math.max(b2, 0);
        heap.set(off === 0 && n === chunk.length ? chunk : chunk.subarray(off, off + n), DATA);
        p = scanFn(DATA, n / BLOCK, p, delim) as 0 | 1;
        out.newlines += results[0]!;
        out.newlinesOdd += results[1]!;
        out.empties += results[2]!;
        out.emptiesOdd += results[3]!;
        out.crs += results[4]!;
        out.crlfs += results[5]!;
        out.stray |= results[6]!;
      }
      out.parity = p;
      return total;
    },
  };
}
