import { describe, expect, it } from 'vitest';
import { buildProgram, inboundKey, runCli } from '../../../cli/program.ts';
import { detailTypesOf } from '../../../cli/replay/command.ts';

const run = (...args: string[]) =>
  runCli(buildProgram().configureOutput({ writeErr: () => {}, writeOut: () => {} }), [
    'node',
    'rowstream',
    ...args,
  ]);

describe('argument parsing', () => {
  it('exits 1 on usage errors before touching any stack', async () => {
    expect(await run('drop')).toBe(1);
    expect(await run('drop', 'x.csv', '--format', 'xml')).toBe(1);
    expect(await run('status', '--limit', '0')).toBe(1);
    expect(await run('dashboard', '--port', '70000')).toBe(1);
    expect(await run('replay', '--from', 'yesterday-ish')).toBe(1);
    expect(await run('no-such-command')).toBe(1);
  });
  it('exits 1 naming the file when it does not exist', async () => {
    expect(await run('drop', '/definitely/not/here.csv')).toBe(1);
  });
  it('exits 0 for --help', async () => {
    expect(await run('--help')).toBe(0);
    expect(await run('drop', '--help')).toBe(0);
  });
  it('exits 1 with `rowstream local up` advice when the stack file is missing', async () => {
    expect(await run('--stack-file', '/nonexistent/stack.json', 'status')).toBe(1);
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
