import { describe, expect, it } from 'vitest';
import { parse } from '../../../events/bus.ts';
import { alarmDefinitions } from '../../../monitoring/alarms.ts';
import { classify } from '../../../services/alarm-router/core.ts';
import { RoutingConfigError } from '../../../services/alarm-router/errors.ts';
import { routingConfig } from '../../../services/alarm-router/routing.ts';
import {
  alarmEnvelope,
  budgetCrossed,
  fakeDeps,
  jobCompleted,
  jobFailed,
  jobRejected,
  STAGE,
  TOPICS,
} from './fakes.ts';

const config = fakeDeps().deps.config;
const severityOf = (envelope: unknown, c = config) => {
  const r = classify(parse(envelope), c);
  return r.route ? r.severity : `ignored: ${r.reason}`;
};
const alarm = (id: string) => {
  const def = alarmDefinitions(STAGE).find((a) => a.id === id);
  if (!def) throw new Error(`no alarm ${id}`);
  return def.name;
};
const at = '2026-11-25T10:00:00.000+0000';

describe('classify', () => {
  it('routes job events by type: failed critical, rejected warning, completed with rejects info', () => {
    expect(severityOf(jobFailed())).toBe('critical');
    expect(severityOf(jobRejected())).toBe('warning');
    expect(severityOf(jobCompleted(3))).toBe('info');
    expect(severityOf(jobCompleted(0))).toBe('ignored: job completed without rejects');
  });

  it('routes budget crossings 50 -> info, 80 -> warning, 100 -> critical', () => {
    expect(severityOf(budgetCrossed(50))).toBe('info');
    expect(severityOf(budgetCrossed(80))).toBe('warning');
    expect(severityOf(budgetCrossed(100))).toBe('critical');
  });

  it('takes an alarm severity and runbook from its definition', () => {
    const r = classify(parse(alarmEnvelope(alarm('dlq-planner'), 'ALARM', at)), config);
    expect(r).toMatchObject({
      route: true,
      severity: 'critical',
      runbook: 'dlq-not-empty',
      service: 'planner',
    });
    expect(severityOf(alarmEnvelope(alarm('rows-rejected'), 'ALARM', at))).toBe('warning');
  });

  it('skips alarms that notify directly or are announced by an event, so nobody hears twice', () => {
    expect(severityOf(alarmEnvelope(alarm('dlq-alarm-router'), 'ALARM', at))).toMatch(/directly/);
    expect(severityOf(alarmEnvelope(alarm('budget-80'), 'ALARM', at))).toMatch(/announced by an event/);
  });

  it('ignores alarms of other stages (the default bus is shared) and reads the name of unknown own alarms', () => {
    expect(severityOf(alarmEnvelope('rowstream-other-critical-dlq-planner', 'ALARM', at))).toMatch(
      /another stage/,
    );
    expect(severityOf(alarmEnvelope('SomeoneElsesAlarm', 'ALARM', at))).toMatch(/another stage/);
    const r = classify(parse(alarmEnvelope(`rowstream-${STAGE}-info-hand-made`, 'ALARM', at)), config);
    expect(r).toMatchObject({ route: true, severity: 'info', runbook: 'unknown-alarm' });
    expect(severityOf(alarmEnvelope(`rowstream-${STAGE}-hand-made`, 'ALARM', at))).toBe('warning');
  });

  it('lets configuration override: event severities, budget rules, alarm rules by prefix/suffix', () => {
    const c = routingConfig({
      stage: STAGE,
      region: 'us-east-1',
      topics: TOPICS,
      bucket: 'rowstream-unit-data',
      overrides: JSON.stringify({
        events: { jobRejected: 'info' },
        budget: [{ atLeastPercent: 90, severity: 'critical' }],
        alarmRules: [{ prefix: 'Team', suffix: '-p1', severity: 'critical', runbook: 'job-failed' }],
      }),
    });
    expect(severityOf(jobRejected(), c)).toBe('info');
    expect(severityOf(budgetCrossed(80), c)).toMatch(/no budget rule/);
    expect(severityOf(budgetCrossed(100), c)).toBe('critical');
    expect(severityOf(alarmEnvelope('TeamX-p1', 'ALARM', at), c)).toBe('critical');
    expect(severityOf(alarmEnvelope('TeamX-p2', 'ALARM', at), c)).toMatch(/another stage/);
  });

  it('rejects a bad override at start, naming the field', () => {
    const make = (overrides: unknown) => () =>
      routingConfig({ stage: STAGE, region: 'us-east-1', topics: TOPICS, bucket: 'b', overrides });
    expect(make('{not json')).toThrow(RoutingConfigError);
    expect(make({ resolvedTo: 'pager' })).toThrow(/resolvedTo/);
    expect(make({ suppressionWindow: 5 })).toThrow(/suppressionWindow/);
    expect(make({ alarmRules: [{ severity: 'info' }] })).toThrow(/prefix or a suffix/);
  });
});
