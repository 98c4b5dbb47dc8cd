import { describe, expect, it } from 'vitest';
import { readAhead } from '../../../services/producer/core.ts';

/** A source of `n` chunks of `size` bytes that records how far it was pulled. */
function source(n: number, size: number, failAt = -1) {
  const state = { pulled: 0, closed: false };
  async function* gen() {
    try {
      for (let i = 0; i < n; i++) {
        if (i === failAt) throw new Error(`broken at ${i}`);
        state.pulled++;
        yield Buffer.alloc(size, i);
      }
    } finally {
      state.closed = true;
    }
  }
  return { iterable: gen(), state };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('readAhead', () => {
  it('hands every chunk over in order', async () => {
    // Prepare
    const { iterable } = source(50, 10);
    // Act
    const seen: number[] = [];
    for await (const c of readAhead(iterable, 100)) seen.push(c[0]!);
    // Assess
    expect(seen).toEqual([...Array(50).keys()]);
  });

  it('reads ahead while the consumer is busy, but no more than the limit', async () => {
    // Prepare
    const { iterable, state } = source(100, 10);
    const it = readAhead(iterable, 50)[Symbol.asyncIterator]();
    // Act: take one chunk, then stay busy
    await it.next();
    await tick();
    // Assess: 5 chunks (50 bytes) queued beyond the one handed over, not the whole source
    expect(state.pulled).toBe(6);
    await it.return(undefined);
  });

  it('delivers the chunks read before a source error, then the error', async () => {
    // Prepare
    const { iterable } = source(10, 10, 4);
    // Act
    const seen: number[] = [];
    const run = (async () => {
      for await (const c of readAhead(iterable, 1000)) seen.push(c[0]!);
    })();
    // Assess
    await expect(run).rejects.toThrow('broken at 4');
    expect(seen).toEqual([0, 1, 2, 3]);
  });

  it('closes the source when the consumer stops early', async () => {
    // Prepare
    const { iterable, state } = source(1000, 10);
    // Act
    for await (const c of readAhead(iterable, 30)) if (c[0] === 2) break;
    await tick();
    // Assess
    expect(state.closed).toBe(true);
    expect(state.pulled).toBeLessThan(10);
  });
});
