// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation templates are untyped JSON, walked by shape.
/**
 * What a first `sst deploy --stage prod` needs beyond synthesizing: each test here fails on the stack
 * as it was before the deploy review (issue 15, and the IAM parts of issue 14).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CATALOG } from '../../events/catalog.ts';
import { alarmDefinitions, functionName } from '../../monitoring/alarms.ts';
import {
  eventsOf,
  PRODUCER_BACKLOG_PER_TASK,
  PRODUCER_GRACE_MS,
  PRODUCER_STOP_TIMEOUT_SECONDS,
} from '../../stacks/Pipeline.ts';
import { DeploySettingsError, loadDeploySettings } from '../../stacks/settings.ts';
import { SYNTH_TIMEOUT_MS, type Synthesized, synth, testSettings } from '../../testkit/synth.ts';
import { resourceNames, SCHEDULES, type ServiceName } from '../../topology/topology.ts';

const all = (s: Synthesized, type: string) => s.resources.filter((r) => r.type === type);
const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const containerOf = (s: Synthesized) =>
  all(s, 'AWS::ECS::TaskDefinition')[0]!.props.ContainerDefinitions[0] as Record<string, any>;
const envOf = (c: Record<string, any>) =>
  Object.fromEntries((c.Environment as any[]).map((e) => [e.Name, e.Value])) as Record<string, unknown>;
const fnOf = (s: Synthesized, service: ServiceName) =>
  s.resources.find(
    (r) => r.type === 'AWS::Lambda::Function' && r.props.FunctionName === functionName(s.stage, service),
  )!;
/** Allow statements of the policies attached to a role (by logical id). */
const statementsOf = (s: Synthesized, roleId: string) =>
  all(s, 'AWS::IAM::Policy')
    .filter((p) => list(p.props.Roles).some((r: any) => r?.Ref === roleId))
    .flatMap((p) => list(p.props.PolicyDocument.Statement) as any[]);

