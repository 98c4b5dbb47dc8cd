/**
 * The alert-delivery DLQ (issue 6: "SNS topics ... with a delivery DLQ for subscriptions"): declared
 * once in the topology, admitted to SNS for the stage's alert topics only, watched by an alarm that
 * reaches people on another topic than the pager's, with its runbook.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from '../../../events/bus.ts';
import { queuePolicies } from '../../../local/provision.ts';
import { alarmDefinitions, runbookUrl } from '../../../monitoring/alarms.ts';
import { classify } from '../../../services/alarm-router/core.ts';
import { QUEUES, type QueueName, resourceNames } from '../../../topology/topology.ts';
import { alarmEnvelope, fakeDeps, STAGE } from '../alarm-router/fakes.ts';

const runbooks = readFileSync(new URL('../../../docs/runbooks.md', import.meta.url), 'utf8');

describe('the alert-delivery DLQ', () => {
  it('is a queue of the topology that is itself a DLQ, kept 14 days, consumed by nobody', () => {
    // Prepare / Act
    const def = QUEUES.find((q) => q.name === 'alertDelivery');
    // Assess
    expect(def).toMatchObject({ maxReceiveCount: null, consumer: null, retentionSeconds: 14 * 24 * 3600 });
    expect(resourceNames('prod').queues.alertDelivery).toEqual({
      name: 'rowstream-prod-alert-delivery-dlq',
      dlqName: null,
    });
  });

  it('lets SNS send to it from exactly the three alert topics of its own stage', () => {
    // Prepare
    const queueArns = Object.fromEntries(
      QUEUES.map((q) => [q.name, `arn:aws:sqs:eu-west-1:123456789012:rowstream-t1-${q.suffix}`]),
    ) as Record<QueueName, string>;
    // Act
    const policies = queuePolicies({
      stage: 't1',
      region: 'eu-west-1',
      accountId: '123456789012',
      queueArns,
    });
    // Assess
    const statements = policies.alertDelivery?.Statement ?? [];
    expect(statements).toHaveLength(1);
    expect(statements[0]).toEqual({
      Sid: 'SnsSubscriptionDeadLetters',
      Effect: 'Allow',
      Principal: { Service: 'sns.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: queueArns.alertDelivery,
      Condition: {
        ArnEquals: {
          'aws:SourceArn': [
            'arn:aws:sns:eu-west-1:123456789012:rowstream-t1-alerts-critical',
            'arn:aws:sns:eu-west-1:123456789012:rowstream-t1-alerts-warning',
            'arn:aws:sns:eu-west-1:123456789012:rowstream-t1-alerts-info',
          ],
        },
      },
    });
    // No other queue admits SNS: the topics dead-letter here and nowhere else.
    const others = Object.entries(policies)
      .filter(([queue]) => queue !== 'alertDelivery')
      .flatMap(([, p]) => p?.Statement ?? []);
    expect(others.filter((s) => s.Principal.Service === 'sns.amazonaws.com')).toEqual([]);
  });

  it('is watched by a warning alarm, routed by the alarm-router, with its own runbook section', () => {
    // Prepare / Act
    const alarm = alarmDefinitions(STAGE).find((a) => a.id === 'dlq-alert-delivery');
    // Assess
    expect(alarm).toMatchObject({
      name: `rowstream-${STAGE}-warning-dlq-alert-delivery`,
      severity: 'warning',
      topic: 'warning',
      delivery: 'router',
      service: 'sns',
      runbook: 'dlq-alert-delivery',
      threshold: 0,
      comparison: 'GreaterThanThreshold',
    });
    expect(alarm?.source).toMatchObject({
      kind: 'metric',
      metric: {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateNumberOfMessagesVisible',
        dimensions: { QueueName: resourceNames(STAGE).queues.alertDelivery.name },
      },
    });
    expect(alarm?.description).toContain(
      runbookUrl('dlq-alert-delivery', { kind: 'bucket', bucket: resourceNames(STAGE).bucket }),
    );
    expect(runbooks).toContain('<a id="dlq-alert-delivery"></a>');
  });

  it('reaches the router as a warning with the sns service and its runbook', () => {
    // Prepare
    const name = alarmDefinitions(STAGE).find((a) => a.id === 'dlq-alert-delivery')?.name ?? '';
    // Act
    const r = classify(
      parse(alarmEnvelope(name, 'ALARM', '2026-11-25T10:00:00.000+0000')),
      fakeDeps().deps.config,
    );
    // Assess
    expect(r).toMatchObject({
      route: true,
      severity: 'warning',
      runbook: 'dlq-alert-delivery',
      service: 'sns',
    });
  });
});
