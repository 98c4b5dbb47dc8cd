/** Child of bench/count.ts: `count-worker.ts <path> <start> <end> <chunk>` prints the range's RangeCount. */
import { closeSync, openSync, readSync } from 'node:fs';
import { RangeScanner } from '../../services/planner/count.ts';

const [path = '', ...nums] = process.argv.slice(2);
const [start = 0, end = 0, chunk = 4 << 20] = nums.map(Number);
const fd = openSync(path, 'r');
const lookFrom = Math.max(0, start - 2);
const look = Buffer.alloc(start - lookFrom);
if (look.length > 0) readSync(fd, look, 0, look.length, lookFrom);
const scanner = new RangeScanner(look.length > 0 ? look : undefined);
const buf = Buffer.allocUnsafeSlow(chunk);
for (let pos = start; pos < end; ) {
  const n = readSync(fd, buf, 0, Math.min(chunk, end - pos), pos);
  if (n === 0) break;
  scanner.push(n === chunk ? buf : buf.subarray(0, n));
  pos += n;
}
closeSync(fd);
process.stdout.write(JSON.stringify(scanner.result()));