describe('the prod stage', () => {
  let s: Synthesized;
  const names = resourceNames('prod');
  beforeAll(async () => {
    s = await synth('prod');
  }, SYNTH_TIMEOUT_MS);

  it('lets CloudWatch alarms publish to the alert topics (the topic policy replaces SNS default one)', () => {
    const policies = all(s, 'AWS::SNS::TopicPolicy');
    const topics = all(s, 'AWS::SNS::Topic');
    expect(topics).toHaveLength(3);
    for (const t of topics) {
      const policy = policies.find((p) => list(p.props.Topics).some((x: any) => x?.Ref === t.id));
      expect(policy, `policy of ${t.props.TopicName}`).toBeDefined();
      const st = list(policy!.props.PolicyDocument.Statement).find(
        (x: any) => x.Effect === 'Allow' && x.Principal?.Service === 'cloudwatch.amazonaws.com',
      ) as any;
      expect(st?.Action).toBe('sns:Publish');
      expect(st.Condition.StringEquals['aws:SourceAccount']).toBe('123456789012');
      expect(JSON.stringify(st.Condition.ArnLike['aws:SourceArn'])).toContain('alarm:rowstream-prod-*');
    }
  });

  it('names the bucket with account and region (bucket names are global)', () => {
    const bucket = all(s, 'AWS::S3::Bucket').find((b) => b.stack === 'Storage')!;
    expect(bucket.props.BucketName).toBe('rowstream-prod-data-123456789012-eu-west-1');
  });

  it('retains the archive in prod', () => {
    const archive = all(s, 'AWS::Events::Archive')[0]!;
    expect(archive.raw.DeletionPolicy).toBe('Retain');
  });

  it('wires one topic setting end to end: planner default + allow-list, producer, MSK grants', () => {
    const settings = testSettings();
    const planner = fnOf(s, 'planner').props.Environment.Variables;
    expect(planner.ROWSTREAM_DEFAULT_TOPIC).toBe(settings.kafka.defaultTopic);
    expect(planner.ROWSTREAM_ALLOWED_TOPICS).toBe('rowstream.rows,rowstream.audit');
    const env = envOf(containerOf(s));
    expect(env.ROWSTREAM_DEFAULT_TOPIC).toBe(settings.kafka.defaultTopic);
    expect(env.ROWSTREAM_ALLOWED_TOPICS).toBe('rowstream.rows,rowstream.audit');
    expect(env).not.toHaveProperty('KAFKA_TOPIC');
    expect(env.ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS).toBe('false');
    const taskRole =
      containerOf(s) && all(s, 'AWS::ECS::TaskDefinition')[0]!.props.TaskRoleArn['Fn::GetAtt'][0];
    const topicGrant = statementsOf(s, taskRole).find((st) => st.Sid === 'MskTopic');
    expect(list(topicGrant.Resource).sort()).toEqual(
      ['rowstream.rows', 'rowstream.audit']
        .map(
          (t) =>
            `arn:aws:kafka:eu-west-1:123456789012:topic/rowstream/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab-2/${t}`,
        )
        .sort(),
    );
    // No topic creation in the cloud: the grants never include CreateTopic.
    expect(JSON.stringify(statementsOf(s, taskRole))).not.toContain('CreateTopic');
  });

  it('builds the producer image for the task platform (X86_64)', () => {
    // Asset platform is in the asset manifest: checked through `npm run synth` in synth-cli.test.ts; here
    // the declared platform of the task.
    const task = all(s, 'AWS::ECS::TaskDefinition')[0]!;
    expect(task.props.RuntimePlatform.CpuArchitecture).toBe('X86_64');
  });

  it('gives the producer its own security group, Kafka ingress from it, and outputs for the operator', () => {
    const sg = all(s, 'AWS::EC2::SecurityGroup').find(
      (g) => g.props.GroupName === 'rowstream-prod-producer',
    )!;
    expect(sg).toBeDefined();
    expect(sg.props.SecurityGroupIngress).toBeUndefined();
    const service = all(s, 'AWS::ECS::Service')[0]!;
    const groups = service.props.NetworkConfiguration.AwsvpcConfiguration.SecurityGroups;
    expect(groups.map((g: any) => g['Fn::GetAtt']?.[0])).toContain(sg.id);
    const ingress = all(s, 'AWS::EC2::SecurityGroupIngress')[0]!;
    expect(ingress.props).toMatchObject({
      GroupId: 'sg-0123456789abcdef0',
      IpProtocol: 'tcp',
      FromPort: 9098,
      ToPort: 9098,
    });
    expect(ingress.props.SourceSecurityGroupId['Fn::GetAtt'][0]).toBe(sg.id);
    const outputs = Object.keys(s.templates.Pipeline!.toJSON().Outputs ?? {});
    for (const o of [
      'ProducerSecurityGroupId',
      'ProducerClusterName',
      'ProducerServiceName',
      'ProducerTaskRoleArn',
    ])
      expect(outputs).toContain(o);
  });

  it('sets queue visibility to at least 6x the function timeout, one object per planner invocation', () => {
    for (const [service, queue] of [
      ['planner', names.queues.planner.name],
      ['alarm-router', names.queues.alarmRouter.name],
    ] as const) {
      const fn = fnOf(s, service);
      const q = all(s, 'AWS::SQS::Queue').find((x) => x.props.QueueName === queue)!;
      expect(q.props.VisibilityTimeout, service).toBeGreaterThanOrEqual(6 * fn.props.Timeout);
    }
    const planner = fnOf(s, 'planner');
    expect(planner.props.MemorySize).toBeGreaterThanOrEqual(1024);
    const esm = all(s, 'AWS::Lambda::EventSourceMapping').find(
      (e) => e.props.FunctionName?.Ref === planner.id,
    )!;
    expect(esm.props.BatchSize).toBe(1);
  });

  it('dead-letters schedule events into the rule-target DLQ, which admits the schedule rules', () => {
    const dlqName = names.queues.ruleTargets.name;
    for (const sch of SCHEDULES) {
      const rule = all(s, 'AWS::Events::Rule').find((r) => r.props.Name === names.schedules[sch.name])!;
      expect(JSON.stringify(rule.props.Targets[0].DeadLetterConfig.Arn)).toContain(`:${dlqName}`);
    }
    const dlq = all(s, 'AWS::SQS::Queue').find((q) => q.props.QueueName === dlqName)!;
    const policy = all(s, 'AWS::SQS::QueuePolicy').find((p) =>
      p.props.Queues.some((q: any) => q.Ref === dlq.id),
    )!;
    const st = policy.props.PolicyDocument.Statement.find((x: any) => x.Sid === 'ScheduleTargetDeadLetters');
    const arns = JSON.stringify(st.Condition.ArnEquals['aws:SourceArn']);
    for (const sch of SCHEDULES) expect(arns).toContain(`rule/${names.schedules[sch.name]}`);
  });

  it('routes only this stage alarms from the default bus to the alarm-router', () => {
    const rule = all(s, 'AWS::Events::Rule').find((r) => r.props.Name === names.rules['alarm-state'])!;
    expect(rule.props.EventPattern.detail).toEqual({ alarmName: [{ prefix: 'rowstream-prod-' }] });
    for (const a of alarmDefinitions('prod')) expect(a.name.startsWith('rowstream-prod-')).toBe(true);
  });

  it('propagates the cost tags to the producer tasks', () => {
    const service = all(s, 'AWS::ECS::Service')[0]!;
    expect(service.props.PropagateTags).toBe('SERVICE');
    expect(service.props.EnableECSManagedTags).toBe(true);
  });

  it("ends the producer's grace period before ECS's stopTimeout", () => {
    const c = containerOf(s);
    expect(c.StopTimeout).toBe(PRODUCER_STOP_TIMEOUT_SECONDS);
    const grace = Number(envOf(c).ROWSTREAM_PRODUCER_GRACE_MS);
    expect(grace).toBe(PRODUCER_GRACE_MS);
    expect(grace).toBeLessThan(c.StopTimeout * 1000);
    expect(grace).toBeGreaterThan(60_000);
  });

  it('ships minified Lambda bundles without source maps', () => {
    for (const service of ['planner', 'alarm-router', 'cost-tracker', 'dims-publisher'] as const) {
      const vars = fnOf(s, service).props.Environment.Variables;
      expect(vars.NODE_OPTIONS ?? '').not.toContain('enable-source-maps');
    }
  });

  it('lets each service put only its own events on the bus: only the planner may emit JobStarted', () => {
    for (const service of ['planner', 'alarm-router', 'cost-tracker', 'dims-publisher'] as const) {
      const role = fnOf(s, service).props.Role['Fn::GetAtt'][0];
      const put = statementsOf(s, role).filter((st) => list(st.Action).includes('events:PutEvents'));
      expect(put, service).toHaveLength(1);
      expect(put[0].Condition.StringEquals).toEqual(eventsOf(service));
      const types = put[0].Condition.StringEquals['events:detail-type'] as string[];
      expect(types.includes('JobStarted.v1'), service).toBe(service === 'planner');
    }
    const taskRole = all(s, 'AWS::ECS::TaskDefinition')[0]!.props.TaskRoleArn['Fn::GetAtt'][0];
    const put = statementsOf(s, taskRole).find((st) => list(st.Action).includes('events:PutEvents'));
    expect(put.Condition.StringEquals['events:source']).toEqual(['rowstream.producer']);
    expect(put.Condition.StringEquals['events:detail-type']).not.toContain('JobStarted.v1');
    // The catalog says who emits JobStarted: the grant follows it.
    expect(CATALOG['JobStarted.v1'].source).toBe('rowstream.planner');
  });

  it('lets the planner list inbound/ only, so a missing object is a 404', () => {
    const role = fnOf(s, 'planner').props.Role['Fn::GetAtt'][0];
    const list404 = statementsOf(s, role).find((st) => list(st.Action).includes('s3:ListBucket'));
    expect(list404.Condition).toEqual({ StringLike: { 's3:prefix': ['inbound/*'] } });
  });

  it('scales the producer on the job backlog per task, between the stage minimum and maximum', () => {
    const settings = testSettings();
    const target = all(s, 'AWS::ApplicationAutoScaling::ScalableTarget')[0]!;
    expect(target.props).toMatchObject({
      MinCapacity: settings.producer.minTasks,
      MaxCapacity: settings.producer.maxTasks,
      ScalableDimension: 'ecs:service:DesiredCount',
      ServiceNamespace: 'ecs',
    });
    const policy = all(s, 'AWS::ApplicationAutoScaling::ScalingPolicy')[0]!;
    const cfg = policy.props.TargetTrackingScalingPolicyConfiguration;
    expect(cfg.TargetValue).toBe(settings.producer.concurrency);
    const metrics = cfg.CustomizedMetricSpecification.Metrics as any[];
    expect(metrics.find((m) => m.ReturnData).Expression).toBe(PRODUCER_BACKLOG_PER_TASK);
    expect(
      metrics
        .map((m) => m.MetricStat?.Metric.MetricName)
        .filter(Boolean)
        .sort(),
    ).toEqual(['ApproximateNumberOfMessagesVisible', 'RunningJobs', 'RunningTaskCount']);
    expect(envOf(containerOf(s)).ROWSTREAM_PRODUCER_CONCURRENCY).toBe(String(settings.producer.concurrency));
    const taskRole = all(s, 'AWS::ECS::TaskDefinition')[0]!.props.TaskRoleArn['Fn::GetAtt'][0];
    expect(JSON.stringify(statementsOf(s, taskRole))).toContain('ecs:UpdateTaskProtection');
  });
});

