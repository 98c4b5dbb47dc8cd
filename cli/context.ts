import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { portAnswers } from '../local/processes.ts';
import { type AwsClients, awsClients } from '../services/shared/aws.ts';
import { resourceNames, type StackOutputs } from '../topology/topology.ts';

/** The repository root (cli/ sits right under it). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));

/** The options every command takes (`--stage`, `--stack-file`, `--state-dir`). */
export interface GlobalOptions {
  readonly stage?: string;
  readonly stackFile?: string;
  readonly stateDir?: string;
}

/** Base class of every CLI failure; `exitCode` is what the process ends with. */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  readonly exitCode: number = 1;
}

/** Wrong arguments or options. */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
}

/** The environment is not ready (stack down, services not running, no credentials). */
export class EnvironmentError extends CliError {
  override readonly name = 'EnvironmentError';
}

/** Where the CLI keeps local state: logs, pid files, EMF metrics files (all under .local/ by default). */
export function stateDirFrom(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.ROWSTREAM_STATE_DIR || join(REPO_ROOT, '.local'));
}

export function defaultStackFile(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.ROWSTREAM_STACK_FILE || join(REPO_ROOT, '.local', 'stack.json'));
}

/** What the CLI needs to know about a stage, local or in AWS. */
export interface Target {
  readonly stage: string;
  readonly region: string;
  /** The emulator endpoint; null in AWS. */
  readonly endpoint: string | null;
  readonly bucket: string;
  readonly jobsTable: string;
  readonly busName: string;
  readonly archiveName: string;
  readonly brokers: readonly string[];
  /** The full outputs when the stage came from a stack file (local). */
  readonly outputs: StackOutputs | null;
}

export interface TargetOptions {
  readonly stage?: string | undefined;
  readonly stackFile?: string | undefined;
}

export function readStackFile(file: string): StackOutputs {
  if (!existsSync(file)) {
    throw new EnvironmentError(
      `no local stack found (${file} does not exist). Start it with \`rowstream local up\` (or \`npm run local:up\`).`,
    );
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as StackOutputs;
  } catch (error) {
    throw new EnvironmentError(
      `${file} is not valid JSON (${(error as Error).message}); run \`rowstream local up\` again.`,
    );
  }
}

export function targetFromOutputs(outputs: StackOutputs): Target {
  return {
    stage: outputs.stage,
    region: outputs.region,
    endpoint: outputs.endpoint,
    bucket: outputs.bucket,
    jobsTable: outputs.tables.jobs,
    busName: outputs.busName,
    archiveName: outputs.archiveName,
    brokers: outputs.kafka.brokers,
    outputs,
  };
}

/**
 * The local stage comes from the stack file the local stack wrote (or `--stack-file`); any other stage is
 * AWS: names from the topology, region and credentials from the usual AWS environment.
 */
export function resolveTarget(opts: TargetOptions, env: NodeJS.ProcessEnv = process.env): Target {
  const stage = opts.stage ?? env.ROWSTREAM_STAGE ?? 'local';
  if (opts.stackFile || stage === 'local') {
    const outputs = readStackFile(resolve(opts.stackFile ?? defaultStackFile(env)));
    return targetFromOutputs(outputs);
  }
  const names = resourceNames(stage);
  return {
    stage,
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: null,
    // The deployed bucket's name carries account and region (the Storage stack's output `Bucket`).
    bucket: env.ROWSTREAM_BUCKET ?? names.bucket,
    jobsTable: names.tables.jobs,
    busName: names.busName,
    archiveName: names.archiveName,
    brokers: (env.KAFKA_BROKERS ?? '').split(',').filter(Boolean),
    outputs: null,
  };
}

/** Fails with the command to run when the emulator of a local target does not answer. */
export async function assertReachable(target: Target): Promise<void> {
  if (!target.endpoint) return;
  const url = new URL(target.endpoint);
  const port = Number(url.port || 80);
  if (!(await portAnswers(port, url.hostname, 1500))) {
    throw new EnvironmentError(
      `the local stack is not running (nothing answers on ${target.endpoint}). Start it with \`rowstream local up\`.`,
    );
  }
}

export function clientsFor(target: Target): AwsClients {
  return awsClients({ region: target.region, endpoint: target.endpoint ?? undefined });
}
