import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { JobStarted } from '../../../events/catalog.ts';
import type { JobOutcome } from '../../../services/producer/core.ts';
import {
  type QueueMessage,
  type ServiceDeps,
  serviceLoop,
  sleepAbortable,
} from '../../../services/producer/service.ts';
import type { JobRecord } from '../../../services/shared/jobs.ts';
import { createLogger } from '../../../services/shared/logger.ts';
import { csvOf, FakeMetrics, jobFor } from './fakes.ts';

const job = (id: string): JobStarted => jobFor(csvOf(1), { jobId: id });
const message = (j: JobStarted, acks: string[]): QueueMessage => ({
  id: `m-${j.jobId}`,
  body: JSON.stringify({
    version: '0',
    id: 'x',
    'detail-type': 'JobStarted.v1',
    source: 'rowstream.planner',
    account: '0',
    time: j.occurredAt,
    region: 'us-east-1',
    resources: [],
    detail: j,
  }),
  ack: async () => {
    acks.push(j.jobId);
  },
});

function harness(over: Partial<ServiceDeps> = {}) {
  const shutdown = new AbortController();
  const started: string[] = [];
  const acks: string[] = [];
  const finish = new Map<string, (o: JobOutcome) => void>();
  const queue: QueueMessage[][] = [];
  const receives: number[] = [];
  const deps: ServiceDeps = {
    receive: async (max, waitSeconds, signal) => {
      receives.push(max);
      const next = queue.shift();
      if (next) return next;
      // An empty long poll: waits, or ends at once on shutdown.
      await sleepAbortable(waitSeconds * 1000, signal);
      if (signal.aborted) throw new Error('aborted');
      return [];
    },
    expiredLeases: async () => [],
    unannouncedPlanned: async () => [],
    runJob: (j, onDecided) =>
      new Promise<JobOutcome>((resolve) => {
        started.push(j.jobId);
        void onDecided?.();
        finish.set(j.jobId, resolve);
      }),
    log: createLogger('producer-test', { level: 'CRITICAL' }),
    metrics: new FakeMetrics(),
    now: () => Date.now(),
    shutdown: shutdown.signal,
    ...over,
  };
  return { deps, shutdown, started, acks, finish, queue, receives };
}

const settings = { concurrency: 2, sweepMs: 5_000, waitSeconds: 20, exitWhenIdleMs: 0 };

