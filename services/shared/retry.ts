/**
 * The one retry helper: exponential backoff with full jitter (the AWS Architecture Blog's "Exponential
 * Backoff And Jitter"): the wait before retry n (0-based) is uniform in [0, min(maxMs, baseMs * 2^n)].
 * Full jitter spreads the retries of many callers that failed together, which equal jitter (half fixed,
 * half random) does less well.
 */

export interface RetryInfo {
  readonly error: unknown;
  /** The try that just failed, 1-based. */
  readonly attempt: number;
  /** How long the helper waits before the next try. */
  readonly delayMs: number;
}

export interface RetryOptions {
  /** Tries in all, the first one included (1 = no retry). */
  readonly attempts: number;
  /** Ceiling of the first wait; each further wait's ceiling doubles. */
  readonly baseMs: number;
  /** No wait is longer than this. */
  readonly maxMs: number;
  /** Whether a failure is worth another try (default: every failure is). */
  readonly isRetryable?: (error: unknown) => boolean;
  /** Told before each wait: log it, count it. */
  readonly onRetry?: (info: RetryInfo) => void;
  /** Aborting stops the waiting and the retrying: the last failure is thrown. */
  readonly signal?: AbortSignal;
  /** For tests; the default waits on a timer and wakes early on `signal`. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** For tests; returns a number in [0, 1). */
  readonly random?: () => number;
}

/**
 * The wait before retry `retryIndex` (0 = the first retry): uniform in [0, min(maxMs, baseMs * 2^retryIndex)].
 *
 * @example backoffDelay(3, 100, 2000) // somewhere in [0, 800]
 */
export function backoffDelay(
  retryIndex: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** retryIndex);
  return Math.floor(random() * ceiling);
}

/**
 * Runs `fn` until it resolves, a failure is not retryable, the tries are used up or `signal` aborts;
 * then the last failure is thrown as it was.
 *
 * @example await retry(() => send(batch), { attempts: 5, baseMs: 100, maxMs: 2000, onRetry: ({ error }) => log.warn('send failed', { error }) });
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const sleep = options.sleep ?? sleepAbortable;
  const random = options.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      const retryable = options.isRetryable?.(error) ?? true;
      if (!retryable || attempt >= options.attempts || options.signal?.aborted) throw error;
      const delayMs = backoffDelay(attempt - 1, options.baseMs, options.maxMs, random);
      options.onRetry?.({ error, attempt, delayMs });
      await sleep(delayMs, options.signal);
      if (options.signal?.aborted) throw error;
    }
  }
}

/** Waits `ms`, or less when `signal` aborts; the abort listener is removed either way. */
export function sleepAbortable(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
