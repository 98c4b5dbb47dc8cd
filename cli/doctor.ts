import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DescribeSubnetsCommand, DescribeVpcsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import kafkajs, { Kafka, logLevel } from 'kafkajs';
import {
  type KafkaConnection,
  kafkaConnectionFrom,
  kafkajsConnectionOptions,
} from '../services/producer/adapters/kafka-connection.ts';
import { type DeploySettings, DeploySettingsError, loadDeploySettings } from '../stacks/settings.ts';
import { stageEnv } from '../stacks/stage-env.ts';

/**
 * `rowstream doctor --stage <stage>`: what a first deploy of a stage needs, checked before anything is
 * deployed, each problem said in plain words with what to do. `npm run deploy` runs it first.
 */

export type CheckState = 'ok' | 'fail' | 'skip';
export interface CheckResult {
  readonly name: string;
  readonly state: CheckState;
  readonly detail: string;
}

export interface DoctorOptions {
  readonly root: string;
  readonly stage: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Largest record the producer writes (its ROWSTREAM_PRODUCER_MAX_MESSAGE_BYTES): the topic must take it. */
  readonly maxMessageBytes?: number;
  readonly timeoutMs?: number;
}

/** The CDK bootstrap stack `sst deploy` needs (SST v2 deploys through CDK's bootstrap resources). */
export const BOOTSTRAP_STACK = 'CDKToolkit';
/** The bootstrap version aws-cdk-lib 2.x templates require at least. */
export const MIN_BOOTSTRAP_VERSION = 6;

