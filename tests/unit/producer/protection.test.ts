import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ecsAgentProtection, protectionFromEnv } from '../../../services/producer/adapters/protection-ecs.ts';
import {
  NO_PROTECTION,
  scaleInProtection,
  type TaskProtectionPort,
} from '../../../services/producer/protection.ts';

/** A port that records every call; `fail` makes the next calls throw. */
function recordingPort() {
  const calls: { enabled: boolean; expiresInMinutes?: number }[] = [];
  const port: TaskProtectionPort & { fail: boolean } = {
    fail: false,
    async set(enabled, expiresInMinutes) {
      if (this.fail) throw new Error('agent unreachable');
      calls.push(expiresInMinutes === undefined ? { enabled } : { enabled, expiresInMinutes });
    },
  };
  return { port, calls };
}

const quietLog = () => ({ info: vi.fn(), warn: vi.fn() });

describe('scale-in protection while jobs are held', () => {
  it('protects on the first job, stays on while any job runs, drops it after the last', async () => {
    // Prepare
    const { port, calls } = recordingPort();
    const p = scaleInProtection(port, { log: quietLog(), setInterval: () => 1, clearInterval: () => {} });
    // Act
    p.jobStarted('a');
    p.jobStarted('b');
    p.jobStarted('a'); // a repeat (the same job announced twice) changes nothing
    p.jobEnded('a');
    await p.settled();
    const whileB = [...calls];
    p.jobEnded('b');
    await p.settled();
    // Assess
    expect(whileB).toEqual([{ enabled: true, expiresInMinutes: 60 }]);
    expect(calls).toEqual([{ enabled: true, expiresInMinutes: 60 }, { enabled: false }]);
    expect(p.wanted).toBe(false);
  });

  it('renews before the protection expires while a long job runs, and stops renewing after it', async () => {
    // Prepare
    vi.useFakeTimers();
    try {
      const { port, calls } = recordingPort();
      const p = scaleInProtection(port, { log: quietLog(), expiresInMinutes: 30 });
      // Act: a 95-minute job, renewed every 10 minutes (a third of 30)
      p.jobStarted('long');
      await vi.advanceTimersByTimeAsync(95 * 60_000);
      p.jobEnded('long');
      await p.settled();
      await vi.advanceTimersByTimeAsync(60 * 60_000);
      await p.settled();
      // Assess: 1 + 9 renewals, then off, then nothing more
      expect(calls.filter((c) => c.enabled)).toHaveLength(10);
      expect(calls.at(-1)).toEqual({ enabled: false });
      expect(calls).toHaveLength(11);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps running jobs when the agent fails, and asks again at the next change', async () => {
    // Prepare
    const { port, calls } = recordingPort();
    const log = quietLog();
    const p = scaleInProtection(port, { log, setInterval: () => 1, clearInterval: () => {} });
    port.fail = true;
    // Act
    p.jobStarted('a');
    await p.settled();
    port.fail = false;
    p.jobEnded('a');
    p.jobStarted('b');
    await p.settled();
    // Assess
    expect(log.warn).toHaveBeenCalledWith(
      'scale-in protection update failed',
      expect.objectContaining({ enabled: true, error: 'agent unreachable' }),
    );
    expect(calls).toEqual([{ enabled: false }, { enabled: true, expiresInMinutes: 60 }]);
    expect(p.wanted).toBe(true);
  });

  it('drops the protection on close even with jobs held (shutdown hands them over)', async () => {
    const { port, calls } = recordingPort();
    const p = scaleInProtection(port, { log: quietLog(), setInterval: () => 1, clearInterval: () => {} });
    p.jobStarted('a');
    await p.close();
    expect(calls).toEqual([{ enabled: true, expiresInMinutes: 60 }, { enabled: false }]);
  });

  it('refuses an expiry ECS does not accept', () => {
    expect(() => scaleInProtection(NO_PROTECTION, { log: quietLog(), expiresInMinutes: 2881 })).toThrow(
      /1\.\.2880/,
    );
  });
});

describe('the ECS agent endpoint adapter', () => {
  let server: Server;
  let uri: string;
  const requests: { method: string; url: string; body: unknown }[] = [];
  let reply: { status: number; body: string } = { status: 200, body: '{}' };
  const read = (req: IncomingMessage) =>
    new Promise<string>((resolve) => {
      let data = '';
      req.on('data', (c) => {
        data += c;
      });
      req.on('end', () => resolve(data));
    });

  beforeAll(async () => {
    server = createServer(async (req, res) => {
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        body: JSON.parse((await read(req)) || '{}'),
      });
      res.writeHead(reply.status, { 'content-type': 'application/json' }).end(reply.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/task-id`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('PUTs the documented body to $ECS_AGENT_URI/task-protection/v1/state', async () => {
    // Prepare
    reply = { status: 200, body: '{"protection":{"ProtectionEnabled":true,"TaskArn":"arn:aws:ecs:x"}}' };
    const agent = ecsAgentProtection(`${uri}/`);
    // Act
    await agent.set(true, 60);
    await agent.set(false);
    // Assess
    expect(requests.slice(-2)).toEqual([
      {
        method: 'PUT',
        url: '/api/task-id/task-protection/v1/state',
        body: { ProtectionEnabled: true, ExpiresInMinutes: 60 },
      },
      { method: 'PUT', url: '/api/task-id/task-protection/v1/state', body: { ProtectionEnabled: false } },
    ]);
  });

  it('throws with the reason when ECS refuses (failure with 200, or an error status)', async () => {
    const agent = ecsAgentProtection(uri);
    reply = { status: 200, body: '{"failure":{"Arn":"arn:aws:ecs:x","Reason":"TASK_NOT_VALID"}}' };
    await expect(agent.set(true, 60)).rejects.toThrow(/refused \(HTTP 200\): TASK_NOT_VALID/);
    reply = { status: 400, body: '{"error":{"Code":"AccessDeniedException","Message":"not authorized"}}' };
    await expect(agent.set(true, 60)).rejects.toThrow(/HTTP 400\): not authorized/);
  });

  it('is a no-op outside ECS (no ECS_AGENT_URI)', () => {
    expect(protectionFromEnv({})).toBe(NO_PROTECTION);
    expect(protectionFromEnv({ ECS_AGENT_URI: uri })).not.toBe(NO_PROTECTION);
  });
});
