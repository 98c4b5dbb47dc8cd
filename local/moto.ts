import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeLogGroupsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListEventBusesCommand } from '@aws-sdk/client-eventbridge';
import { ListBucketsCommand } from '@aws-sdk/client-s3';
import { ListTopicsCommand } from '@aws-sdk/client-sns';
import { ListQueuesCommand } from '@aws-sdk/client-sqs';
import { destroyClients, localClients } from './clients.ts';
import type { LocalPaths, LocalPorts } from './config.ts';
import { InstallError, MissingToolError, NotReadyError } from './errors.ts';
import { runLogged, spawnDetached } from './processes.ts';

/** What identifies our launcher among running processes (its command line contains it). */
export const MOTO_PROCESS_MARKER = 'local/moto/launcher.py';

/** The fixes local/moto/launcher.py applies; readiness requires all of them. */
export const MOTO_FIXES = [
  'events-thread-safety',
  'sns-target',
  'rule-matching',
  'put-events-speed',
  'sqs-send-speed',
  's3-notification-version',
  'target-payload',
  'replay-window',
  'alarm-state-change',
  'sqs-queue-stats',
] as const;

function fingerprint(paths: LocalPaths): string {
  const hash = createHash('sha256');
  hash.update(readFileSync(paths.moto.requirements));
  hash.update(readFileSync(paths.moto.constraints));
  return hash.digest('hex');
}

interface Marker {
  readonly fingerprint: string;
  readonly moto: string;
  readonly installedAt: string;
}

function readMarker(file: string): Marker | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Marker;
  } catch {
    return null;
  }
}

/**
 * Creates .local/venv and installs the pinned moto[server] into it, once: a marker holding the
 * hash of requirements.txt + constraints.txt makes the next call a no-op without any download.
 */
export async function installMoto(
  paths: LocalPaths,
  log: (line: string) => void,
): Promise<'cached' | 'installed'> {
  const want = fingerprint(paths);
  const marker = readMarker(paths.moto.marker);
  if (marker?.fingerprint === want && existsSync(paths.moto.python)) {
    log(`moto ${marker.moto}: cached in ${paths.moto.venv} (installed ${marker.installedAt})`);
    return 'cached';
  }
  const opts = { cwd: paths.root, logFile: paths.moto.installLog };
  if (!existsSync(paths.moto.python)) {
    try {
      const version = await runLogged('python3', ['--version'], opts);
      if (version.code !== 0) throw new Error(`exit ${version.code}`);
    } catch (error) {
      throw new MissingToolError(
        'python3',
        `install Python 3.9+ (Debian: apt-get install python3 python3-venv) — ${(error as Error).message}`,
      );
    }
    log(`moto: creating a Python venv in ${paths.moto.venv}`);
    const venv = await runLogged('python3', ['-m', 'venv', paths.moto.venv], opts);
    if (venv.code !== 0 || !existsSync(paths.moto.python)) {
      throw new MissingToolError(
        'python3 -m venv',
        `the venv module is missing (Debian: apt-get install python3-venv); see ${paths.moto.installLog}`,
      );
    }
  }
  log(`moto: pip install -r local/moto/requirements.txt (log: ${paths.moto.installLog})`);
  const pip = await runLogged(
    paths.moto.python,
    [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      '-r',
      paths.moto.requirements,
      '-c',
      paths.moto.constraints,
    ],
    opts,
  );
  if (pip.code !== 0) throw new InstallError('moto', paths.moto.installLog, `pip exited with ${pip.code}`);
  const check = await runLogged(
    paths.moto.python,
    ['-c', 'import moto, moto.server; print(moto.__version__)'],
    opts,
  );
  const version = check.stdout.trim();
  if (check.code !== 0 || !version)
    throw new InstallError('moto', paths.moto.installLog, 'moto does not import');
  writeFileSync(
    paths.moto.marker,
    `${JSON.stringify({ fingerprint: want, moto: version, installedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  log(`moto ${version}: installed in ${paths.moto.venv}`);
  return 'installed';
}

/** Starts the launcher detached; returns its pid. */
export function startMoto(paths: LocalPaths, ports: LocalPorts): number {
  return spawnDetached(
    paths.moto.python,
    ['-u', paths.moto.launcher, '--host', '127.0.0.1', '--port', String(ports.moto)],
    { cwd: paths.root, logFile: paths.moto.log, env: { ...process.env, PYTHONUNBUFFERED: '1' } },
  );
}

export interface MotoFixesReport {
  readonly moto: string;
  readonly fixes: Record<string, string>;
}

/** The launcher's own endpoint: which moto and which fixes are live. */
export async function motoFixes(endpoint: string, timeoutMs = 2000): Promise<MotoFixesReport> {
  const response = await fetch(new URL('/moto-api/rowstream/fixes', endpoint), {
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) throw new Error(`GET /moto-api/rowstream/fixes answered HTTP ${response.status}`);
  return (await response.json()) as MotoFixesReport;
}

/**
 * One cheap call per service rowstream uses. Resolves when every one answers, rejects naming the
 * services that did not, and rejects when the server on the port is not our launcher with all fixes.
 */
export async function probeMoto(endpoint: string): Promise<void> {
  const report = await motoFixes(endpoint).catch((error: unknown) => {
    throw new Error(`the rowstream launcher does not answer on ${endpoint}: ${(error as Error).message}`);
  });
  const missing = MOTO_FIXES.filter((f) => !(f in report.fixes));
  if (missing.length > 0) throw new Error(`moto on ${endpoint} runs without the fixes ${missing.join(', ')}`);

  const clients = localClients({ endpoint, maxAttempts: 1, requestTimeoutMs: 5000 });
  try {
    const probes: Record<string, () => Promise<unknown>> = {
      S3: () => clients.s3.send(new ListBucketsCommand({})),
      SQS: () => clients.sqs.send(new ListQueuesCommand({})),
      SNS: () => clients.sns.send(new ListTopicsCommand({})),
      DynamoDB: () => clients.dynamodb.send(new ListTablesCommand({})),
      EventBridge: () => clients.events.send(new ListEventBusesCommand({})),
      CloudWatch: () => clients.cloudwatch.send(new DescribeAlarmsCommand({ MaxRecords: 1 })),
      Logs: () => clients.logs.send(new DescribeLogGroupsCommand({ limit: 1 })),
    };
    const results = await Promise.allSettled(Object.values(probes).map((probe) => probe()));
    const failed = Object.keys(probes).filter((_name, i) => results[i]?.status === 'rejected');
    if (failed.length > 0) {
      const first = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
      throw new Error(
        `${failed.join(', ')} did not answer (${(first?.reason as Error | undefined)?.message ?? '?'})`,
      );
    }
  } finally {
    destroyClients(clients);
  }
}

export function motoNotReady(paths: LocalPaths, detail: string): NotReadyError {
  return new NotReadyError('moto', paths.moto.log, detail);
}