export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  const env = stageEnv(o.root, o.stage, o.env ?? process.env);
  const results: CheckResult[] = [];
  const add = (name: string, state: CheckState, detail: string) => {
    results.push({ name, state, detail });
    return state;
  };

  let settings: DeploySettings | null = null;
  try {
    settings = loadDeploySettings(env);
    add('settings', 'ok', `.env.${o.stage} (and the shell) give a complete stage`);
  } catch (e) {
    add('settings', 'fail', e instanceof DeploySettingsError ? e.message : String(e));
  }

  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    add('region', 'fail', `no region: set AWS_REGION in .env.${o.stage}`);
    return results;
  }
  add('region', 'ok', region);
  const endpoint = env.AWS_ENDPOINT_URL || undefined;
  const client = { region, ...(endpoint ? { endpoint } : {}), maxAttempts: 2 };
  const withEnv = <T>(fn: () => Promise<T>) => withCredentialEnv(env, fn);

  // Credentials: one call that any principal may make.
  try {
    const sts = new STSClient(client);
    const id = await withEnv(() => sts.send(new GetCallerIdentityCommand({})));
    sts.destroy();
    add('credentials', 'ok', `${id.Arn} (account ${id.Account})`);
  } catch (e) {
    add('credentials', 'fail', credentialsProblem(e));
    return results; // nothing else can be checked without credentials
  }

  // CDK bootstrap.
  try {
    const cfn = new CloudFormationClient(client);
    const out = await withEnv(() => cfn.send(new DescribeStacksCommand({ StackName: BOOTSTRAP_STACK })));
    cfn.destroy();
    const st = out.Stacks?.[0];
    const version = Number(st?.Outputs?.find((x) => x.OutputKey === 'BootstrapVersion')?.OutputValue ?? 0);
    if (!st || !/_COMPLETE$/.test(st.StackStatus ?? '') || /ROLLBACK|DELETE/.test(st.StackStatus ?? '')) {
      add(
        'bootstrap',
        'fail',
        `${BOOTSTRAP_STACK} is ${st?.StackStatus ?? 'missing'}: run \`npm run bootstrap -- --stage ${o.stage}\``,
      );
    } else if (version < MIN_BOOTSTRAP_VERSION) {
      add(
        'bootstrap',
        'fail',
        `${BOOTSTRAP_STACK} is version ${version || 'unknown'}, at least ${MIN_BOOTSTRAP_VERSION} is needed: run \`npm run bootstrap -- --stage ${o.stage}\``,
      );
    } else add('bootstrap', 'ok', `${BOOTSTRAP_STACK} version ${version} in ${region}`);
  } catch (e) {
    const msg = (e as Error).message;
    add(
      'bootstrap',
      'fail',
      /does not exist/i.test(msg)
        ? `the account is not bootstrapped in ${region} (no ${BOOTSTRAP_STACK} stack): run \`npm run bootstrap -- --stage ${o.stage}\``
        : `cannot read the ${BOOTSTRAP_STACK} stack: ${msg}`,
    );
  }

  if (!settings) {
    add('network', 'skip', 'needs valid settings');
    add('kafka', 'skip', 'needs valid settings');
    return results;
  }

  // VPC and subnets.
  try {
    const ec2 = new EC2Client(client);
    const vpcs = await withEnv(() => ec2.send(new DescribeVpcsCommand({ VpcIds: [settings.vpc.vpcId] })));
    if (!vpcs.Vpcs?.length) throw new Error(`${settings.vpc.vpcId} not found`);
    const subnets = await withEnv(() =>
      ec2.send(new DescribeSubnetsCommand({ SubnetIds: [...settings.vpc.subnetIds] })),
    );
    ec2.destroy();
    const problems: string[] = [];
    settings.vpc.subnetIds.forEach((id, i) => {
      const s = subnets.Subnets?.find((x) => x.SubnetId === id);
      if (!s) problems.push(`${id} not found`);
      else if (s.VpcId !== settings.vpc.vpcId)
        problems.push(`${id} is in ${s.VpcId}, not ${settings.vpc.vpcId}`);
      else if (s.AvailabilityZone !== settings.vpc.azs[i])
        problems.push(
          `${id} is in ${s.AvailabilityZone}, ROWSTREAM_AVAILABILITY_ZONES says ${settings.vpc.azs[i]}`,
        );
      else if (s.MapPublicIpOnLaunch) problems.push(`${id} gives public IPs: is it really private?`);
    });
    if (problems.length) add('network', 'fail', problems.join('; '));
    else add('network', 'ok', `${settings.vpc.vpcId}, subnets ${settings.vpc.subnetIds.join(', ')}`);
  } catch (e) {
    add('network', 'fail', `VPC ${settings.vpc.vpcId} / subnets: ${notFound(e)}`);
  }

  // Kafka: reachable, authenticated, topics exist, and take the producer's largest record.
  if (!settings.kafka.brokers) {
    add(
      'kafka',
      'skip',
      'the brokers are in the Kafka secret: check them from inside the VPC (`rowstream topic read`)',
    );
    return results;
  }
  const connection: KafkaConnection = kafkaConnectionFrom(
    {
      KAFKA_BROKERS: settings.kafka.brokers,
      KAFKA_SSL: settings.kafka.auth === 'none' ? 'false' : 'true',
      KAFKA_SASL_MECHANISM:
        settings.kafka.auth === 'msk-iam'
          ? 'aws-msk-iam'
          : settings.kafka.auth === 'scram'
            ? 'scram-sha-512'
            : undefined,
      KAFKA_USERNAME: env.KAFKA_USERNAME,
      KAFKA_PASSWORD: env.KAFKA_PASSWORD,
    } as Parameters<typeof kafkaConnectionFrom>[0],
    region,
  );
  if (settings.kafka.auth === 'scram' && !env.KAFKA_USERNAME) {
    add(
      'kafka',
      'skip',
      'SCRAM credentials are in the secret: export KAFKA_USERNAME and KAFKA_PASSWORD to check the cluster',
    );
    return results;
  }
  const kafka = new Kafka({
    clientId: `rowstream-doctor-${o.stage}`,
    ...kafkajsConnectionOptions(connection),
    logLevel: logLevel.NOTHING,
    connectionTimeout: o.timeoutMs ?? 5_000,
    requestTimeout: o.timeoutMs ?? 10_000,
    retry: { retries: 1 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    add(
      'kafka',
      'ok',
      `${cluster.brokers.length} broker(s) answer at ${settings.kafka.brokers} (${settings.kafka.auth})`,
    );
    const existing = new Set(await admin.listTopics());
    const missing = settings.kafka.allowedTopics.filter((t) => !existing.has(t));
    const present = settings.kafka.allowedTopics.filter((t) => existing.has(t));
    if (missing.length)
      add(
        'topics',
        'fail',
        `missing: ${missing.join(', ')} (topics are not created in the cloud: create them, min.insync.replicas >= 2)`,
      );
    else add('topics', 'ok', settings.kafka.allowedTopics.join(', '));
    if (present.length) {
      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: present.map((name) => ({
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name,
          configNames: ['max.message.bytes'],
        })),
      });
      const need = o.maxMessageBytes ?? 1_000_000;
      const small = configs.resources
        .map((r) => ({
          name: r.resourceName,
          bytes: Number(r.configEntries.find((c) => c.configName === 'max.message.bytes')?.configValue),
        }))
        .filter((r) => !(r.bytes >= need));
      if (small.length)
        add(
          'max.message.bytes',
          'fail',
          small.map((r) => `${r.name} takes ${r.bytes} bytes, the producer writes up to ${need}`).join('; ') +
            " (raise the topic's max.message.bytes or lower ROWSTREAM_PRODUCER_MAX_MESSAGE_BYTES)",
        );
      else add('max.message.bytes', 'ok', `every topic takes records of ${need} bytes`);
    }
  } catch (e) {
    add('kafka', 'fail', kafkaProblem(e, settings));
  } finally {
    await admin.disconnect().catch(() => {});
  }
  return results;
}

