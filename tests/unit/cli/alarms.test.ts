import { describe, expect, it } from 'vitest';
import { alarmsTable, alarmViews, resolveAlarm } from '../../../cli/alarms.ts';
import { alarmDefinitions } from '../../../monitoring/alarms.ts';

const STAGE = 'unit';
const defs = alarmDefinitions(STAGE);
const rejected = defs.find((d) => d.id === 'rows-rejected')!;
const runbooks = { kind: 'url', url: 'https://wiki.example.com/rowstream/runbooks' } as const;

describe('rowstream alarms', () => {
  it('shows state, since, value vs threshold and runbook; firing first; undeployed ones too', () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    const views = alarmViews(
      [
        {
          AlarmName: rejected.name,
          StateValue: 'ALARM',
          StateUpdatedTimestamp: new Date(now - 90_000),
          StateReasonData: JSON.stringify({ recentDatapoints: [12], threshold: 0 }),
          Threshold: 0,
          ComparisonOperator: 'GreaterThanThreshold',
        },
        { AlarmName: defs[0]!.name, StateValue: 'OK', StateUpdatedTimestamp: new Date(now - 7200_000) },
      ],
      defs,
      runbooks,
    );
    expect(views).toHaveLength(defs.length);
    expect(views[0]).toMatchObject({ id: 'rows-rejected', state: 'ALARM', value: 12, threshold: 0 });
    expect(views.filter((v) => v.state === 'NOT DEPLOYED')).toHaveLength(defs.length - 2);
    const table = alarmsTable(views, now);
    expect(table[0]).toMatch(/^STATE +SINCE +ALARM +SEVERITY +VALUE vs THRESHOLD +RUNBOOK$/);
    expect(table[1]).toMatch(
      /^ALARM +1m ago +rows-rejected +warning +12 > 0 rows +https:\/\/wiki\.example\.com\/rowstream\/runbooks#rows-rejected$/,
    );
  });

  it('alarms test accepts an id or a full name and names the choices when it knows none', () => {
    expect(resolveAlarm(STAGE, 'rows-rejected').name).toBe(rejected.name);
    expect(resolveAlarm(STAGE, rejected.name).id).toBe('rows-rejected');
    expect(() => resolveAlarm(STAGE, 'nope')).toThrow(/one of: producer-error-rate/);
  });
});
