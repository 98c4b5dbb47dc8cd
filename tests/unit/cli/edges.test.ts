import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { isAllowedHost, startDashboard } from '../../../cli/dashboard/server.ts';
import { buildProgram, runCli } from '../../../cli/program.ts';

function get(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Whether a TCP connection to address:port is accepted. */
function connects(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address, port, timeout: 2000 });
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe('rowstream: unknown commands and options', () => {
  afterEach(() => vi.restoreAllMocks());

  it('an unknown command or option is exit 1, named, with the nearest suggestion', async () => {
    for (const [argv, named, suggested] of [
      [['stauts'], "unknown command 'stauts'", 'Did you mean status?'],
      [['status', '--jsn'], "unknown option '--jsn'", 'Did you mean --json?'],
    ] as const) {
      // Prepare
      const err: string[] = [];
      vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
        err.push(String(s));
        return true;
      });
      // Act
      const code = await runCli(buildProgram(), ['node', 'rowstream', ...argv]);
      vi.restoreAllMocks();
      // Assess
      expect(code).toBe(1);
      expect(err.join('')).toContain(named);
      expect(err.join('')).toContain(suggested);
    }
  });
});

describe('dashboard Host check (DNS rebinding)', () => {
  it('accepts only 127.0.0.1:port and localhost:port', () => {
    expect(isAllowedHost('127.0.0.1:8787', 8787)).toBe(true);
    expect(isAllowedHost('localhost:8787', 8787)).toBe(true);
    for (const h of [
      'evil.example:8787',
      '127.0.0.1:8788',
      '127.0.0.1',
      'localhost',
      undefined,
      '[::1]:8787',
    ]) {
      expect(isAllowedHost(h, 8787)).toBe(false);
    }
  });

  it('answers 421 to another Host, serves its own, and listens on 127.0.0.1 only', async () => {
    // Prepare
    const server = await startDashboard({
      target: { stage: 'local' },
      jobs: { get: async () => null, list: async () => [] },
      metricsDir: mkdtempSync(join(tmpdir(), 'dash-')),
      port: 0,
    });
    try {
      // Act
      const rebound = await get(server.port, '/api/snapshot', `rebind.example:${server.port}`);
      const own = await get(server.port, '/api/snapshot', `127.0.0.1:${server.port}`);
      // Assess
      expect(rebound.status).toBe(421);
      expect(rebound.body).not.toContain('jobs');
      expect(own.status).toBe(200);
      expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
      // Not reachable on any other address of this machine (bound to 127.0.0.1, not 0.0.0.0).
      const others = Object.values(networkInterfaces())
        .flat()
        .filter((a) => a && a.family === 'IPv4' && !a.internal)
        .map((a) => a!.address);
      for (const address of others) expect(await connects(address, server.port), address).toBe(false);
    } finally {
      await server.close();
    }
  });
});
