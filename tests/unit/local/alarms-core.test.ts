import { describe, expect, it } from 'vitest';
import {
  DatapointStore,
  emfDatapoints,
  evalMath,
  evaluateAlarm,
  metricKey,
  parseMath,
  statistic,
} from '../../../local/runner/alarms-core.ts';
import { type AlarmDef, alarmDefinitions } from '../../../monitoring/alarms.ts';

const STAGE = 'unit';
const defs = alarmDefinitions(STAGE);
const byId = (id: string) => defs.find((d) => d.id === id)!;
const producer = (name: string) => metricKey('Rowstream', name, { Service: 'producer', Stage: STAGE });
// A fake clock: period boundaries at multiples of the (sped-up) period.
const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);

function emfLine(at: number, metrics: Record<string, number | number[]>, dims: Record<string, string>) {
  return JSON.stringify({
    _aws: {
      Timestamp: at,
      CloudWatchMetrics: [
        {
          Namespace: 'Rowstream',
          Dimensions: [Object.keys(dims)],
          Metrics: Object.keys(metrics).map((Name) => ({ Name, Unit: 'Count' })),
        },
      ],
    },
    ...dims,
    ...metrics,
  });
}

describe('EMF as CloudWatch extracts it', () => {
  it('one metric per name and dimension set; dimension values from the record; junk gives nothing', () => {
    const line = emfLine(T0, { RowsRejected: [2, 1] }, { Service: 'producer', Stage: STAGE });
    expect(emfDatapoints(line)).toEqual([{ key: producer('RowsRejected'), at: T0, values: [2, 1] }]);
    expect(emfDatapoints('not json')).toEqual([]);
    expect(emfDatapoints('{"half":')).toEqual([]);
    // A per-job metric has a JobId dimension: it is another metric than the alarm's {Service, Stage}.
    const perJob = emfDatapoints(
      emfLine(T0, { RowsRejected: 1 }, { Service: 'producer', Stage: STAGE, JobId: 'j' }),
    );
    expect(perJob[0]?.key).not.toBe(producer('RowsRejected'));
  });
});

describe('statistics and metric math', () => {
  it('computes CloudWatch statistics', () => {
    expect(statistic([1, 5, 3], 'Sum')).toBe(9);
    expect(statistic([1, 5, 3], 'Maximum')).toBe(5);
    expect(statistic([1, 5, 3], 'Average')).toBe(3);
    expect(statistic([1, 5, 3], 'SampleCount')).toBe(3);
    expect(statistic([], 'Sum')).toBeNull();
    expect(statistic([1, 2, 3, 4], 'p50')).toBe(2);
  });

  it('evaluates the definitions expressions; a missing operand makes the result missing unless FILLed', () => {
    const rate = parseMath((byId('producer-error-rate').source as { expression: string }).expression);
    expect(evalMath(rate, { processed: 1000, errors: null, rejected: 60 })).toBe(6);
    // Errors with nothing processed (a total Kafka outage) read as 100%, not as a quiet 0.
    expect(evalMath(rate, { processed: 0, errors: 1, rejected: 1 })).toBe(100);
    expect(evalMath(rate, { processed: null, errors: 1, rejected: null })).toBe(100);
    expect(evalMath(rate, { processed: null, errors: null, rejected: null })).toBe(0);
    expect(evalMath(parseMath('FILL(a, 0) + FILL(b, 0)'), { a: null, b: 2 })).toBe(2);
    expect(evalMath(parseMath('a / b'), { a: 1, b: 0 })).toBeNull();
    expect(evalMath(parseMath('-(a - 3) * 2 >= 2 AND 1'), { a: 1 })).toBe(1);
    expect(() => parseMath('a +')).toThrow(/metric math/);
  });
});

