import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { StackContext } from 'sst/constructs';
import { type AlarmDef, alarmDefinitions, type MetricRef } from '../monitoring/alarms.ts';
import { dashboardBody, dashboardName } from '../monitoring/dashboard.ts';
import { physicalName, resourceNames, TOPICS, type TopicName } from '../topology/topology.ts';
import { arn, bucketNameFor, removalFor, tagService } from './common.ts';
import { settingsOf } from './settings.ts';

/**
 * Alerting and the dashboard: the three SNS topics, every alarm of monitoring/alarms.ts, and the
 * dashboard of monitoring/dashboard.ts.
 *
 * Most alarms have no action: their state change goes to the default bus, the `alarm-state` rule sends
 * it to the alarm-router, and the router publishes one formatted message per incident (de-duplicated,
 * with the runbook). Alarms that watch the routing path itself (`delivery: 'direct'`) publish to their
 * topic directly, because a broken router cannot report that it is broken.
 */
export function Monitoring({ stack, app }: StackContext) {
  tagService(stack, 'monitoring');
  const names = resourceNames(app.stage);
  const settings = settingsOf(app);

  // A customer managed key, not aws/sns: CloudWatch alarm actions cannot publish to a topic encrypted
  // with the AWS managed key (its policy cannot be changed to let cloudwatch.amazonaws.com use it).
  const key = new kms.Key(stack, 'AlertsKey', {
    alias: `alias/${physicalName(app.stage, 'alerts')}`,
    description: 'encrypts the rowstream alert topics',
    enableKeyRotation: true,
    removalPolicy: removalFor(app.stage),
    pendingWindow: Duration.days(7),
  });
  key.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      resources: ['*'],
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }),
  );

  // No subscriptions here (operators add them); each names the alert-delivery DLQ of the Bus stack
  // (output AlertDeliveryDlqArn) as its RedrivePolicy, and that queue's policy admits these topics by
  // name. The DLQ is SSE-SQS, not this key: SNS needs no KMS grant to dead-letter into it.
  const topics = {} as Record<TopicName, sns.Topic>;
  for (const def of TOPICS) {
    topics[def.name] = new sns.Topic(stack, `${def.name}Topic`, {
      topicName: names.topics[def.name],
      displayName: `rowstream ${app.stage} ${def.name}`,
      masterKey: key,
      enforceSSL: true,
    });
    // A topic policy replaces SNS's default one (which lets the account's principals and services
    // publish): with only enforceSSL's TLS deny, the alarms that publish directly would be refused.
    topics[def.name].addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topics[def.name].topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': arn('cloudwatch', `alarm:${physicalName(app.stage, '')}*`) },
        },
      }),
    );
  }

  const alarms: Record<string, cloudwatch.Alarm> = {};
  // Runbook links point at the copy shipped in the stage's bucket (its deployed, global name).
  const runbooks = { kind: 'bucket', bucket: bucketNameFor(stack, app.stage, settings) } as const;
  for (const def of alarmDefinitions(app.stage, { runbooks })) {
    const alarm = new cloudwatch.Alarm(stack, `Alarm-${def.id}`, {
      alarmName: def.name,
      alarmDescription: def.description,
      metric: alarmMetric(def),
      threshold: def.threshold,
      comparisonOperator: def.comparison as cloudwatch.ComparisonOperator,
      evaluationPeriods: def.evaluationPeriods,
      datapointsToAlarm: def.datapointsToAlarm,
      treatMissingData: def.treatMissingData as cloudwatch.TreatMissingData,
    });
    if (def.delivery === 'direct') {
      alarm.addAlarmAction(new cwActions.SnsAction(topics[def.topic]));
      alarm.addOkAction(new cwActions.SnsAction(topics[def.topic]));
    }
    alarms[def.id] = alarm;
  }

  const dashboard = new cloudwatch.CfnDashboard(stack, 'Dashboard', {
    dashboardName: dashboardName(app.stage),
    dashboardBody: stack.toJsonString(
      dashboardBody({
        stage: app.stage,
        region: stack.region,
        accountId: stack.account,
        monthlyBudgetUsd: settings.monthlyBudgetUsd,
      }),
    ),
  });

  stack.addOutputs(
    Object.fromEntries(TOPICS.map((t) => [`Topic${cap(t.name)}Arn`, topics[t.name].topicArn])),
  );
  return { key, topics, alarms, dashboard };
}

function metricOf(ref: MetricRef, periodSeconds: number): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: ref.namespace,
    metricName: ref.metricName,
    dimensionsMap: { ...ref.dimensions },
    statistic: ref.statistic,
    period: Duration.seconds(periodSeconds),
  });
}

function alarmMetric(def: AlarmDef): cloudwatch.IMetric {
  const src = def.source;
  if (src.kind === 'metric') return metricOf(src.metric, src.metric.periodSeconds);
  return new cloudwatch.MathExpression({
    expression: src.expression,
    label: src.label,
    period: Duration.seconds(src.periodSeconds),
    usingMetrics: Object.fromEntries(
      Object.entries(src.metrics).map(([id, ref]) => [id, metricOf(ref, src.periodSeconds)]),
    ),
  });
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
