/**
 * Setup file of the `integration` project (vitest.config.ts): keeps vitest's output readable.
 *
 * Handlers run in-process in these tests, and their Powertools loggers write JSON lines straight to
 * process.stdout / process.stderr. Those lines go to `test-output/logs/<test file>.log` instead; every
 * other write (vitest's own, a test's console output) passes through untouched. When a test fails,
 * the last lines of its file's service log are printed under the failure, so the cause is still
 * on screen. Producer processes the tests start log to their own files (.local/test-logs/).
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';

const DIR = join(process.cwd(), 'test-output', 'logs');
const TAIL_LINES = 40;
/** A service log line: Powertools' JSON with level and service (`rowstream-<name>`). */
const SERVICE_LINE = /^\{"level":"[A-Z]+".*"service":"rowstream-/;

let file: string | null = null;

type Write = typeof process.stdout.write;
const originals = new Map<NodeJS.WriteStream, Write>();

/** Powertools' Console writes one whole line per call: such calls go to the file, the rest through. */
function divert(stream: NodeJS.WriteStream) {
  const original = stream.write.bind(stream) as Write;
  originals.set(stream, original);
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString() : null;
    if (file !== null && text !== null && SERVICE_LINE.test(text)) {
      appendFileSync(file, text.endsWith('\n') ? text : `${text}\n`);
      (rest.find((r) => typeof r === 'function') as (() => void) | undefined)?.();
      return true;
    }
    return (original as (...a: unknown[]) => boolean)(chunk, ...rest);
  }) as Write;
}

function tail(path: string): string {
  try {
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    return lines.slice(-TAIL_LINES).join('\n');
  } catch {
    return '(no service log lines)';
  }
}

beforeAll(() => {
  mkdirSync(DIR, { recursive: true });
  file = join(DIR, `${basename(expect.getState().testPath ?? 'integration')}.log`);
  appendFileSync(file, `--- run at ${new Date().toISOString()} ---\n`);
  divert(process.stdout);
  divert(process.stderr);
});

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    if (!file) return;
    const write = originals.get(process.stderr) ?? process.stderr.write.bind(process.stderr);
    write(`\n--- last ${TAIL_LINES} service log lines (${file}) ---\n${tail(file)}\n---\n`);
  });
});

afterAll(() => {
  for (const [stream, original] of originals) stream.write = original;
  originals.clear();
  file = null;
});