describe('evaluateAlarm (periods divided by the speed-up, complete periods only)', () => {
  const SPEEDUP = 60; // 300 s periods last 5 s
  const P = 5000;

  it('rows-rejected: ALARM for the period with rejects, OK when a period passes without (notBreaching)', () => {
    const store = new DatapointStore();
    const def = byId('rows-rejected');
    store.add(emfDatapoints(emfLine(T0 + 1000, { RowsRejected: 3 }, { Service: 'producer', Stage: STAGE })));
    // The period is not complete yet: nothing to evaluate, missing is not breaching.
    expect(evaluateAlarm(def, store, T0 + 2000, 'OK', SPEEDUP).state).toBe('OK');
    const alarm = evaluateAlarm(def, store, T0 + P + 100, 'OK', SPEEDUP);
    expect(alarm.state).toBe('ALARM');
    expect(JSON.parse(alarm.reasonData)).toMatchObject({ recentDatapoints: [3], threshold: 0, period: 300 });
    expect(alarm.reason).toMatch(/\[3\.0 \(30\/11\/26 12:00:00\)\] was greater than the threshold \(0\.0\)/);
    expect(evaluateAlarm(def, store, T0 + 2 * P + 100, 'ALARM', SPEEDUP).state).toBe('OK');
  });

  it('M out of N: planner-failures needs 2 breaching periods of the last 3', () => {
    const store = new DatapointStore();
    const def = byId('planner-failures');
    const add = (at: number) =>
      store.add(emfDatapoints(emfLine(at, { PlannerErrors: 1 }, { Service: 'planner', Stage: STAGE })));
    add(T0 + 100);
    expect(evaluateAlarm(def, store, T0 + 3 * P, 'OK', SPEEDUP).state).toBe('OK');
    add(T0 + 2 * P + 100);
    expect(evaluateAlarm(def, store, T0 + 3 * P, 'OK', SPEEDUP).state).toBe('ALARM');
    expect(evaluateAlarm(def, store, T0 + 5 * P, 'ALARM', SPEEDUP).state).toBe('OK');
  });

  it('TreatMissingData: ignore keeps the state, missing goes INSUFFICIENT_DATA, breaching alarms', () => {
    const store = new DatapointStore();
    const budget = byId('budget-80');
    expect(evaluateAlarm(budget, store, T0, 'ALARM', SPEEDUP).state).toBe('ALARM');
    expect(evaluateAlarm(budget, store, T0, 'INSUFFICIENT_DATA', SPEEDUP).state).toBe('INSUFFICIENT_DATA');
    const missing: AlarmDef = { ...budget, treatMissingData: 'missing' };
    expect(evaluateAlarm(missing, store, T0, 'OK', SPEEDUP).state).toBe('INSUFFICIENT_DATA');
    const breaching: AlarmDef = { ...budget, treatMissingData: 'breaching' };
    expect(evaluateAlarm(breaching, store, T0, 'OK', SPEEDUP).state).toBe('ALARM');
    store.add(
      emfDatapoints(
        emfLine(T0 - 1000, { BudgetUtilizationPercent: 85 }, { Service: 'cost-tracker', Stage: STAGE }),
      ),
    );
    const e = evaluateAlarm(budget, store, T0 + 100, 'OK', SPEEDUP);
    expect(e.state).toBe('ALARM');
    expect(evaluateAlarm(byId('budget-100'), store, T0 + 100, 'OK', SPEEDUP).state).toBe('OK');
    // A period later the figure is missing: the state is kept (ignore).
    expect(evaluateAlarm(budget, store, T0 + 60_100, 'ALARM', SPEEDUP).state).toBe('ALARM');
  });

  it('the error-rate percentage: critical above 5% of rows, an idle producer is OK, not missing', () => {
    const store = new DatapointStore();
    const def = byId('producer-error-rate');
    const dims = { Service: 'producer', Stage: STAGE };
    store.add(emfDatapoints(emfLine(T0 + 100, { RowsProcessed: 100, RowsRejected: 6 }, dims)));
    expect(evaluateAlarm(def, store, T0 + P, 'OK', SPEEDUP).state).toBe('ALARM');
    store.add(emfDatapoints(emfLine(T0 + P + 100, { RowsProcessed: 1000, RowsRejected: 6 }, dims)));
    expect(evaluateAlarm(def, store, T0 + 2 * P, 'ALARM', SPEEDUP).state).toBe('OK');
  });

  it('queue age from sampled AWS/SQS datapoints: 5 of 5 one-minute periods above the threshold', () => {
    const store = new DatapointStore();
    const def = byId('planner-queue-age');
    const key = metricKey('AWS/SQS', 'ApproximateAgeOfOldestMessage', {
      QueueName: 'rowstream-unit-planner',
    });
    for (let s = 0; s < 5; s++) store.add([{ key, at: T0 + s * 1000 + 10, values: [700 + s] }]);
    expect(evaluateAlarm(def, store, T0 + 5000, 'OK', SPEEDUP).state).toBe('ALARM');
    expect(evaluateAlarm(def, store, T0 + 4000, 'OK', SPEEDUP).state).toBe('OK');
  });

  it('the store forgets what no alarm can look at', () => {
    const store = new DatapointStore();
    store.add([
      { key: 'k', at: 1, values: [1] },
      { key: 'k', at: 10, values: [2] },
    ]);
    store.prune(5);
    expect(store.values('k', 0, 100)).toEqual([2]);
  });
});