describe('SCRAM with a customer managed key', () => {
  it(
    'lets the execution role decrypt the secret through Secrets Manager only',
    async () => {
      const keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555';
      const s = await synth(
        'scram',
        testSettings({
          kafka: {
            ...testSettings().kafka,
            auth: 'scram',
            brokers: '',
            secretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:AmazonMSK_rowstream-AbCdEf',
            secretKeyArn: keyArn,
            clusterArn: null,
          },
        }),
      );
      const execRole = all(s, 'AWS::ECS::TaskDefinition')[0]!.props.ExecutionRoleArn['Fn::GetAtt'][0];
      const st = statementsOf(s, execRole).find((x) => x.Sid === 'KafkaSecretKey');
      expect(st.Action).toBe('kms:Decrypt');
      expect(st.Resource).toBe(keyArn);
      expect(JSON.stringify(st.Condition)).toContain('secretsmanager.');
    },
    SYNTH_TIMEOUT_MS,
  );
});

describe('a shared schema registry (ROWSTREAM_SCHEMA_REGISTRY)', () => {
  it(
    'creates no registry of its own: grants and every service environment name the existing one',
    async () => {
      const own = await synth('dev');
      expect(all(own, 'AWS::Glue::Registry').map((r) => r.props.Name)).toEqual(['rowstream-dev-schemas']);
      const s = await synth('devb', testSettings({ schemaRegistry: 'team-dev-schemas' }));
      expect(all(s, 'AWS::Glue::Registry')).toHaveLength(0);
      const producerEnv = envOf(containerOf(s));
      expect(producerEnv.ROWSTREAM_SCHEMA_REGISTRY).toBe('team-dev-schemas');
      expect(fnOf(s, 'planner').props.Environment.Variables.ROWSTREAM_SCHEMA_REGISTRY).toBe(
        'team-dev-schemas',
      );
      const grants = JSON.stringify(all(s, 'AWS::IAM::Policy').map((p) => p.props.PolicyDocument));
      expect(grants).toContain(':registry/team-dev-schemas');
      expect(grants).toContain(':schema/team-dev-schemas/*');
      expect(grants).not.toContain('rowstream-devb-schemas');
      expect(() =>
        loadDeploySettings({
          ROWSTREAM_VPC_ID: 'vpc-0abc',
          ROWSTREAM_PRIVATE_SUBNET_IDS: 'subnet-0a',
          ROWSTREAM_AVAILABILITY_ZONES: 'eu-west-1a',
          ROWSTREAM_KAFKA_AUTH: 'none',
          ROWSTREAM_KAFKA_BROKERS: 'b:9092',
          ROWSTREAM_SCHEMA_REGISTRY: 'no spaces',
        }),
      ).toThrow(/ROWSTREAM_SCHEMA_REGISTRY: a Glue registry name/);
    },
    SYNTH_TIMEOUT_MS * 2,
  );
});

