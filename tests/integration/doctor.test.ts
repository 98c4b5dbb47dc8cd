import { createServer } from 'node:net';
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStacksCommand,
} from '@aws-sdk/client-cloudformation';
import { CreateSubnetCommand, CreateVpcCommand, EC2Client } from '@aws-sdk/client-ec2';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckResult, MIN_BOOTSTRAP_VERSION, printDoctor, runDoctor } from '../../cli/doctor.ts';
import { LOCAL_CREDENTIALS } from '../../local/config.ts';
import { requireLocalStack, uniqueStage } from '../../testkit/stack.ts';
import { REPO_ROOT, runCli } from './cli-harness.ts';

/**
 * `rowstream doctor --stage <s>` against the local stack standing in for an AWS account: moto answers
 * STS, CloudFormation (a CDKToolkit stack as `sst bootstrap` leaves it) and EC2 (a VPC with two private
 * subnets), the local broker is the Kafka cluster. Healthy, it says "ready to deploy." and exits 0;
 * with a missing topic, a topic too small for the producer's records, Kafka unreachable, or an account
 * not bootstrapped, it names exactly that and exits 1.
 */

const REGION = 'eu-west-2';
/** A region of the emulator where nothing was set up: no bootstrap stack, no VPC. */
const EMPTY_REGION = 'ap-southeast-2';

let endpoint: string;
let brokers: string;
let env: NodeJS.ProcessEnv;
let topic: string;
let smallTopic: string;
let kafka: Kafka;

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const byName = (results: readonly CheckResult[]) => Object.fromEntries(results.map((r) => [r.name, r]));
const doctor = (stage: string, overrides: NodeJS.ProcessEnv = {}) =>
  runDoctor({ root: REPO_ROOT, stage, env: { ...env, ...overrides }, timeoutMs: 5000 });

beforeAll(async () => {
  const local = await requireLocalStack();
  endpoint = local.endpoint;
  brokers = local.brokers.join(',');
  const aws = { region: REGION, endpoint, credentials: LOCAL_CREDENTIALS };

  // An account as a first deploy finds it: bootstrapped (idempotent: the stack is per region), a VPC.
  const cfn = new CloudFormationClient(aws);
  const bootstrapped = await cfn
    .send(new DescribeStacksCommand({ StackName: 'CDKToolkit' }))
    .then((r) => r.Stacks?.[0]?.StackStatus === 'CREATE_COMPLETE')
    .catch(() => false);
  if (!bootstrapped) {
    await cfn.send(
      new CreateStackCommand({
        StackName: 'CDKToolkit',
        TemplateBody: JSON.stringify({
          Resources: {
            CdkBootstrapVersion: {
              Type: 'AWS::SSM::Parameter',
              Properties: {
                Type: 'String',
                Name: '/cdk-bootstrap/hnb659fds/version',
                Value: String(MIN_BOOTSTRAP_VERSION + 15),
              },
            },
          },
          Outputs: { BootstrapVersion: { Value: String(MIN_BOOTSTRAP_VERSION + 15) } },
        }),
      }),
    );
  }
  cfn.destroy();
  const ec2 = new EC2Client(aws);
  const vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.42.0.0/16' }))).Vpc!.VpcId!;
  const subnets: string[] = [];
  for (const [i, az] of [`${REGION}a`, `${REGION}b`].entries()) {
    const s = await ec2.send(
      new CreateSubnetCommand({ VpcId: vpc, CidrBlock: `10.42.${i}.0/24`, AvailabilityZone: az }),
    );
    subnets.push(s.Subnet!.SubnetId!);
  }
  ec2.destroy();

  // Topics as an operator creates them (they are never created by the cloud stage).
  const prefix = uniqueStage('doctor');
  topic = `${prefix}.rows`;
  smallTopic = `${prefix}.small`;
  kafka = new Kafka({ clientId: 'doctor-test', brokers: [brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic, numPartitions: 1 },
      { topic: smallTopic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '1000' }] },
    ],
  });
  await admin.disconnect();

  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_REGION: REGION,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    ROWSTREAM_VPC_ID: vpc,
    ROWSTREAM_PRIVATE_SUBNET_IDS: subnets.join(','),
    ROWSTREAM_AVAILABILITY_ZONES: `${REGION}a,${REGION}b`,
    ROWSTREAM_KAFKA_AUTH: 'none',
    ROWSTREAM_KAFKA_BROKERS: brokers,
    ROWSTREAM_DEFAULT_TOPIC: topic,
  };
});

afterAll(async () => {
  const admin = kafka?.admin();
  if (!admin) return;
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, smallTopic] }).catch(() => {});
  await admin.disconnect();
});