describe('sleepAbortable', () => {
  it('leaves no abort listener behind, however many times it is called on one signal', async () => {
    vi.useFakeTimers();
    try {
      const signal = new AbortController().signal;
      const warnings: string[] = [];
      const onWarning = (w: Error) => warnings.push(w.name);
      process.on('warning', onWarning);
      for (let i = 0; i < 50; i++) {
        const p = sleepAbortable(10, signal);
        await vi.advanceTimersByTimeAsync(10);
        await p;
      }
      process.off('warning', onWarning);
      expect(getEventListeners(signal, 'abort')).toHaveLength(0);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      vi.useRealTimers();
    }
  });

  it('resolves at once on abort, and at once when already aborted', async () => {
    vi.useFakeTimers();
    try {
      const c = new AbortController();
      const p = sleepAbortable(60_000, c.signal);
      c.abort();
      await expect(p).resolves.toBeUndefined();
      await expect(sleepAbortable(60_000, c.signal)).resolves.toBeUndefined();
      expect(getEventListeners(c.signal, 'abort')).toHaveLength(0);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the producer service loop', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs the jobs it receives, acknowledges each once decided, and never asks for more than the free slots', async () => {
    const h = harness();
    h.queue.push([message(job('j-a'), h.acks)]);
    const loop = serviceLoop(h.deps, settings);
    await vi.advanceTimersByTimeAsync(10);
    expect(h.started).toEqual(['j-a']);
    expect(h.acks).toEqual(['j-a']);
    // One slot left: the next receive asks for 1.
    expect(h.receives).toEqual([2, 1]);
    h.shutdown.abort();
    h.finish.get('j-a')?.({ kind: 'handed-back', rowsDone: 0 });
    await loop;
  });

  it('waits while all slots are busy and polls again when a job ends', async () => {
    const h = harness();
    h.queue.push([message(job('j-a'), h.acks), message(job('j-b'), h.acks)]);
    const loop = serviceLoop(h.deps, settings);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(h.started).toEqual(['j-a', 'j-b']);
    expect(h.receives).toEqual([2]);
    h.finish.get('j-a')?.({ kind: 'completed', status: 'COMPLETED', rows: 1 });
    await vi.advanceTimersByTimeAsync(10);
    expect(h.receives).toEqual([2, 1]);
    h.shutdown.abort();
    h.finish.get('j-b')?.({ kind: 'completed', status: 'COMPLETED', rows: 1 });
    await loop;
  });

  it('does not start a job twice when its JobStarted arrives again while it runs', async () => {
    const h = harness();
    h.queue.push([message(job('j-a'), h.acks)], [message(job('j-a'), h.acks)]);
    const loop = serviceLoop(h.deps, { ...settings, concurrency: 3 });
    await vi.advanceTimersByTimeAsync(10);
    expect(h.started).toEqual(['j-a']);
    expect(h.acks).toEqual(['j-a', 'j-a']);
    h.shutdown.abort();
    h.finish.get('j-a')?.({ kind: 'handed-back', rowsDone: 0 });
    await loop;
  });

  it('sweeps expired leases and unannounced PLANNED jobs every sweep interval and runs them', async () => {
    const record = (id: string, status: JobRecord['status']): JobRecord => ({
      ...(job(id) as unknown as JobRecord),
      status,
      createdAt: '2026-11-30T00:00:00Z',
      updatedAt: '2026-11-30T00:00:00Z',
    });
    let sweeps = 0;
    const h = harness({
      expiredLeases: async () => (++sweeps === 2 ? [record('j-dead', 'RUNNING')] : []),
      unannouncedPlanned: async () => (sweeps === 3 ? [record('j-planned', 'PLANNED')] : []),
    });
    const loop = serviceLoop(h.deps, { ...settings, concurrency: 4, waitSeconds: 1 });
    await vi.advanceTimersByTimeAsync(4_000);
    expect(sweeps).toBe(1);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(h.started).toEqual(['j-dead']);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(h.started).toEqual(['j-dead', 'j-planned']);
    h.shutdown.abort();
    for (const f of h.finish.values()) f({ kind: 'handed-back', rowsDone: 0 });
    await loop;
  });

  it('exits when idle for the configured time', async () => {
    const h = harness();
    const loop = serviceLoop(h.deps, { ...settings, waitSeconds: 1, exitWhenIdleMs: 3_000 });
    let done = false;
    void loop.then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(2_000);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(done).toBe(true);
  });

  it('on SIGTERM stops polling at once (mid long-poll) and resolves only when the running jobs ended', async () => {
    const h = harness();
    h.queue.push([message(job('j-a'), h.acks)]);
    const loop = serviceLoop(h.deps, settings);
    let done = false;
    void loop.then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(1_000);
    const polls = h.receives.length;
    h.shutdown.abort();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(h.receives.length).toBe(polls);
    expect(done).toBe(false);
    h.finish.get('j-a')?.({ kind: 'handed-back', rowsDone: 3 });
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
  });

  it('keeps going after a failed receive or a job that crashed', async () => {
    let calls = 0;
    const h = harness();
    const receive = h.deps.receive;
    const deps: ServiceDeps = {
      ...h.deps,
      receive: async (...a) => {
        if (++calls === 1) throw new Error('socket hang up');
        return receive(...a);
      },
      runJob: async () => {
        throw new Error('claim failed');
      },
    };
    h.queue.push([message(job('j-a'), h.acks)]);
    const loop = serviceLoop(deps, { ...settings, waitSeconds: 1 });
    await vi.advanceTimersByTimeAsync(1_500);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect((h.deps.metrics as FakeMetrics).points.some((p) => p.name === 'Errors')).toBe(true);
    h.shutdown.abort();
    await loop;
  });
});
