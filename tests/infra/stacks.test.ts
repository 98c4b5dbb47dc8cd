// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation templates are untyped JSON, walked by shape.
import { existsSync, readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { alarmDefinitions, functionName } from '../../monitoring/alarms.ts';
import { METRIC_NAMESPACE, METRICS } from '../../monitoring/metrics.ts';
import { PRODUCER_NODE_FLAGS } from '../../scripts/build-producer.ts';
import { LAMBDA_RUNTIME } from '../../stacks/Pipeline.ts';
import { DeploySettingsError, loadDeploySettings } from '../../stacks/settings.ts';
import { SYNTH_TIMEOUT_MS, type Synthesized, synth, testSettings } from '../../testkit/synth.ts';
import {
  ARCHIVE,
  archiveRetentionDays,
  PREFIXES,
  QUEUES,
  RULES,
  resourceNames,
  ruleEventPattern,
  SCHEDULES,
  TABLES,
  TOPICS,
} from '../../topology/topology.ts';
import { ROOT } from './sdk-calls.ts';

/** Every resource of a type, across stacks. */
const all = (s: Synthesized, type: string) => s.resources.filter((r) => r.type === type);
const one = (s: Synthesized, type: string, pred: (p: Record<string, any>) => boolean) => {
  const found = all(s, type).filter((r) => pred(r.props));
  expect(found, `exactly one ${type} matching`).toHaveLength(1);
  return found[0]!;
};
/** The logical id a `{Ref}`/`{Fn::GetAtt}`/`{Fn::ImportValue}` points at (import names carry it). */
const refId = (v: any): string =>
  v?.Ref ??
  v?.['Fn::GetAtt']?.[0] ??
  (typeof v?.['Fn::ImportValue'] === 'string' ? v['Fn::ImportValue'] : '');
const pointsAt = (v: any, logicalId: string) =>
  refId(v) === logicalId || refId(v).includes(`Ref${logicalId}`) || refId(v).includes(`FnGetAtt${logicalId}`);
const tagMap = (props: Record<string, any>): Record<string, string> =>
  Array.isArray(props.Tags)
    ? Object.fromEntries(props.Tags.map((t: any) => [t.Key, t.Value]))
    : ((props.Tags ?? {}) as Record<string, string>);

describe.each(['dev', 'prod'])('the synthesized app, stage %s', (stage) => {
  let s: Synthesized;
  const names = resourceNames(stage);
  // Bucket names are global: the stage's carries the account and region (synth.ts deploys to these).
  const bucketName = `${names.bucket}-123456789012-eu-west-1`;
  beforeAll(async () => {
    s = await synth(stage);
  }, SYNTH_TIMEOUT_MS);

  describe('topology: complete and consistent', () => {
    it('creates every queue of the topology, each with its DLQ and redrive count', () => {
      for (const q of QUEUES) {
        const n = names.queues[q.name];
        const queue = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === n.name);
        expect(queue.props.VisibilityTimeout).toBe(q.visibilityTimeoutSeconds);
        if (q.maxReceiveCount === null) {
          expect(queue.props.RedrivePolicy, `${n.name} is itself a DLQ`).toBeUndefined();
          continue;
        }
        const dlq = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === n.dlqName);
        expect(queue.props.RedrivePolicy.maxReceiveCount).toBe(q.maxReceiveCount);
        expect(pointsAt(queue.props.RedrivePolicy.deadLetterTargetArn, dlq.id)).toBe(true);
      }
      // Nothing beyond the topology: a queue added by hand in a stack would escape the local stack.
      const expected = QUEUES.flatMap((q) => [
        names.queues[q.name].name,
        names.queues[q.name].dlqName,
      ]).filter(Boolean);
      expect(
        all(s, 'AWS::SQS::Queue')
          .map((r) => r.props.QueueName)
          .sort(),
      ).toEqual([...expected].sort());
    });

    it('puts an alarm on every dead-letter queue', () => {
      const dlqNames = QUEUES.map((q) =>
        q.maxReceiveCount === null ? names.queues[q.name].name : names.queues[q.name].dlqName!,
      );
      for (const dlq of dlqNames) {
        const alarms = all(s, 'AWS::CloudWatch::Alarm').filter(
          (a) =>
            a.props.Namespace === 'AWS/SQS' &&
            a.props.MetricName === 'ApproximateNumberOfMessagesVisible' &&
            a.props.Dimensions?.some((d: any) => d.Name === 'QueueName' && d.Value === dlq),
        );
        expect(alarms, `alarm on ${dlq}`).toHaveLength(1);
        expect(alarms[0]!.props.Threshold).toBe(0);
        expect(alarms[0]!.props.ComparisonOperator).toBe('GreaterThanThreshold');
      }
    });

    it('creates every rule on its bus, with its exact pattern, its queue target and the rule-target DLQ', () => {
      const bus = one(s, 'AWS::Events::EventBus', (p) => p.Name === names.busName);
      const dlq = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === names.queues.ruleTargets.name);
      for (const r of RULES) {
        const rule = one(s, 'AWS::Events::Rule', (p) => p.Name === names.rules[r.name]);
        if (r.bus === 'custom') expect(pointsAt(rule.props.EventBusName, bus.id)).toBe(true);
        else expect(rule.props.EventBusName).toBe('default');
        expect(rule.props.EventPattern).toEqual(ruleEventPattern(r, stage));
        const target = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === names.queues[r.target.queue].name);
        expect(rule.props.Targets).toHaveLength(1);
        expect(pointsAt(rule.props.Targets[0].Arn, target.id), `${r.name} -> ${r.target.queue}`).toBe(true);
        expect(pointsAt(rule.props.Targets[0].DeadLetterConfig.Arn, dlq.id)).toBe(true);
      }
    });

    it('lets EventBridge send to each rule target only from that rule, and S3 to the planner queue only from the bucket', () => {
      for (const r of RULES) {
        const rule = one(s, 'AWS::Events::Rule', (p) => p.Name === names.rules[r.name]);
        const target = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === names.queues[r.target.queue].name);
        const policy = one(s, 'AWS::SQS::QueuePolicy', (p) =>
          p.Queues.some((q: any) => pointsAt(q, target.id)),
        );
        const st = policy.props.PolicyDocument.Statement.find(
          (x: any) =>
            x.Principal?.Service === 'events.amazonaws.com' &&
            pointsAt(x.Condition?.ArnEquals?.['aws:SourceArn'], rule.id),
        );
        expect(st, `${r.name} may send to ${r.target.queue}`).toBeDefined();
      }
      const planner = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === names.queues.planner.name);
      const policy = one(s, 'AWS::SQS::QueuePolicy', (p) =>
        p.Queues.some((q: any) => pointsAt(q, planner.id)),
      );
      const s3 = policy.props.PolicyDocument.Statement.find(
        (x: any) => x.Principal?.Service === 's3.amazonaws.com',
      );
      expect(JSON.stringify(s3.Condition.ArnLike['aws:SourceArn'])).toContain(`:s3:::${bucketName}"`);
    });

    it('fires every schedule at its function', () => {
      for (const sch of SCHEDULES) {
        const rule = one(s, 'AWS::Events::Rule', (p) => p.Name === names.schedules[sch.name]);
        expect(rule.props.ScheduleExpression).toBe(sch.expression);
        const fn = one(
          s,
          'AWS::Lambda::Function',
          (p) => p.FunctionName === functionName(stage, sch.service),
        );
        expect(rule.props.Targets.map((t: any) => refId(t.Arn))).toEqual([fn.id]);
      }
    });

    it('archives every rowstream event of the custom bus, for as long as the stage keeps them', () => {
      const bus = one(s, 'AWS::Events::EventBus', (p) => p.Name === names.busName);
      const archive = one(s, 'AWS::Events::Archive', (p) => p.ArchiveName === names.archiveName);
      expect(pointsAt(archive.props.SourceArn, bus.id)).toBe(true);
      expect(archive.props.EventPattern).toEqual(ARCHIVE.eventPattern);
      expect(archive.props.RetentionDays).toBe(archiveRetentionDays(stage));
      expect(archive.props.RetentionDays).toBe(stage === 'prod' ? 365 : 14);
    });

    it('creates every alarm of monitoring/alarms.ts, each with a topic and a runbook section', () => {
      const runbooks = readFileSync(`${ROOT}/docs/runbooks.md`, 'utf8');
      const anchors = new Set([...runbooks.matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]));
      const defs = alarmDefinitions(stage);
      expect(
        all(s, 'AWS::CloudWatch::Alarm')
          .map((a) => a.props.AlarmName)
          .sort(),
      ).toEqual(defs.map((d) => d.name).sort());
      for (const d of defs) {
        const alarm = one(s, 'AWS::CloudWatch::Alarm', (p) => p.AlarmName === d.name);
        const anchor = /runbooks\.md#([\w-]+)/.exec(alarm.props.AlarmDescription)?.[1];
        expect(anchors, `${d.name} runbook #${anchor}`).toContain(anchor);
        expect(TOPICS.map((t) => t.name)).toContain(d.topic);
        if (d.source.kind === 'math') {
          expect(alarm.props.Metrics.find((m: any) => m.Expression)?.Expression).toBe(d.source.expression);
        }
        const topic = one(s, 'AWS::SNS::Topic', (p) => p.TopicName === names.topics[d.topic]);
        if (d.delivery === 'direct') {
          expect(alarm.props.AlarmActions.map(refId)).toEqual([expect.stringContaining(topic.id)]);
          expect(alarm.props.OKActions.map(refId)).toEqual([expect.stringContaining(topic.id)]);
        } else {
          // Routed through the default bus to the alarm-router (one message per incident), or silent.
          expect(alarm.props.AlarmActions ?? []).toEqual([]);
        }
      }
    });

    it('encrypts the alert topics with a key CloudWatch alarms may use', () => {
      const key = all(s, 'AWS::KMS::Key')[0]!;
      expect(JSON.stringify(key.props.KeyPolicy)).toContain('cloudwatch.amazonaws.com');
      for (const t of TOPICS) {
        const topic = one(s, 'AWS::SNS::Topic', (p) => p.TopicName === names.topics[t.name]);
        expect(refId(topic.props.KmsMasterKeyId)).toBe(key.id);
      }
    });
  });

  describe('storage', () => {
    it('keeps the bucket private, encrypted, versioned and TLS-only', () => {
      const bucket = one(s, 'AWS::S3::Bucket', (p) => p.BucketName === bucketName);
      expect(bucket.props.PublicAccessBlockConfiguration).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
      expect(
        bucket.props.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault
          .SSEAlgorithm,
      ).toBe('AES256');
      expect(bucket.props.VersioningConfiguration.Status).toBe('Enabled');
      const policy = one(s, 'AWS::S3::BucketPolicy', (p) => pointsAt(p.Bucket, bucket.id));
      const deny = policy.props.PolicyDocument.Statement.find(
        (x: any) => x.Effect === 'Deny' && x.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      );
      expect(deny?.Action).toBe('s3:*');
      expect(deny?.Principal).toEqual({ AWS: '*' });
    });

    it('expires rejected/, inbound/ and plans/ objects as configured', () => {
      const bucket = one(s, 'AWS::S3::Bucket', (p) => p.BucketName === bucketName);
      const rules = bucket.props.LifecycleConfiguration.Rules as any[];
      const settings = testSettings();
      expect(rules.find((r) => r.Prefix === PREFIXES.rejected)?.ExpirationInDays).toBe(
        settings.lifecycle.rejectedExpireDays,
      );
      expect(rules.find((r) => r.Prefix === PREFIXES.inbound)?.ExpirationInDays).toBe(
        settings.lifecycle.inboundExpireDays,
      );
      expect(rules.find((r) => r.Prefix === PREFIXES.plans)?.ExpirationInDays).toBe(
        settings.lifecycle.plansExpireDays,
      );
      // Sources are tagged, not moved (ROWSTREAM_SOURCE_FATE=tag): no rule for prefixes nobody writes.
      expect(rules.find((r) => r.Prefix === PREFIXES.processed)).toBeUndefined();
      expect(rules.find((r) => r.Prefix === PREFIXES.failed)).toBeUndefined();
    });

    it('notifies the planner queue of objects created under inbound/ only', () => {
      const planner = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === names.queues.planner.name);
      const n = all(s, 'Custom::S3BucketNotifications')[0]!;
      const queues = n.props.NotificationConfiguration.QueueConfigurations;
      expect(queues).toHaveLength(1);
      expect(queues[0].Events).toEqual(['s3:ObjectCreated:*']);
      expect(queues[0].Filter.Key.FilterRules).toEqual([{ Name: 'prefix', Value: PREFIXES.inbound }]);
      expect(pointsAt(queues[0].QueueArn, planner.id)).toBe(true);
    });

    it(`${stage === 'prod' ? 'retains and protects' : 'removes'} the data and ${stage === 'prod' ? 'enables' : 'skips'} point-in-time recovery`, () => {
      const prod = stage === 'prod';
      const bucket = one(s, 'AWS::S3::Bucket', (p) => p.BucketName === bucketName);
      expect(bucket.raw.DeletionPolicy).toBe(prod ? 'Retain' : 'Delete');
      expect(all(s, 'Custom::S3AutoDeleteObjects')).toHaveLength(prod ? 0 : 1);
      for (const t of TABLES) {
        const table = one(s, 'AWS::DynamoDB::Table', (p) => p.TableName === names.tables[t.name]);
        expect(table.raw.DeletionPolicy, t.name).toBe(prod ? 'Retain' : 'Delete');
        expect(table.props.DeletionProtectionEnabled, t.name).toBe(prod);
        expect(table.props.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, t.name).toBe(prod);
        expect(table.props.KeySchema[0].AttributeName).toBe(t.partitionKey);
        if (t.ttlAttribute)
          expect(table.props.TimeToLiveSpecification).toEqual({
            AttributeName: t.ttlAttribute,
            Enabled: true,
          });
        expect((table.props.GlobalSecondaryIndexes ?? []).map((i: any) => i.IndexName)).toEqual(
          t.indexes.map((i) => i.name),
        );
      }
    });
  });

  describe('compute', () => {
    it('runs every Node.js Lambda on nodejs22.x or newer, ours on the pinned runtime', () => {
      for (const fn of all(s, 'AWS::Lambda::Function')) {
        const rt = String(fn.props.Runtime ?? '');
        if (!rt.startsWith('nodejs')) continue;
        expect(Number(/nodejs(\d+)/.exec(rt)?.[1]), `${fn.id}: ${rt}`).toBeGreaterThanOrEqual(22);
      }
      for (const service of ['planner', 'alarm-router', 'cost-tracker', 'dims-publisher'] as const) {
        const fn = one(s, 'AWS::Lambda::Function', (p) => p.FunctionName === functionName(stage, service));
        expect(fn.props.Runtime).toBe(LAMBDA_RUNTIME);
      }
    });

    it('triggers the planner and the alarm-router from their queues with partial batch responses', () => {
      const consumed = QUEUES.filter((q) => q.consumer !== null && q.consumer !== 'producer');
      expect(consumed.map((q) => q.consumer)).toEqual(expect.arrayContaining(['planner', 'alarm-router']));
      for (const { consumer: service, name: queue } of consumed) {
        if (service === null || service === 'producer') continue;
        const fn = one(s, 'AWS::Lambda::Function', (p) => p.FunctionName === functionName(stage, service));
        const q = one(s, 'AWS::SQS::Queue', (p) => p.QueueName === names.queues[queue].name);
        const esm = one(s, 'AWS::Lambda::EventSourceMapping', (p) => refId(p.FunctionName) === fn.id);
        expect(pointsAt(esm.props.EventSourceArn, q.id)).toBe(true);
        expect(esm.props.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
        // AWS: visibility at least 6x the function timeout, or a retried batch runs twice at once.
        expect(fn.props.Timeout * 6).toBeLessThanOrEqual(q.props.VisibilityTimeout);
      }
    });

    it('gives every service the environment of topology serviceEnvironment()', () => {
      const keys = [
        'ROWSTREAM_STAGE',
        'ROWSTREAM_BUCKET',
        'ROWSTREAM_BUS_NAME',
        'ROWSTREAM_JOBS_TABLE',
        'ROWSTREAM_COUNTS_TABLE',
        'ROWSTREAM_STATE_TABLE',
        'ROWSTREAM_PLANNER_QUEUE_URL',
        'ROWSTREAM_PRODUCER_QUEUE_URL',
        'ROWSTREAM_ALARM_ROUTER_QUEUE_URL',
        'ROWSTREAM_TOPIC_CRITICAL_ARN',
        'ROWSTREAM_TOPIC_WARNING_ARN',
        'ROWSTREAM_TOPIC_INFO_ARN',
        'KAFKA_BROKERS',
      ];
      for (const service of ['planner', 'alarm-router', 'cost-tracker', 'dims-publisher'] as const) {
        const fn = one(s, 'AWS::Lambda::Function', (p) => p.FunctionName === functionName(stage, service));
        const vars = fn.props.Environment.Variables;
        for (const k of keys) expect(vars, `${service} ${k}`).toHaveProperty(k);
        expect(vars.ROWSTREAM_STAGE).toBe(stage);
        expect(vars).not.toHaveProperty('AWS_REGION');
      }
      const task = all(s, 'AWS::ECS::TaskDefinition')[0]!;
      const env = Object.fromEntries(
        task.props.ContainerDefinitions[0].Environment.map((e: any) => [e.Name, e.Value]),
      );
      for (const k of [...keys, 'AWS_REGION']) expect(env, `producer ${k}`).toHaveProperty(k);
      expect(env.ROWSTREAM_METRICS_SINK).toBe('stdout');
    });

    it('runs the producer on Fargate in the named private subnets, sized by the settings', () => {
      const settings = testSettings();
      const task = all(s, 'AWS::ECS::TaskDefinition')[0]!;
      expect(task.props.RequiresCompatibilities).toEqual(['FARGATE']);
      expect(task.props.Cpu).toBe(String(settings.producer.cpu));
      expect(task.props.Memory).toBe(String(settings.producer.memoryMiB));
      expect(task.props.ContainerDefinitions[0].LogConfiguration.LogDriver).toBe('awslogs');
      const service = all(s, 'AWS::ECS::Service')[0]!;
      // Service auto scaling owns the count: a redeploy must not reset it.
      expect(service.props.DesiredCount).toBeUndefined();
      const target = all(s, 'AWS::ApplicationAutoScaling::ScalableTarget')[0]!;
      expect([target.props.MinCapacity, target.props.MaxCapacity]).toEqual([
        settings.producer.minTasks,
        settings.producer.maxTasks,
      ]);
      const net = service.props.NetworkConfiguration.AwsvpcConfiguration;
      expect(net.AssignPublicIp).toBe('DISABLED');
      expect(net.Subnets).toEqual(settings.vpc.subnetIds);
      expect(service.props.CapacityProviderStrategy).toBeUndefined();
    });
  });

  describe('dashboard and tags', () => {
    it('shows on the dashboard only Rowstream metrics the services emit, with their own service', () => {
      const dash = all(s, 'AWS::CloudWatch::Dashboard')[0]!;
      const raw = dash.props.DashboardBody;
      // The body is a JSON string with region/account tokens joined in: put placeholders in their place.
      const text =
        typeof raw === 'string'
          ? raw
          : raw['Fn::Join'][1].map((p: any) => (typeof p === 'string' ? p : 'TOKEN')).join('');
      const body = JSON.parse(text);
      const named: [string, string][] = [];
      for (const w of body.widgets) {
        for (const m of w.properties?.metrics ?? []) {
          if (m[0] === METRIC_NAMESPACE) named.push([m[1], m[m.indexOf('Service') + 1]]);
          const expr = m[0]?.expression as string | undefined;
          for (const x of expr?.matchAll(/MetricName="(\w+)"/g) ?? [])
            named.push([x[1]!, /Service="?([\w-]+)/.exec(expr!)?.[1] ?? '']);
        }
      }
      expect(named.length).toBeGreaterThan(10);
      for (const [metric, service] of named) {
        const def = METRICS.find((d) => d.name === metric);
        expect(def, `dashboard names ${metric}, not in monitoring/metrics.ts`).toBeDefined();
        if (service) expect(def!.service, metric).toBe(service);
      }
    });

    it('tags every taggable resource with app, stage and service (cost allocation)', () => {
      const taggable = s.resources.filter((r) => r.props.Tags !== undefined);
      expect(taggable.length).toBeGreaterThan(20);
      for (const r of taggable) {
        const tags = tagMap(r.props);
        expect(tags.app, `${r.stack}/${r.id}`).toBe('rowstream');
        expect(tags.stage, `${r.stack}/${r.id}`).toBe(stage);
        expect(tags.service ?? '', `${r.stack}/${r.id} (${r.type})`).toMatch(/^[a-z-]+$/);
      }
      for (const type of [
        'AWS::S3::Bucket',
        'AWS::DynamoDB::Table',
        'AWS::SQS::Queue',
        'AWS::Lambda::Function',
        'AWS::SNS::Topic',
        'AWS::ECS::Service',
        'AWS::ECS::TaskDefinition',
        'AWS::Events::EventBus',
      ]) {
        // CDK's own custom-resource providers are raw CloudFormation without tag support (and cost nothing idle).
        for (const r of all(s, type).filter((x) => !x.id.includes('CustomResourceProvider'))) {
          expect(r.props.Tags, `${type} ${r.id} has tags`).toBeDefined();
        }
      }
      for (const service of ['planner', 'alarm-router', 'cost-tracker', 'dims-publisher'] as const) {
        const fn = one(s, 'AWS::Lambda::Function', (p) => p.FunctionName === functionName(stage, service));
        expect(tagMap(fn.props).service).toBe(service);
      }
      expect(tagMap(all(s, 'AWS::ECS::Service')[0]!.props).service).toBe('producer');
    });
  });
});

describe('deploy settings', () => {
  it('fails fast naming every missing setting', () => {
    expect(() => loadDeploySettings({})).toThrow(DeploySettingsError);
    expect(() => loadDeploySettings({})).toThrow(/ROWSTREAM_VPC_ID[\s\S]*ROWSTREAM_PRIVATE_SUBNET_IDS/);
    const network = {
      ROWSTREAM_VPC_ID: 'vpc-0abc',
      ROWSTREAM_PRIVATE_SUBNET_IDS: 'subnet-0a',
      ROWSTREAM_AVAILABILITY_ZONES: 'eu-west-1a',
    };
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_KAFKA_AUTH: 'scram' })).toThrow(
      /ROWSTREAM_KAFKA_BROKERS[\s\S]*ROWSTREAM_KAFKA_SECRET_ARN/,
    );
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_KAFKA_BROKERS: 'b:9098' })).toThrow(
      /ROWSTREAM_KAFKA_CLUSTER_ARN: required when ROWSTREAM_KAFKA_AUTH=msk-iam/,
    );
  });

  it('refuses plans/ expiring before the sources a resume needs (inbound/, failed/ when moved)', () => {
    const stage = {
      ROWSTREAM_VPC_ID: 'vpc-0abc',
      ROWSTREAM_PRIVATE_SUBNET_IDS: 'subnet-0a',
      ROWSTREAM_AVAILABILITY_ZONES: 'eu-west-1a',
      ROWSTREAM_KAFKA_BROKERS: 'b:9092',
      ROWSTREAM_KAFKA_AUTH: 'none',
    };
    expect(loadDeploySettings(stage).lifecycle.plansExpireDays).toBe(90);
    expect(() => loadDeploySettings({ ...stage, ROWSTREAM_PLANS_EXPIRE_DAYS: '10' })).toThrow(
      /ROWSTREAM_PLANS_EXPIRE_DAYS: below ROWSTREAM_INBOUND_EXPIRE_DAYS \(30\)/,
    );
    expect(() => loadDeploySettings({ ...stage, ROWSTREAM_INBOUND_EXPIRE_DAYS: '0' })).toThrow(
      /below ROWSTREAM_INBOUND_EXPIRE_DAYS \(never\)/,
    );
    expect(() =>
      loadDeploySettings({ ...stage, ROWSTREAM_SOURCE_FATE: 'move', ROWSTREAM_FAILED_EXPIRE_DAYS: '120' }),
    ).toThrow(/below ROWSTREAM_FAILED_EXPIRE_DAYS \(120\)/);
    expect(
      loadDeploySettings({ ...stage, ROWSTREAM_INBOUND_EXPIRE_DAYS: '0', ROWSTREAM_PLANS_EXPIRE_DAYS: '0' })
        .lifecycle.plansExpireDays,
    ).toBe(0);
  });

  it('parses a complete stage file', () => {
    const s = loadDeploySettings({
      ROWSTREAM_VPC_ID: 'vpc-0abc',
      ROWSTREAM_PRIVATE_SUBNET_IDS: 'subnet-0a, subnet-0b',
      ROWSTREAM_AVAILABILITY_ZONES: 'eu-west-1a,eu-west-1b',
      ROWSTREAM_KAFKA_AUTH: 'scram',
      ROWSTREAM_KAFKA_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:kafka-AbCdEf',
      ROWSTREAM_KAFKA_SECRET_KEY_ARN: 'arn:aws:kms:eu-west-1:123456789012:key/1',
      ROWSTREAM_PRODUCER_SPOT: 'true',
      ROWSTREAM_PRODUCER_MAX_TASKS: '6',
    });
    expect(s.vpc.subnetIds).toEqual(['subnet-0a', 'subnet-0b']);
    expect(s.kafka).toMatchObject({ auth: 'scram', brokers: '', clusterArn: null });
    expect(s.producer).toMatchObject({
      spot: true,
      minTasks: 1,
      maxTasks: 6,
      concurrency: 1,
      cpu: 512,
      memoryMiB: 1024,
      image: null,
    });
    expect(s.kafka).toMatchObject({ defaultTopic: 'rowstream.rows', allowedTopics: ['rowstream.rows'] });
  });
});

