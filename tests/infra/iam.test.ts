// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation templates are untyped JSON, walked by shape.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { functionName } from '../../monitoring/alarms.ts';
import { loadDefinition } from '../../services/dims-publisher/settings.ts';
import {
  INVENTORY_DEFINITION,
  MSK_PRODUCER_ACTIONS,
  type PermissionRefs,
  servicePermissions,
} from '../../stacks/Pipeline.ts';
import { SYNTH_TIMEOUT_MS, type Synthesized, synth, testSettings } from '../../testkit/synth.ts';
import { resourceNames, type ServiceName } from '../../topology/topology.ts';
import { COMMAND_ACTIONS, compareActions, neededActions, ROOT, serviceExists } from './sdk-calls.ts';

/**
 * Least privilege, proven: the actions each service's role is granted must equal the actions its code
 * calls (SDK commands found in its source, mapped by COMMAND_ACTIONS). A call without a permission fails
 * here before it fails in production; a permission without a call fails here too.
 */

const SERVICES: readonly ServiceName[] = [
  'planner',
  'producer',
  'alarm-router',
  'cost-tracker',
  'dims-publisher',
];

/** Actions AWS only grants on `*`; each is in a statement of its own in stacks/Pipeline.ts, with a comment. */
const STAR_RESOURCE_ONLY = new Set(['cloudwatch:PutMetricData', 'ce:GetCostAndUsage', 'ce:GetCostForecast']);

/** What the Lambda service does with the role to run an SQS trigger (not calls of the code). */
const SQS_TRIGGER_ACTIONS = [
  'sqs:ReceiveMessage',
  'sqs:ChangeMessageVisibility',
  'sqs:GetQueueUrl',
  'sqs:DeleteMessage',
  'sqs:GetQueueAttributes',
];
const SQS_TRIGGERED: Partial<Record<ServiceName, 'planner' | 'alarmRouter'>> = {
  planner: 'planner',
  'alarm-router': 'alarmRouter',
};

/**
 * What the Lambda service does with the role of a scheduled (asynchronously invoked) function: a run
 * that failed every retry goes to the function's DLQ, the rule-target DLQ (stacks/Pipeline.ts).
 */
const ASYNC_DLQ: Partial<Record<ServiceName, true>> = { 'cost-tracker': true, 'dims-publisher': true };

/**
 * Grants that no SDK call of the code uses, each for a reason: the planner's ListBucket on inbound/
 * makes S3 answer 404 (not 403) for a vanished object; the producer's UpdateTaskProtection is what the
 * ECS agent endpoint calls with the task's credentials (services/producer/adapters/protection-ecs.ts).
 */
const NOT_SDK_CALLS: Partial<Record<ServiceName, readonly string[]>> = {
  planner: ['s3:ListBucket'],
  producer: ['ecs:UpdateTaskProtection'],
};

interface Statement {
  readonly actions: readonly string[];
  readonly resources: readonly unknown[];
  readonly conditions?: Record<string, Record<string, unknown>>;
}

const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** Every Allow statement attached to a role (inline policies and AWS::IAM::Policy resources). */
function roleStatements(s: Synthesized, roleId: string): { statements: Statement[]; managed: unknown[] } {
  const role = s.resources.find((r) => r.type === 'AWS::IAM::Role' && r.id === roleId);
  expect(role, `role ${roleId}`).toBeDefined();
  const docs = [
    ...list(role!.props.Policies).map((p: any) => p.PolicyDocument),
    ...s.resources
      .filter((r) => r.type === 'AWS::IAM::Policy' && list(r.props.Roles).some((x: any) => x?.Ref === roleId))
      .map((r) => r.props.PolicyDocument),
  ];
  const statements = docs.flatMap((d: any) =>
    list(d.Statement)
      .filter((st: any) => st.Effect === 'Allow')
      .map((st: any) => ({
        actions: list<string>(st.Action),
        resources: list(st.Resource),
        ...(st.Condition ? { conditions: st.Condition } : {}),
      })),
  );
  return { statements, managed: list(role!.props.ManagedPolicyArns) };
}

