import { describe, expect, it } from 'vitest';
import { alarmDefinitions, PRODUCER_ERROR_RATE_EXPRESSION } from '../../../monitoring/alarms.ts';

/**
 * Evaluates one datapoint of a metric-math expression using only IF, FILL(x, n), comparisons and
 * arithmetic (what the error-rate expression uses). A missing metric is CloudWatch's "no data": FILL
 * replaces it, anything else computed from it is no data too.
 */
function evaluate(expression: string, values: Record<string, number | null>): number | null {
  const js = expression
    .replace(/\bIF\(/g, '__if(')
    .replace(/\bFILL\(/g, '__fill(')
    .replace(/\b([a-z][A-Za-z0-9_]*)\b(?!\()/g, (id) => `__v(${JSON.stringify(id)})`);
  const fn = new Function('__if', '__fill', '__v', `return (${js});`) as (
    i: (c: unknown, a: unknown, b: unknown) => unknown,
    f: (x: number | null, d: number) => number,
    v: (id: string) => number | null,
  ) => number | null;
  const r = fn(
    (c, a, b) => (c === null || Number.isNaN(c) ? null : c ? a : b),
    (x, d) => (x === null || x === undefined || Number.isNaN(x) ? d : x),
    (id) => {
      if (!(id in values)) throw new Error(`unknown metric ${id}`);
      return values[id] ?? Number.NaN;
    },
  );
  return r === null || Number.isNaN(r) ? null : r;
}

describe('producer error-rate alarm expression', () => {
  const def = alarmDefinitions('prod').find((a) => a.id === 'producer-error-rate')!;
  const threshold = def.threshold;
  const expr = def.source.kind === 'math' ? def.source.expression : '';

  it('is the expression the stack deploys', () => {
    expect(expr).toBe(PRODUCER_ERROR_RATE_EXPRESSION);
  });

  it('trips on a total Kafka outage: sends fail, no row is read', () => {
    const v = evaluate(expr, { errors: 12, rejected: null, processed: null });
    expect(v).toBe(100);
    expect(v! > threshold).toBe(true);
    expect(evaluate(expr, { errors: 3, rejected: null, processed: 0 })! > threshold).toBe(true);
  });

  it('stays at 0 when the producer is idle (no metric at all)', () => {
    expect(evaluate(expr, { errors: null, rejected: null, processed: null })).toBe(0);
  });

  it('is the share of bad rows and errors while rows flow', () => {
    expect(evaluate(expr, { errors: 1, rejected: 9, processed: 1000 })).toBe(1);
    expect(evaluate(expr, { errors: null, rejected: 100, processed: 1000 })! > threshold).toBe(true);
  });
});