describe('producer variants', () => {
  it('uses Fargate Spot when asked, and SCRAM credentials from the secret through the execution role', async () => {
    const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rowstream-kafka-AbCdEf';
    const s = await synth(
      'spot',
      testSettings({
        kafka: {
          ...testSettings().kafka,
          auth: 'scram',
          brokers: '',
          secretArn,
          secretKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
          clusterArn: null,
        },
        producer: {
          ...testSettings().producer,
          cpu: 1024,
          memoryMiB: 2048,
          spot: true,
          image: 'example/producer:1',
        },
      }),
    );
    const service = all(s, 'AWS::ECS::Service')[0]!;
    expect(service.props.CapacityProviderStrategy).toEqual([
      { CapacityProvider: 'FARGATE_SPOT', Weight: 1 },
      { Base: 0, CapacityProvider: 'FARGATE', Weight: 0 },
    ]);
    const container = all(s, 'AWS::ECS::TaskDefinition')[0]!.props.ContainerDefinitions[0];
    expect(container.Secrets.map((x: any) => x.Name).sort()).toEqual([
      'KAFKA_BROKERS',
      'KAFKA_PASSWORD',
      'KAFKA_USERNAME',
    ]);
    expect(container.Environment.find((e: any) => e.Name === 'KAFKA_BROKERS')).toBeUndefined();
    expect(container.Environment.find((e: any) => e.Name === 'KAFKA_SASL_MECHANISM')?.Value).toBe(
      'scram-sha-512',
    );
    const policies = all(s, 'AWS::IAM::Policy').map((p) => JSON.stringify(p.props));
    expect(policies.some((p) => p.includes('kafka-cluster:'))).toBe(false);
    expect(
      policies.some((p) => p.includes('secretsmanager:GetSecretValue') && p.includes('ExecutionRole')),
    ).toBe(true);
  });

  it('builds the Node 24 image from stacks/producer.Dockerfile when no image is given', async () => {
    const s = await synth('img', testSettings({ producer: { ...testSettings().producer, image: null } }));
    const container = all(s, 'AWS::ECS::TaskDefinition')[0]!.props.ContainerDefinitions[0];
    expect(JSON.stringify(container.Image)).toContain('cdk-hnb659fds-container-assets');
    const dockerfile = readFileSync(`${ROOT}/stacks/producer.Dockerfile`, 'utf8');
    expect(dockerfile).toMatch(/^FROM node:24/m);
  });

  it('runs the bundle in the image with the flags the tests and benches use (PRODUCER_NODE_FLAGS)', () => {
    const dockerfile = readFileSync(`${ROOT}/stacks/producer.Dockerfile`, 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile);
    expect(cmd, 'the Dockerfile has an exec-form CMD').not.toBeNull();
    expect(JSON.parse(cmd![1]!)).toEqual(['node', ...PRODUCER_NODE_FLAGS, 'dist/producer/main.mjs']);
  });
});