function serviceRoleId(s: Synthesized, service: ServiceName): string {
  if (service === 'producer') {
    const task = s.resources.find((r) => r.type === 'AWS::ECS::TaskDefinition')!;
    return task.props.TaskRoleArn['Fn::GetAtt'][0];
  }
  const fn = s.resources.find(
    (r) => r.type === 'AWS::Lambda::Function' && r.props.FunctionName === functionName(s.stage, service),
  );
  expect(fn, `function of ${service}`).toBeDefined();
  return fn!.props.Role['Fn::GetAtt'][0];
}

describe('IAM: each service gets exactly the actions its code calls', () => {
  let s: Synthesized;
  beforeAll(async () => {
    // The stage that moves sources: every grant of both fates is in use there (tag mode: see below).
    s = await synth('dev', testSettings({ sourceFate: 'move' }));
  }, SYNTH_TIMEOUT_MS);

  it('move mode: processed/ and failed/ expire as configured; only inbound/ notifies the planner', () => {
    const bucket = s.resources.find((r) => r.type === 'AWS::S3::Bucket')!;
    const rules = bucket.props.LifecycleConfiguration.Rules as any[];
    const { lifecycle } = testSettings();
    expect(rules.find((r) => r.Prefix === 'processed/')?.ExpirationInDays).toBe(
      lifecycle.processedExpireDays,
    );
    expect(rules.find((r) => r.Prefix === 'failed/')?.ExpirationInDays).toBe(lifecycle.failedExpireDays);
    const n = s.resources.find((r) => r.type === 'Custom::S3BucketNotifications')!;
    expect(
      n.props.NotificationConfiguration.QueueConfigurations.map((q: any) => q.Filter.Key.FilterRules),
    ).toEqual([[{ Name: 'prefix', Value: 'inbound/' }]]);
  });

  it('maps every SDK command the services construct to IAM actions', () => {
    for (const service of SERVICES) {
      expect(neededActions(service).unmapped, `${service}: add these to COMMAND_ACTIONS`).toEqual([]);
    }
  });

  it.each(SERVICES)('%s: no permission without a call, no call without a permission', (service) => {
    const roleId = serviceRoleId(s, service);
    const { statements, managed } = roleStatements(s, roleId);
    const trigger = SQS_TRIGGERED[service];
    const triggerQueue = trigger ? resourceNames('dev').queues[trigger].name : null;
    const granted = new Set<string>();
    for (const st of statements) {
      for (const a of st.actions) {
        if (a.startsWith('kafka-cluster:')) continue; // checked below: not SDK calls
        if (NOT_SDK_CALLS[service]?.includes(a)) continue;
        // The trigger's actions are the Lambda service's, and only on the trigger queue.
        if (ASYNC_DLQ[service] && a === 'sqs:SendMessage') {
          expect(JSON.stringify(st.resources), `${service} ${a} only on the rule-target DLQ`).toMatch(
            new RegExp(`:${resourceNames('dev').queues.ruleTargets.name}"`),
          );
          continue;
        }
        if (trigger && SQS_TRIGGER_ACTIONS.includes(a)) {
          expect(JSON.stringify(st.resources), `${service} ${a} only on its trigger queue`).toMatch(
            new RegExp(`${trigger}Queue`),
          );
          continue;
        }
        granted.add(a);
      }
    }
    if (service !== 'producer') {
      // Lambda's logging policy, and nothing else managed.
      expect(JSON.stringify(managed)).toMatch(/AWSLambdaBasicExecutionRole/);
      expect(managed).toHaveLength(1);
    }
    if (triggerQueue) expect(statements.some((st) => st.actions.includes('sqs:ReceiveMessage'))).toBe(true);

    if (!serviceExists(service)) {
      // Not written yet: the grants are the design's. The comparison runs as soon as the code lands.
      console.warn(`[iam] services/${service} has no code yet; granted: ${[...granted].sort().join(', ')}`);
      return;
    }
    const { actions: needed, calls } = neededActions(service);
    expect(calls.commands.size, `${service} makes AWS calls that the scan found`).toBeGreaterThan(0);
    const { missing, unused } = compareActions(needed, granted);
    expect(missing, `${service} calls these without permission (files: ${calls.files.join(', ')})`).toEqual(
      [],
    );
    expect(unused, `${service} is granted these but never calls them`).toEqual([]);
  });

  /** The s3:prefix values (StringLike) of a service's statements granting `action`, one list per statement. */
  const listPrefixes = (service: ServiceName, action: string): string[][] =>
    roleStatements(s, serviceRoleId(s, service))
      .statements.filter((st) => st.actions.includes(action))
      .map((st) => list<string>(st.conditions?.StringLike?.['s3:prefix'] as string | string[] | undefined));

  it.each(SERVICES)('%s: lists the bucket only under prefixes, never the whole bucket', (service) => {
    for (const action of ['s3:ListBucket', 's3:ListBucketVersions']) {
      for (const prefixes of listPrefixes(service, action)) {
        expect(prefixes.length, `${service} ${action} without an s3:prefix condition`).toBeGreaterThan(0);
        for (const p of prefixes) expect(p, `${service} ${action}`).toMatch(/^[a-z]+\/\*$/);
      }
    }
  });

  it('dims-publisher lists exactly the prefixes of its inventory definition', () => {
    const definition = loadDefinition(join(ROOT, INVENTORY_DEFINITION));
    expect(listPrefixes('dims-publisher', 's3:ListBucket').flat().sort()).toEqual(
      definition.prefixes.map((p) => `${p}*`).sort(),
    );
    expect(listPrefixes('dims-publisher', 's3:ListBucketVersions').flat()).toEqual(
      definition.oldestUnprocessed ? [`${definition.oldestUnprocessed.prefix}*`] : [],
    );
  });

  it.each(SERVICES)(
    '%s: may list every prefix it reads objects from (a missing key is 404, not 403)',
    (service) => {
      const { statements } = roleStatements(s, serviceRoleId(s, service));
      const read = statements
        .filter((st) => st.actions.includes('s3:GetObject'))
        .flatMap((st) => st.resources.map((r) => JSON.stringify(r).match(/\/([a-z]+\/)\*"/)?.[1]))
        .filter((p): p is string => p !== undefined);
      if (service === 'planner' || service === 'producer')
        expect(read, `${service} reads objects`).not.toEqual([]);
      const listable = listPrefixes(service, 's3:ListBucket').flat();
      for (const prefix of read) expect(listable, `${service} reads ${prefix}`).toContain(`${prefix}*`);
    },
  );

  it('grants `*` resources only where AWS requires them, and never a `*` action', () => {
    for (const r of s.resources.filter((x) => x.type === 'AWS::IAM::Policy')) {
      // CDK's and SST's deploy-time custom resources (bucket notifications, log retention, auto-delete) are
      // not services; their `*` grants are the providers' own.
      if (!SERVICES.some((svc) => JSON.stringify(r.props.Roles).includes(serviceRoleId(s, svc)))) continue;
      for (const st of list(r.props.PolicyDocument.Statement) as any[]) {
        for (const a of list<string>(st.Action)) expect(a, r.id).not.toMatch(/^([a-z-]+:)?\*$/);
        if (list(st.Resource).includes('*')) {
          for (const a of list<string>(st.Action))
            expect(STAR_RESOURCE_ONLY, `${r.id}: ${a} on *`).toContain(a);
        }
      }
    }
  });

  it('gives the producer MSK IAM access to its cluster, topic and transactional ids only', () => {
    const { statements } = roleStatements(s, serviceRoleId(s, 'producer'));
    const kafka = statements.filter((st) => st.actions.some((a) => a.startsWith('kafka-cluster:')));
    const actions = kafka.flatMap((st) => st.actions).sort();
    expect(actions).toEqual(Object.values(MSK_PRODUCER_ACTIONS).flat().sort());
    for (const st of kafka) {
      for (const r of st.resources)
        expect(String(r)).toMatch(
          /^arn:aws:kafka:eu-west-1:123456789012:(cluster|topic|transactional-id|group)\/rowstream\//,
        );
    }
  });

  it('the comparison catches a call without a permission and a permission without a call', () => {
    const r = compareActions(
      new Set(['s3:GetObject', 'events:PutEvents']),
      new Set(['s3:GetObject', 'sns:Publish']),
    );
    expect(r).toEqual({ missing: ['events:PutEvents'], unused: ['sns:Publish'] });
    expect(COMMAND_ACTIONS.PutEventsCommand).toEqual(['events:PutEvents']);
  });
});

describe('IAM: the source fate setting decides the move grants', () => {
  const refs = (sourceFate: 'tag' | 'move'): PermissionRefs => ({
    bucketArn: 'arn:aws:s3:::data',
    busArn: 'arn:bus',
    tableArn: (t) => `arn:table/${t}`,
    queueArn: (q) => `arn:queue/${q}`,
    topicArns: [],
    alertsKeyArn: 'arn:key',
    schemaArns: ['arn:registry'],
    inventory: { prefixes: ['inbound/'], oldestUnprocessed: null },
    sourceFate,
  });
  /** service -> "action on resource" lines of its S3 grants. */
  const s3Grants = (service: 'planner' | 'producer', fate: 'tag' | 'move') =>
    servicePermissions(service, refs(fate)).flatMap((g) =>
      g.actions
        .filter((a) => a.startsWith('s3:') && a !== 's3:ListBucket')
        .flatMap((a) => g.resources.map((r) => `${a} ${r.replace('arn:aws:s3:::data/', '')}`)),
    );

  it.each(['planner', 'producer'] as const)(
    '%s: tag mode grants nothing on processed/ or failed/',
    (service) => {
      const grants = s3Grants(service, 'tag');
      expect(grants.filter((g) => /processed\/|failed\//.test(g))).toEqual([]);
      expect(grants.filter((g) => g.startsWith('s3:DeleteObjectVersion'))).toEqual([]);
    },
  );

  it.each(['tag', 'move'] as const)(
    'plans/ (%s mode): the planner only writes plans, the producer only reads them',
    (fate) => {
      const onPlans = (service: 'planner' | 'producer') =>
        s3Grants(service, fate).filter((g) => g.endsWith(' plans/*'));
      expect(onPlans('planner')).toEqual(['s3:PutObject plans/*']);
      expect(onPlans('producer')).toEqual(['s3:GetObject plans/*']);
    },
  );

  it('move mode: writes only under processed/ and failed/, deletes versions only where sources are', () => {
    const planner = s3Grants('planner', 'move');
    const producer = s3Grants('producer', 'move');
    // plans/: the planner's large plans (docs/planner.md, "Large plans"), in either mode.
    expect(planner.filter((g) => g.startsWith('s3:PutObject ')).sort()).toEqual([
      's3:PutObject failed/*',
      's3:PutObject plans/*',
    ]);
    expect(producer.filter((g) => g.startsWith('s3:PutObject ')).sort()).toEqual([
      's3:PutObject failed/*',
      's3:PutObject processed/*',
      's3:PutObject rejected/*',
    ]);
    expect(planner.filter((g) => g.startsWith('s3:DeleteObjectVersion'))).toEqual([
      's3:DeleteObjectVersion inbound/*',
    ]);
    expect(producer.filter((g) => g.startsWith('s3:DeleteObjectVersion'))).toEqual([
      's3:DeleteObjectVersion inbound/*',
      's3:DeleteObjectVersion failed/*',
    ]);
    // Nothing deletes or overwrites in processed/: a moved object is only ever copied there.
    expect([...planner, ...producer].filter((g) => /^s3:Delete\S* processed/.test(g))).toEqual([]);
  });
});