describe('rowstream doctor against the local stack', () => {
  it('passes every check of a healthy stage, and the command says "ready to deploy." with exit 0', async () => {
    // Prepare: done in beforeAll (bootstrap, VPC, subnets, topic)
    const stage = uniqueStage('dr');
    // Act
    const results = await doctor(stage);
    const cli = await runCli(['doctor', '--stage', stage], env, 120_000);
    // Assess
    expect(results.map((r) => `${r.state} ${r.name}`)).toEqual([
      'ok settings',
      'ok region',
      'ok credentials',
      'ok bootstrap',
      'ok network',
      'ok kafka',
      'ok topics',
      'ok max.message.bytes',
    ]);
    const r = byName(results);
    expect(r.credentials!.detail).toMatch(/account 123456789012/);
    expect(r.bootstrap!.detail).toBe(`CDKToolkit version ${MIN_BOOTSTRAP_VERSION + 15} in ${REGION}`);
    expect(r.network!.detail).toBe(
      `${env.ROWSTREAM_VPC_ID}, subnets ${(env.ROWSTREAM_PRIVATE_SUBNET_IDS ?? '').replace(',', ', ')}`,
    );
    expect(r.kafka!.detail).toBe(`1 broker(s) answer at ${brokers} (none)`);
    expect(r.topics!.detail).toBe(topic);
    expect(cli.code, `${cli.stdout}\n${cli.stderr}`).toBe(0);
    expect(cli.stdout).toContain(`ok    topics: ${topic}`);
    expect(cli.stdout.trimEnd().split('\n').at(-1)).toBe('ready to deploy.');
  });

  it('names a topic that does not exist, and exits 1', async () => {
    // Prepare: the allow-list names a topic nobody created
    const stage = uniqueStage('dr');
    const missing = `${topic}.missing`;
    const overrides = { ROWSTREAM_ALLOWED_TOPICS: missing };
    // Act
    const results = await doctor(stage, overrides);
    const cli = await runCli(['doctor', '--stage', stage], { ...env, ...overrides }, 120_000);
    // Assess
    const r = byName(results);
    expect(r.kafka!.state).toBe('ok');
    expect(r.topics).toEqual({
      name: 'topics',
      state: 'fail',
      detail: `missing: ${missing} (topics are not created in the cloud: create them, min.insync.replicas >= 2)`,
    });
    expect(r['max.message.bytes']!.state).toBe('ok'); // the default topic exists and is large enough
    expect(cli.code, `${cli.stdout}\n${cli.stderr}`).toBe(1);
    expect(cli.stdout).toContain(`FAIL  topics: missing: ${missing}`);
    expect(cli.stdout).toContain('1 problem(s): fix them before deploying.');
  });

  it('names a topic too small for the largest record the producer writes', async () => {
    const results = await doctor(uniqueStage('dr'), { ROWSTREAM_ALLOWED_TOPICS: smallTopic });
    const r = byName(results);
    expect(r.topics!.state).toBe('ok');
    expect(r['max.message.bytes']!.state).toBe('fail');
    expect(r['max.message.bytes']!.detail).toBe(
      `${smallTopic} takes 1000 bytes, the producer writes up to 1000000 (raise the topic's max.message.bytes or lower ROWSTREAM_PRODUCER_MAX_MESSAGE_BYTES)`,
    );
  });

  it('says when no broker answers, and checks no topic', async () => {
    // Prepare: a port nothing listens on
    const nowhere = `127.0.0.1:${await closedPort()}`;
    // Act
    const results = await doctor(uniqueStage('dr'), { ROWSTREAM_KAFKA_BROKERS: nowhere });
    // Assess
    const r = byName(results);
    expect(r.kafka!.state).toBe('fail');
    expect(r.kafka!.detail).toMatch(new RegExp(`^no broker answers at ${nowhere.replace(/\./g, '\\.')} \\(`));
    expect(r.kafka!.detail).toMatch(/ROWSTREAM_KAFKA_SECURITY_GROUP_ID/);
    expect(r.topics).toBeUndefined();
    expect(results.filter((x) => x.state === 'fail').map((x) => x.name)).toEqual(['kafka']);
  });

  it('says an account is not bootstrapped and the VPC is not there, with what to run', async () => {
    // Prepare: a region of the emulator with nothing in it
    const stage = uniqueStage('dr');
    // Act
    const results = await doctor(stage, { AWS_REGION: EMPTY_REGION });
    const lines: string[] = [];
    const ok = printDoctor(results, (l) => lines.push(l));
    // Assess
    const r = byName(results);
    expect(r.credentials!.state).toBe('ok');
    expect(r.bootstrap).toEqual({
      name: 'bootstrap',
      state: 'fail',
      detail: `the account is not bootstrapped in ${EMPTY_REGION} (no CDKToolkit stack): run \`npm run bootstrap -- --stage ${stage}\``,
    });
    expect(r.network!.state).toBe('fail');
    expect(r.network!.detail).toMatch(new RegExp(`^VPC ${env.ROWSTREAM_VPC_ID} / subnets: `));
    expect(ok).toBe(false);
    expect(lines.at(-1)).toBe('2 problem(s): fix them before deploying.');
  });
});
