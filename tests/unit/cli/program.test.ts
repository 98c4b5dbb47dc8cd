import { describe, expect, it, vi } from 'vitest';
import { buildProgram, inboundKey, runCli } from '../../../cli/program.ts';
import { detailTypesOf } from '../../../cli/replay/command.ts';

/** Runs the CLI in process; returns its exit code and what it wrote (commander's output and console.error). */
async function run(...args: string[]): Promise<{ code: number; err: string; out: string }> {
  let err = '';
  let out = '';
  const spy = vi.spyOn(console, 'error').mockImplementation((...parts: unknown[]) => {
    err += `${parts.join(' ')}\n`;
  });
  try {
    const program = buildProgram({ writeErr: (s) => (err += s), writeOut: (s) => (out += s) });
    const code = await runCli(program, ['node', 'rowstream', ...args]);
    return { code, err, out };
  } finally {
    spy.mockRestore();
  }
}

describe('argument parsing', () => {
  it.each([
    [['drop'], "missing required argument 'file'"],
    [
      ['drop', 'x.csv', '--format', 'xml'],
      "'--format <format>' argument 'xml' is invalid. Allowed choices are json, csv",
    ],
    [['status', '--limit', '0'], "'--limit <n>' argument '0' is invalid. must be a positive integer"],
    [['dashboard', '--port', '70000'], "'--port <port>' argument '70000' is invalid. must be a TCP port"],
    [
      ['replay', '--from', 'yesterday-ish'],
      "'--from <time>' argument 'yesterday-ish' is invalid. an ISO time",
    ],
    [['no-such-command'], "unknown command 'no-such-command'"],
  ])('exits 1 on the usage error of %j, naming it, before touching any stack', async (args, message) => {
    const r = await run(...args);
    expect(r.code).toBe(1);
    expect(r.err).toContain(message);
  });
  it('suggests the nearest command for a typo', async () => {
    const r = await run('dorp');
    expect(r.code).toBe(1);
    expect(r.err).toContain("unknown command 'dorp'");
    expect(r.err).toContain('Did you mean drop?');
  });
  it('exits 1 naming the file when it does not exist', async () => {
    const r = await run('drop', '/definitely/not/here.csv');
    expect(r.code).toBe(1);
    expect(r.err).toContain('/definitely/not/here.csv: no such file');
  });
  it('exits 0 for --help and prints the commands', async () => {
    const top = await run('--help');
    expect(top.code).toBe(0);
    expect(top.out).toContain('Usage: rowstream');
    expect(top.out).toMatch(/\bdrop\b/);
    const drop = await run('drop', '--help');
    expect(drop.code).toBe(0);
    expect(drop.out).toContain('Usage: rowstream drop');
  });
  it('exits 1 with `rowstream local up` advice when the stack file is missing', async () => {
    const r = await run('--stack-file', '/nonexistent/stack.json', 'status');
    expect(r.code).toBe(1);
    expect(r.err).toContain('/nonexistent/stack.json does not exist');
    expect(r.err).toContain('rowstream local up');
  });
});

describe('helpers', () => {
  it('drops under inbound/ by file name or explicit key', () => {
    expect(inboundKey('/a/b/orders.csv', undefined)).toBe('inbound/orders.csv');
    expect(inboundKey('/a/b/orders.csv', '2026/11/o.csv')).toBe('inbound/2026/11/o.csv');
    expect(inboundKey('/a/b/orders.csv', 'inbound/x.csv')).toBe('inbound/x.csv');
  });
  it('turns event names into detail-types', () => {
    expect(detailTypesOf(['JobStarted', 'JobFailed.v1'])).toEqual(['JobStarted.v1', 'JobFailed.v1']);
    expect(detailTypesOf([])).toBeUndefined();
  });
});
