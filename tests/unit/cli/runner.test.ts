import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { intervalMs, scheduledEvent, startScheduler } from '../../../local/runner/scheduler.ts';
import {
  markerOf,
  runnerPaths,
  SERVICE_SPECS,
  scheduleSpeedup,
  serviceEnv,
} from '../../../local/runner/services.ts';
import { pidState, serviceStatuses } from '../../../local/runner/supervisor.ts';
import type { StackOutputs } from '../../../topology/topology.ts';

const dir = mkdtempSync(join(tmpdir(), 'rowstream-runner-'));
const children: number[] = [];
afterAll(() => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

describe('pid files', () => {
  it('is "none" without a pid file', () => {
    expect(pidState(join(dir, 'absent.pid'), 'x')).toEqual({ kind: 'none' });
  });

  it('is "running" for a live process whose command line carries the marker', () => {
    // Prepare: a real child whose argv contains a marker
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)', 'rowstream-test-marker']);
    children.push(child.pid!);
    const file = join(dir, 'live.pid');
    writeFileSync(file, `${child.pid}\n`);
    // Act / Assess
    expect(pidState(file, 'rowstream-test-marker')).toEqual({ kind: 'running', pid: child.pid });
  });

  it('is "stale" when the pid now belongs to another program (recycled pid)', () => {
    const file = join(dir, 'recycled.pid');
    writeFileSync(file, `${process.pid}\n`);
    expect(pidState(file, 'local/runner/service.ts planner')).toEqual({ kind: 'stale', pid: process.pid });
  });

  it('is "stale" when the process is gone', async () => {
    const child = spawn(process.execPath, ['-e', '0']);
    await new Promise((r) => child.once('exit', r));
    const file = join(dir, 'dead.pid');
    writeFileSync(file, `${child.pid}\n`);
    expect(pidState(file, 'x').kind).toBe('stale');
  });

  it('lists every service with its log path under the state dir', () => {
    const paths = runnerPaths(join(dir, 'state'));
    const statuses = serviceStatuses(paths);
    expect(statuses.map((s) => s.name)).toEqual(['planner', 'producer', 'alarm-router', 'scheduler']);
    expect(statuses[0]?.log).toBe(join(dir, 'state', 'logs', 'planner.log'));
    expect(statuses.every((s) => s.state === 'none')).toBe(true);
  });

  it('marks each service by what its command line runs: entry and argument, or its bundle', () => {
    expect(markerOf(SERVICE_SPECS.planner)).toBe('local/runner/service.ts planner');
    expect(markerOf(SERVICE_SPECS.producer)).toBe('.local/build/producer-runner-');
  });
});

describe('service environment', () => {
  it('gives each service the stage resources and its own EMF file', () => {
    const outputs = {
      stage: 's1',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:4566',
      bucket: 'b',
      busName: 'bus',
      tables: { jobs: 'jobs', counts: 'counts', state: 'state' },
      queues: {
        planner: { url: 'qp' },
        producer: { url: 'qpr' },
        alarmRouter: { url: 'qa' },
        ruleTargets: { url: 'qr' },
      },
      topics: { critical: { arn: 'c' }, warning: { arn: 'w' }, info: { arn: 'i' } },
      kafka: { brokers: ['127.0.0.1:9092'] },
    } as unknown as StackOutputs;
    const paths = runnerPaths('/state');
    const env = serviceEnv(outputs, 'producer', paths, { PATH: '/bin', ROWSTREAM_STAGE: 'other' });
    expect(env.ROWSTREAM_STAGE).toBe('s1');
    expect(env.PATH).toBe('/bin');
    expect(env.ROWSTREAM_METRICS_SINK).toBe('file:/state/metrics/producer.emf.jsonl');
    expect(env.AWS_ENDPOINT_URL).toBe('http://127.0.0.1:4566');
    expect(env.KAFKA_BROKERS).toBe('127.0.0.1:9092');
  });
});

describe('scheduler', () => {
  it('divides the topology interval by the speed-up, never below a second', () => {
    expect(intervalMs({ everySeconds: 300 }, 60)).toBe(5000);
    expect(intervalMs({ everySeconds: 300 }, 1)).toBe(300_000);
    expect(intervalMs({ everySeconds: 1 }, 1000)).toBe(1000);
    expect(scheduleSpeedup({})).toBe(1);
    expect(scheduleSpeedup({ ROWSTREAM_SCHEDULE_SPEEDUP: '60' })).toBe(60);
    expect(() => scheduleSpeedup({ ROWSTREAM_SCHEDULE_SPEEDUP: '0' })).toThrow(/positive/);
  });

  it('builds an EventBridge scheduled event for the rule', () => {
    const e = scheduledEvent('arn:aws:events:us-east-1:123456789012:rule/r', 'us-east-1', new Date(0));
    expect(e['detail-type']).toBe('Scheduled Event');
    expect(e.account).toBe('123456789012');
    expect(e.resources).toEqual(['arn:aws:events:us-east-1:123456789012:rule/r']);
  });

  it('fires at start and on every tick, says why it fires, and survives a failing run', async () => {
    // Prepare
    const fired: string[] = [];
    const logs: string[] = [];
    let failNext = true;
    const controller = new AbortController();
    const targets = [
      {
        schedule: { name: 'cost-tracker', everySeconds: 2, expression: 'rate(2 seconds)' },
        fire: async () => {
          fired.push('cost');
          if (failNext) {
            failNext = false;
            throw new Error('boom');
          }
        },
      },
    ];
    // Act: speed-up 2 -> one firing per second, on fake time
    vi.useFakeTimers();
    try {
      const done = startScheduler(
        targets,
        2,
        { log: (level, m) => logs.push(`${level} ${m}`), now: () => new Date() },
        controller.signal,
      );
      await vi.advanceTimersByTimeAsync(2300);
      controller.abort();
      await vi.runOnlyPendingTimersAsync();
      await done;
    } finally {
      vi.useRealTimers();
    }
    // Assess: at start, at 1 s and at 2 s
    expect(fired).toEqual(['cost', 'cost', 'cost']);
    expect(logs.some((l) => l.startsWith('info moto does not fire scheduled rules'))).toBe(true);
    expect(logs.some((l) => l.startsWith('error cost-tracker: failed'))).toBe(true);
  });
});
