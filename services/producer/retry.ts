/**
 * Retry with exponential backoff and full jitter: delay = random(0, min(maxMs, baseMs * 2^attempt)).
 * Same shape as the house retry helper (attempts, baseMs, maxMs, isRetryable, onRetry, signal,
 * injectable sleep/random); the producer switches to services/shared/retry.ts once it exists.
 */
export interface RetryOptions {
  /** Total tries, the first included. */
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly isRetryable?: (e: unknown) => boolean;
  readonly onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
  readonly signal?: AbortSignal;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

export function backoffDelay(attempt: number, o: Pick<RetryOptions, 'baseMs' | 'maxMs' | 'random'>): number {
  const cap = Math.min(o.maxMs, o.baseMs * 2 ** attempt);
  return Math.round((o.random ?? Math.random)() * cap);
}

export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      const last = attempt + 1 >= o.attempts;
      if (last || o.signal?.aborted || !(o.isRetryable?.(e) ?? true)) throw e;
      const delay = backoffDelay(attempt, o);
      o.onRetry?.(e, attempt + 1, delay);
      await sleep(delay);
    }
  }
}