/** Runs `fn` with the stage's credential variables in process.env (the SDK's default chain reads it). */
async function withCredentialEnv<T>(env: NodeJS.ProcessEnv, fn: () => Promise<T>): Promise<T> {
  const keys = [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_PROFILE',
    'AWS_CONFIG_FILE',
    'AWS_SHARED_CREDENTIALS_FILE',
    'AWS_EC2_METADATA_DISABLED',
  ];
  const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  for (const k of keys) {
    if (env[k] === undefined) delete process.env[k];
    else process.env[k] = env[k];
  }
  try {
    return await fn();
  } finally {
    for (const k of keys) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  }
}

export function credentialsProblem(e: unknown): string {
  const err = e as Error & { name?: string };
  if (err.name === 'CredentialsProviderError' || /Could not load credentials|credential/i.test(err.message))
    return 'no AWS credentials found: run `aws configure` or `aws sso login`, or export AWS_PROFILE / AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';
  if (
    /InvalidClientTokenId|SignatureDoesNotMatch|ExpiredToken/.test(err.name ?? '') ||
    /expired|invalid/i.test(err.message)
  )
    return `the AWS credentials are refused (${err.name}: ${err.message}): renew them`;
  return `cannot reach AWS STS (${err.name}: ${err.message})`;
}

function notFound(e: unknown): string {
  const err = e as Error & { name?: string };
  return /NotFound|does not exist/i.test(`${err.name} ${err.message}`)
    ? `not found (${err.message})`
    : err.message;
}

function kafkaProblem(e: unknown, s: DeploySettings): string {
  const err = e as Error & { name?: string; type?: string };
  const text = `${err.name ?? ''} ${err.type ?? ''} ${err.message}`;
  if (/SASL|authenticat|Authorization/i.test(text))
    return `the brokers refused the ${s.kafka.auth} login (${err.message}): check the credentials or the MSK IAM policy`;
  return (
    `no broker answers at ${s.kafka.brokers} (${err.message}). From here that may only mean this machine is outside the VPC; ` +
    "from inside, check the brokers' security group admits the producer's (ROWSTREAM_KAFKA_SECURITY_GROUP_ID)"
  );
}

/** One line per check; true when nothing failed. */
export function printDoctor(results: readonly CheckResult[], write: (line: string) => void): boolean {
  const mark = { ok: 'ok  ', fail: 'FAIL', skip: 'skip' } as const;
  for (const r of results) write(`${mark[r.state]}  ${r.name}: ${r.detail}`);
  const failed = results.filter((r) => r.state === 'fail');
  write(failed.length ? `${failed.length} problem(s): fix them before deploying.` : 'ready to deploy.');
  return failed.length === 0;
}