describe('the environment the stacks set is enough for each service to start', () => {
  /** A deployed value for every token: the shape matters to the schemas, not the value. */
  const concrete = (v: unknown): string => (typeof v === 'string' ? v : 'resolved-at-deploy');

  it.each([
    ['planner', 'PlannerEnv'],
    ['alarm-router', 'AlarmRouterEnv'],
    ['cost-tracker', 'CostTrackerEnv'],
    ['dims-publisher', 'DimsEnv'],
  ] as const)('%s parses its configuration from the function environment', async (service, schemaName) => {
    // Prepare
    const file = `${ROOT}/services/${service}/settings.ts`;
    if (!existsSync(file)) return expect.fail(`services/${service}/settings.ts is missing`);
    const mod = (await import(file)) as Record<
      string,
      { safeParse(v: unknown): { success: boolean; error?: unknown } }
    >;
    const s = await synth('dev');
    const fn = s.resources.find(
      (r) => r.type === 'AWS::Lambda::Function' && r.props.FunctionName === functionName('dev', service),
    )!;
    const env = Object.fromEntries(
      Object.entries(fn.props.Environment.Variables as Record<string, unknown>).map(([k, v]) => [
        k,
        concrete(v),
      ]),
    );
    // Act: Lambda adds AWS_REGION itself.
    const parsed = mod[schemaName]!.safeParse({ ...env, AWS_REGION: 'eu-west-1' });
    // Assess
    expect(parsed.error, `${service}: ${String(parsed.error)}`).toBeUndefined();
    expect(parsed.success).toBe(true);
  });
});

describe('the producer task', () => {
  it.each([
    ['brokers in the settings', testSettings()],
    [
      'brokers and SCRAM credentials in a secret',
      testSettings({
        kafka: {
          ...testSettings().kafka,
          auth: 'scram',
          brokers: '',
          secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rowstream-kafka-AbCdEf',
          secretKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555',
          clusterArn: null,
        },
      }),
    ],
  ])('parses its configuration from the container environment (%s)', async (_, settings) => {
    // Prepare
    const { ProducerEnv } = await import('../../services/producer/settings.ts');
    const s = await synth('dev', settings);
    const container = s.resources.find((r) => r.type === 'AWS::ECS::TaskDefinition')!.props
      .ContainerDefinitions[0];
    const env: Record<string, string> = {};
    for (const e of container.Environment)
      env[e.Name] = typeof e.Value === 'string' ? e.Value : 'resolved-at-deploy';
    // ECS injects secrets as variables of the same name at start.
    for (const x of container.Secrets ?? []) env[x.Name] = 'from-secret:9096';
    // Act
    const parsed = ProducerEnv.safeParse(env);
    // Assess
    expect(parsed.error, String(parsed.error)).toBeUndefined();
    expect(env.KAFKA_BROKERS).toBeTruthy();
  });
});