describe('deploy settings (topics, scaling, renamed settings)', () => {
  const network = {
    ROWSTREAM_VPC_ID: 'vpc-0abc',
    ROWSTREAM_PRIVATE_SUBNET_IDS: 'subnet-0a',
    ROWSTREAM_AVAILABILITY_ZONES: 'eu-west-1a',
    ROWSTREAM_KAFKA_AUTH: 'none',
    ROWSTREAM_KAFKA_BROKERS: 'b:9092',
  };

  it('refuses `*` and Kafka-internal topics in the cloud, and names the setting', () => {
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_ALLOWED_TOPICS: '*' })).toThrow(
      /ROWSTREAM_ALLOWED_TOPICS: `\*` is for the local stage only/,
    );
    expect(() =>
      loadDeploySettings({ ...network, ROWSTREAM_ALLOWED_TOPICS: 'a,__consumer_offsets' }),
    ).toThrow(/ROWSTREAM_ALLOWED_TOPICS: "__consumer_offsets": not a Kafka-internal topic/);
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_DEFAULT_TOPIC: '__x' })).toThrow(
      /ROWSTREAM_DEFAULT_TOPIC/,
    );
    const s = loadDeploySettings({
      ...network,
      ROWSTREAM_DEFAULT_TOPIC: 'rows',
      ROWSTREAM_ALLOWED_TOPICS: 'a, rows ,b',
    });
    expect(s.kafka.allowedTopics).toEqual(['rows', 'a', 'b']);
  });

  it('fails on a renamed setting instead of ignoring it', () => {
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_KAFKA_TOPIC: 't' })).toThrow(
      /ROWSTREAM_KAFKA_TOPIC: no longer read: use ROWSTREAM_DEFAULT_TOPIC/,
    );
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_PRODUCER_DESIRED_COUNT: '2' })).toThrow(
      DeploySettingsError,
    );
  });

  it('requires the key of a SCRAM secret, and min <= max tasks >= 1', () => {
    expect(() =>
      loadDeploySettings({
        ...network,
        ROWSTREAM_KAFKA_AUTH: 'scram',
        ROWSTREAM_KAFKA_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:1:secret:x',
      }),
    ).toThrow(/ROWSTREAM_KAFKA_SECRET_KEY_ARN: required when ROWSTREAM_KAFKA_AUTH=scram/);
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_PRODUCER_MIN_TASKS: '5' })).toThrow(
      /ROWSTREAM_PRODUCER_MIN_TASKS: above ROWSTREAM_PRODUCER_MAX_TASKS \(4\)/,
    );
    expect(() => loadDeploySettings({ ...network, ROWSTREAM_PRODUCER_MIN_TASKS: '0' })).toThrow(
      /cannot scale a service out from zero/,
    );
  });
});
