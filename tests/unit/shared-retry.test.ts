import { describe, expect, it, vi } from 'vitest';
import { backoffDelay, type RetryInfo, retry, sleepAbortable } from '../../services/shared/retry.ts';

class Flaky extends Error {}

/** A sleep that records the waits instead of waiting. */
function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

describe('backoffDelay (full jitter)', () => {
  it('is uniform between 0 and base * 2^retry: random 0 gives 0, random just under 1 gives the ceiling', () => {
    expect(backoffDelay(0, 100, 10_000, () => 0)).toBe(0);
    expect(backoffDelay(0, 100, 10_000, () => 0.999999)).toBe(99);
    expect(backoffDelay(3, 100, 10_000, () => 0.999999)).toBe(799);
    expect(backoffDelay(3, 100, 10_000, () => 0.5)).toBe(400);
  });

  it('caps the ceiling at maxMs', () => {
    expect(backoffDelay(20, 100, 2000, () => 0.5)).toBe(1000);
    expect(backoffDelay(20, 100, 2000, () => 0.999999)).toBe(1999);
  });
});

describe('retry', () => {
  it('returns the first success and waits a full-jitter delay before each retry', async () => {
    const { waits, sleep } = recordingSleep();
    let calls = 0;
    const result = await retry(
      async (attempt) => {
        calls++;
        if (attempt < 4) throw new Flaky(`try ${attempt}`);
        return 'ok';
      },
      { attempts: 5, baseMs: 100, maxMs: 10_000, sleep, random: () => 0.5 },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(4);
    // Ceilings 100, 200, 400; random 0.5 takes half of each.
    expect(waits).toEqual([50, 100, 200]);
  });

  it('throws the last failure as it was once the tries are used up', async () => {
    const { waits, sleep } = recordingSleep();
    const last = retry(
      async (attempt) => {
        throw new Flaky(`try ${attempt}`);
      },
      { attempts: 3, baseMs: 10, maxMs: 1000, sleep, random: () => 0 },
    );
    await expect(last).rejects.toThrow(new Flaky('try 3'));
    expect(waits).toHaveLength(2);
  });

  it('does not retry a failure that isRetryable refuses', async () => {
    const { waits, sleep } = recordingSleep();
    let calls = 0;
    const run = retry(
      async () => {
        calls++;
        throw new TypeError('bad input');
      },
      { attempts: 5, baseMs: 10, maxMs: 1000, sleep, isRetryable: (e) => e instanceof Flaky },
    );
    await expect(run).rejects.toThrow(TypeError);
    expect(calls).toBe(1);
    expect(waits).toEqual([]);
  });

  it('tells onRetry the failure, the try that failed and the wait, before waiting', async () => {
    const { sleep } = recordingSleep();
    const seen: RetryInfo[] = [];
    await retry(
      async (attempt) => {
        if (attempt === 1) throw new Flaky('first');
        return attempt;
      },
      { attempts: 2, baseMs: 100, maxMs: 1000, sleep, random: () => 0.25, onRetry: (i) => seen.push(i) },
    );
    expect(seen).toEqual([{ error: new Flaky('first'), attempt: 1, delayMs: 25 }]);
  });

  it('stops retrying when the signal aborts during a wait, and throws the last failure', async () => {
    const controller = new AbortController();
    let calls = 0;
    const run = retry(
      async () => {
        calls++;
        throw new Flaky(`try ${calls}`);
      },
      {
        attempts: 10,
        baseMs: 100,
        maxMs: 1000,
        signal: controller.signal,
        sleep: async () => controller.abort(),
      },
    );
    await expect(run).rejects.toThrow(new Flaky('try 1'));
    expect(calls).toBe(1);
  });

  it('makes no try after an abort that came before the failure', async () => {
    const controller = new AbortController();
    controller.abort();
    let calls = 0;
    const { sleep, waits } = recordingSleep();
    const run = retry(
      async () => {
        calls++;
        throw new Flaky('once');
      },
      { attempts: 10, baseMs: 100, maxMs: 1000, signal: controller.signal, sleep },
    );
    await expect(run).rejects.toThrow(Flaky);
    expect(calls).toBe(1);
    expect(waits).toEqual([]);
  });
});

describe('sleepAbortable', () => {
  it('resolves after the time on fake timers', async () => {
    vi.useFakeTimers();
    try {
      let done = false;
      const p = sleepAbortable(1000).then(() => {
        done = true;
      });
      await vi.advanceTimersByTimeAsync(999);
      expect(done).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await p;
      expect(done).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('wakes at once on abort and leaves no listener behind, however many times it is called', async () => {
    vi.useFakeTimers();
    try {
      const controller = new AbortController();
      const add = vi.spyOn(controller.signal, 'addEventListener');
      const remove = vi.spyOn(controller.signal, 'removeEventListener');
      for (let i = 0; i < 20; i++) {
        const p = sleepAbortable(1000, controller.signal);
        await vi.advanceTimersByTimeAsync(1000);
        await p;
      }
      expect(add).toHaveBeenCalledTimes(20);
      expect(remove).toHaveBeenCalledTimes(20);
      const woke = sleepAbortable(60_000, controller.signal);
      controller.abort();
      await woke;
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
