import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Follows every `*.emf.jsonl` file in a directory like `tail -f` (the local stack's stand-in for the
 * CloudWatch log groups the services' EMF lines go to): each call reads only the bytes added since the
 * last one (a long job's file can be large), returns whole lines only, keeps a partial last line for
 * the next call, and starts over when a file shrinks (deleted and re-created). Read by the local
 * alarm evaluator and the local dashboard.
 */
export class EmfTail {
  private readonly offsets = new Map<string, number>();
  private readonly partial = new Map<string, string>();

  constructor(private readonly dir: string) {}

  files(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.emf.jsonl'))
      .map((f) => join(this.dir, f));
  }

  /** The whole lines added to every file since the last call (at most `maxBytesPerFile` read per file). */
  lines(maxBytesPerFile = 64 * 1024 * 1024): string[] {
    const out: string[] = [];
    for (const file of this.files()) {
      let size: number;
      try {
        size = statSync(file).size;
      } catch {
        continue;
      }
      let offset = this.offsets.get(file) ?? 0;
      if (size < offset) {
        offset = 0;
        this.partial.delete(file);
      }
      if (size === offset) continue;
      const length = Math.min(size - offset, maxBytesPerFile);
      const buf = Buffer.alloc(length);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, buf, 0, length, offset);
      } finally {
        closeSync(fd);
      }
      this.offsets.set(file, offset + length);
      const parts = ((this.partial.get(file) ?? '') + buf.toString('utf8')).split('\n');
      this.partial.set(file, parts.pop() ?? '');
      out.push(...parts);
    }
    return out;
  }
}
