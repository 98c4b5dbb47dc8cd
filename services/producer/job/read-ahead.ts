/**
 * Pulls `source` ahead of its consumer into a queue of at most `maxBytes`, so the S3 read overlaps
 * with parsing and the Kafka send instead of waiting for them (the stream alone only reads ahead by
 * the socket's buffers). Backpressure stays: the pump pauses while the queue is full. An error of the
 * source is handed over in order, after the chunks read before it.
 */
export async function* readAhead(
  source: AsyncIterable<Buffer>,
  maxBytes: number,
  /** Aborting ends the consumer's wait at once with the signal's reason, even if the source hangs. */
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  const it = source[Symbol.asyncIterator]();
  const queue: Buffer[] = [];
  const state = {
    queued: 0,
    done: false,
    stopped: false,
    failure: null as { error: unknown } | null,
    wakeConsumer: null as (() => void) | null,
    wakePump: null as (() => void) | null,
  };
  const wake = (which: 'wakeConsumer' | 'wakePump') => {
    const w = state[which];
    state[which] = null;
    w?.();
  };
  void (async () => {
    try {
      while (!state.stopped) {
        if (state.queued >= maxBytes) {
          await new Promise<void>((r) => {
            state.wakePump = r;
          });
          continue;
        }
        const next = await it.next();
        if (next.done) break;
        queue.push(next.value);
        state.queued += next.value.length;
        wake('wakeConsumer');
      }
    } catch (e) {
      state.failure = { error: e };
    } finally {
      state.done = true;
      wake('wakeConsumer');
      if (state.stopped) await it.return?.(undefined).catch(() => {});
    }
  })();
  const onAbort = () => wake('wakeConsumer');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (signal?.aborted) throw signal.reason;
      const chunk = queue.shift();
      if (chunk) {
        state.queued -= chunk.length;
        wake('wakePump');
        yield chunk;
        continue;
      }
      if (state.done) {
        if (state.failure) throw state.failure.error;
        return;
      }
      await new Promise<void>((r) => {
        state.wakeConsumer = r;
      });
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    state.stopped = true;
    wake('wakePump');
  }
}
