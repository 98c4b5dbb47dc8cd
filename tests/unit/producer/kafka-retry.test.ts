import { describe, expect, it } from 'vitest';
import {
  errorText,
  startupRetryDelay,
  transactionRetryDelay,
} from '../../../services/producer/adapters/kafka-retry.ts';

describe('errorText', () => {
  it('reads the codes and messages nested in aggregate errors and causes', () => {
    // Arrange: the shape the library throws for a failed request (a response error inside a
    // MultipleErrors, its cause a protocol error with apiId and code)
    const inner = Object.assign(new Error('Received response with error'), {
      apiId: 'CONCURRENT_TRANSACTIONS',
      code: 'PLT_KFK_PROTOCOL',
    });
    const outer = new AggregateError([new Error('first'), new Error('wrapped', { cause: inner })], 'failed');
    // Act
    const text = errorText(outer);
    // Assess
    expect(text).toContain('failed');
    expect(text).toContain('first');
    expect(text).toContain('CONCURRENT_TRANSACTIONS');
    expect(text).toContain('PLT_KFK_PROTOCOL');
  });

  it('stops at depth 4 of a cause chain and takes non-errors as text', () => {
    // Arrange
    let e: unknown = new Error('level 6');
    for (let i = 5; i >= 0; i--) e = new Error(`level ${i}`, { cause: e });
    // Act / Assess
    expect(errorText(e)).toContain('level 4');
    expect(errorText(e)).not.toContain('level 5');
    expect(errorText('plain text')).toContain('plain text');
    expect(errorText(undefined)).toBe('');
  });
});

describe('retry delay of the first look at a job topic', () => {
  it("backs off as the Java client does (100 ms doubling to 1 s), not the library's flat 1 s", () => {
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => startupRetryDelay(null, 'metadata', attempt));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000]);
  });
});

describe('retry delay of transaction requests', () => {
  const concurrent = new AggregateError([
    Object.assign(new Error('busy'), { apiId: 'CONCURRENT_TRANSACTIONS' }),
  ]);

  it('retries CONCURRENT_TRANSACTIONS of AddPartitionsToTxn and EndTxn after 20 ms, then 100 ms, then 1 s', () => {
    for (const op of ['addPartitionsToTransaction', 'endTransaction']) {
      const delays = [1, 2, 3, 4].map((attempt) => transactionRetryDelay(null, op, attempt, 5, concurrent));
      expect(delays, op).toEqual([20, 100, 1000, 1000]);
    }
  });

  it("keeps the library's 1 s for other errors and other requests", () => {
    expect(
      transactionRetryDelay(null, 'addPartitionsToTransaction', 1, 5, new Error('NOT_COORDINATOR')),
    ).toBe(1000);
    expect(transactionRetryDelay(null, 'produce', 1, 5, concurrent)).toBe(1000);
  });
});
