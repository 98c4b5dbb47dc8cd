// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation templates are untyped JSON, walked by shape.
/**
 * The alert topics' subscription DLQ in the synthesized app: created in Bus, admitting only the stage's
 * alert topics (by stage-derived ARN, so Bus needs nothing from Monitoring), exported for operators,
 * and watched by a routed warning alarm.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { alarmDefinitions } from '../../monitoring/alarms.ts';
import { SYNTH_TIMEOUT_MS, type Synthesized, synth } from '../../testkit/synth.ts';
import { resourceNames, TOPICS } from '../../topology/topology.ts';

describe.each(['dev', 'prod'])('alert delivery DLQ, stage %s', (stage) => {
  let s: Synthesized;
  const names = resourceNames(stage);
  beforeAll(async () => {
    s = await synth(stage);
  }, SYNTH_TIMEOUT_MS);
  const queue = () => {
    const found = s.resources.filter(
      (r) => r.type === 'AWS::SQS::Queue' && r.props.QueueName === names.queues.alertDelivery.name,
    );
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  it('is an encrypted 14-day queue of the Bus stack, itself a DLQ', () => {
    // Prepare / Act
    const q = queue();
    // Assess
    expect(q.stack).toBe('Bus');
    expect(q.props.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    expect(q.props.SqsManagedSseEnabled).toBe(true);
    expect(q.props.RedrivePolicy).toBeUndefined();
  });

  it('lets sns.amazonaws.com send to it from exactly the three alert topics of this stage and account', () => {
    // Prepare
    const q = queue();
    const policies = s.resources.filter(
      (r) => r.type === 'AWS::SQS::QueuePolicy' && r.props.Queues.some((x: any) => x.Ref === q.id),
    );
    // Act
    const statements = policies.flatMap((p) => p.props.PolicyDocument.Statement as any[]);
    const sns = statements.filter((x) => x.Principal?.Service === 'sns.amazonaws.com');
    // Assess
    expect(sns).toHaveLength(1);
    expect(sns[0].Action).toBe('sqs:SendMessage');
    expect(sns[0].Resource).toEqual({ 'Fn::GetAtt': [q.id, 'Arn'] });
    const sources = sns[0].Condition.ArnEquals['aws:SourceArn'] as unknown[];
    expect(sources).toHaveLength(TOPICS.length);
    for (const t of TOPICS) {
      expect(
        sources.some((a) => JSON.stringify(a).includes(`:${names.topics[t.name]}"`)),
        `${names.topics[t.name]} may send`,
      ).toBe(true);
    }
    expect(sns[0].Condition.StringEquals['aws:SourceAccount']).toBe('123456789012');
    // Nothing else may dead-letter into it.
    expect(statements.filter((x) => x.Effect === 'Allow' && x.Principal?.Service)).toHaveLength(1);
  });

  it('is named in the Bus outputs without Bus importing anything from Monitoring', () => {
    // Prepare / Act
    const bus: any = s.templates.Bus?.toJSON();
    // Assess
    expect(bus.Outputs.AlertDeliveryDlqArn.Value).toEqual({ 'Fn::GetAtt': [queue().id, 'Arn'] });
    expect(JSON.stringify(bus)).not.toContain('Fn::ImportValue');
  });

  it('has one routed warning alarm (no alarm actions: the alarm-router publishes it)', () => {
    // Prepare
    const def = alarmDefinitions(stage).find((a) => a.id === 'dlq-alert-delivery');
    // Act
    const alarms = s.resources.filter(
      (r) => r.type === 'AWS::CloudWatch::Alarm' && r.props.AlarmName === def?.name,
    );
    // Assess
    expect(def?.severity).toBe('warning');
    expect(alarms).toHaveLength(1);
    expect(alarms[0]!.props.AlarmActions).toBeUndefined();
    expect(alarms[0]!.props.Dimensions).toEqual([
      { Name: 'QueueName', Value: names.queues.alertDelivery.name },
    ]);
  });
});
