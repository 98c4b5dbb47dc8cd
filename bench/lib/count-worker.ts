/**
 * Child of bench/count.ts: `count-worker.ts <path> <start> <end> <chunk> [simd|js]` prints the range's
 * RangeCount as JSON, plus this process's peak RSS (`maxRssMb`), so each contender's memory is its own,
 * and the time spent reading and counting (`scanSeconds`), process start excluded.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { RangeScanner } from '../../services/planner/count.ts';

const [path = '', s = '0', e = '0', c = String(4 << 20), mode = 'simd'] = process.argv.slice(2);
const [start, end, chunk] = [Number(s), Number(e), Number(c)];
const t0 = performance.now();
const fd = openSync(path, 'r');
const lookFrom = Math.max(0, start - 2);
const look = Buffer.alloc(start - lookFrom);
if (look.length > 0) readSync(fd, look, 0, look.length, lookFrom);
const scanner = new RangeScanner(look.length > 0 ? look : undefined, { simd: mode === 'simd' });
const buf = Buffer.allocUnsafeSlow(chunk);
for (let pos = start; pos < end; ) {
  const n = readSync(fd, buf, 0, Math.min(chunk, end - pos), pos);
  if (n === 0) break;
  scanner.push(n === chunk ? buf : buf.subarray(0, n));
  pos += n;
}
closeSync(fd);
const scanSeconds = (performance.now() - t0) / 1000;
const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
process.stdout.write(JSON.stringify({ ...scanner.result(), maxRssMb, scanSeconds }));
