import { describe, expect, it } from 'vitest';
import { evaluableLocally } from '../../../local/runner/alarms.ts';
import { alarmDefinitions } from '../../../monitoring/alarms.ts';

describe('which alarms the local runner evaluates', () => {
  const defs = alarmDefinitions('local');
  const byId = (id: string) => {
    const def = defs.find((d) => d.id === id);
    if (!def) throw new Error(`no alarm ${id}`);
    return def;
  };

  it('skips alarms that read only figures nothing local produces (Container Insights, Lambda)', () => {
    expect(evaluableLocally(byId('producer-tasks'))).toBe(false);
    expect(evaluableLocally(byId('cost-tracker-throttles'))).toBe(false);
  });

  it('keeps alarms with at least one local figure (EMF or SQS)', () => {
    expect(evaluableLocally(byId('producer-error-rate'))).toBe(true);
    expect(defs.filter(evaluableLocally).length).toBeGreaterThanOrEqual(13);
  });
});
