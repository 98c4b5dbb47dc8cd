import { describe, expect, it } from 'vitest';
import {
  accountIdOf,
  assertValidStage,
  INBOUND_NOTIFICATION_ID,
  inboundNotification,
  metricAlarmInput,
  queuePolicies,
  ruleArn,
  ruleBusName,
} from '../../local/provision.ts';
import { alarmDefinitions, PRODUCER_ERROR_RATE_EXPRESSION } from '../../monitoring/alarms.ts';
import { QUEUES, type QueueName, RULES, resourceNames } from '../../topology/topology.ts';

const queueArns = Object.fromEntries(
  QUEUES.map((q) => [q.name, `arn:aws:sqs:us-east-1:123456789012:rowstream-t1-${q.suffix}`]),
) as Record<QueueName, string>;

describe('assertValidStage', () => {
  it('accepts short lowercase stages', () => {
    for (const stage of ['local', 'prod', 't1a2b3c', 'pr-42'])
      expect(() => assertValidStage(stage)).not.toThrow();
  });

  it('rejects names S3, SQS or EventBridge archives would refuse', () => {
    for (const stage of ['', 'Local', '1abc', 'a_b', 'a.b', 'abc-', 'x'.repeat(21)]) {
      expect(() => assertValidStage(stage), stage).toThrow(/stage ".*" is not valid/);
    }
  });

  it('keeps every physical name within its limit for the longest stage', () => {
    const names = resourceNames('x'.repeat(20));
    expect(names.bucket.length).toBeLessThanOrEqual(63);
    expect(names.archiveName.length).toBeLessThanOrEqual(48);
    for (const q of Object.values(names.queues)) expect((q.dlqName ?? q.name).length).toBeLessThanOrEqual(80);
    for (const r of [...Object.values(names.rules), ...Object.values(names.schedules)]) {
      expect(r.length).toBeLessThanOrEqual(64);
    }
  });
});

describe('ARNs', () => {
  it('builds rule ARNs like EventBridge: no bus segment on the default bus', () => {
    expect(ruleArn('us-east-1', '123456789012', 'default', 'r')).toBe(
      'arn:aws:events:us-east-1:123456789012:rule/r',
    );
    expect(ruleArn('us-east-1', '123456789012', 'b', 'r')).toBe(
      'arn:aws:events:us-east-1:123456789012:rule/b/r',
    );
  });

  it('reads the account id of an ARN', () => {
    expect(accountIdOf('arn:aws:sqs:us-east-1:000000000000:q')).toBe('000000000000');
    expect(() => accountIdOf('nope')).toThrow(/account id/);
  });

  it('puts custom rules on the stage bus and default rules on the default bus', () => {
    expect(ruleBusName('t1', 'custom')).toBe('rowstream-t1-bus');
    expect(ruleBusName('t1', 'default')).toBe('default');
  });
});

describe('queuePolicies', () => {
  const policies = queuePolicies({ stage: 't1', region: 'us-east-1', accountId: '123456789012', queueArns });

  it('lets only the stage bucket send to the planner queue', () => {
    expect(policies.planner?.Statement).toEqual([
      {
        Sid: 'S3InboundNotifications',
        Effect: 'Allow',
        Principal: { Service: 's3.amazonaws.com' },
        Action: 'sqs:SendMessage',
        Resource: queueArns.planner,
        Condition: { ArnEquals: { 'aws:SourceArn': ['arn:aws:s3:::rowstream-t1-data'] } },
      },
    ]);
  });

  it('lets each rule send to its target queue, and every rule to the rule-targets DLQ', () => {
    for (const rule of RULES) {
      const arn = ruleArn(
        'us-east-1',
        '123456789012',
        ruleBusName('t1', rule.bus),
        `rowstream-t1-${rule.name}`,
      );
      const statement = policies[rule.target.queue]?.Statement.find(
        (s) => s.Sid === 'EventBridgeRuleTargets',
      );
      expect(statement?.Condition.ArnEquals['aws:SourceArn']).toContain(arn);
      expect(statement?.Principal).toEqual({ Service: 'events.amazonaws.com' });
      const dlq = policies.ruleTargets?.Statement.find((s) => s.Sid === 'EventBridgeDeadLetters');
      expect(dlq?.Condition.ArnEquals['aws:SourceArn']).toContain(arn);
    }
  });

  it('routes the alarm-state rule (default bus) and ops-events (custom bus) to the alarm-router queue', () => {
    const sources = policies.alarmRouter?.Statement[0]?.Condition.ArnEquals['aws:SourceArn'];
    expect(sources).toEqual([
      'arn:aws:events:us-east-1:123456789012:rule/rowstream-t1-bus/rowstream-t1-ops-events',
      'arn:aws:events:us-east-1:123456789012:rule/rowstream-t1-alarm-state',
    ]);
  });
});

describe('inboundNotification', () => {
  it('sends every ObjectCreated under inbound/ to the planner queue', () => {
    expect(inboundNotification('arn:q')).toEqual({
      QueueConfigurations: [
        {
          Id: INBOUND_NOTIFICATION_ID,
          QueueArn: 'arn:q',
          Events: ['s3:ObjectCreated:*'],
          Filter: { Key: { FilterRules: [{ Name: 'prefix', Value: 'inbound/' }] } },
        },
      ],
    });
  });
});

describe('metricAlarmInput', () => {
  const defs = alarmDefinitions('unit');
  const topic = 'arn:aws:sns:us-east-1:123456789012:rowstream-unit-alerts-critical';

  it('a metric alarm: the definition as PutMetricAlarm (stat, period, missing data, M of N)', () => {
    const def = defs.find((d) => d.id === 'planner-queue-age')!;
    expect(metricAlarmInput(def, topic)).toMatchObject({
      AlarmName: def.name,
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: 'rowstream-unit-planner' }],
      Statistic: 'Maximum',
      Period: 60,
      Threshold: 600,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 5,
      DatapointsToAlarm: 5,
      TreatMissingData: 'notBreaching',
    });
    expect(metricAlarmInput(def, topic).AlarmActions).toBeUndefined();
  });

  it('a math alarm: the expression returns data, its metrics do not; direct alarms get their topic', () => {
    const rate = metricAlarmInput(defs.find((d) => d.id === 'producer-error-rate')!, topic);
    expect(rate.Metrics?.filter((m) => m.ReturnData).map((m) => m.Expression)).toEqual([
      PRODUCER_ERROR_RATE_EXPRESSION,
    ]);
    expect(rate.Metrics?.filter((m) => !m.ReturnData).map((m) => m.Id)).toEqual([
      'errors',
      'rejected',
      'processed',
    ]);
    const direct = metricAlarmInput(defs.find((d) => d.delivery === 'direct')!, topic);
    expect(direct).toMatchObject({ AlarmActions: [topic], OKActions: [topic] });
  });
});
