import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildProducerSync, PRODUCER_NODE_FLAGS } from '../../scripts/build-producer.ts';
import type { StackOutputs } from '../../topology/topology.ts';
import { isOurs, readPid, removePid, spawnDetached, stopProcess, writePid } from '../processes.ts';
import {
  bundleDirPrefix,
  markerOf,
  REPO_ROOT,
  RUNNER_SERVICES,
  type RunnerPaths,
  type RunnerService,
  SERVICE_SPECS,
  type ServiceSpec,
  serviceEnv,
} from './services.ts';

export type PidState =
  | { readonly kind: 'none' }
  | { readonly kind: 'running'; readonly pid: number }
  /** A pid file whose process is gone or is someone else's (pid recycled): safe to replace. */
  | { readonly kind: 'stale'; readonly pid: number };

/** What a pid file says, checked against the process table. */
export function pidState(
  pidFile: string,
  marker: string,
  probe: (pid: number, marker: string) => boolean = isOurs,
): PidState {
  const pid = readPid(pidFile);
  if (pid === null) return { kind: 'none' };
  return probe(pid, marker) ? { kind: 'running', pid } : { kind: 'stale', pid };
}

export interface ServiceStatus {
  readonly name: RunnerService;
  readonly state: PidState['kind'];
  readonly pid: number | null;
  readonly log: string;
  readonly metrics: string;
}

export function serviceStatuses(paths: RunnerPaths): ServiceStatus[] {
  return RUNNER_SERVICES.map((name) => {
    const files = paths.of(name);
    const state = pidState(files.pid, markerOf(SERVICE_SPECS[name]));
    return {
      name,
      state: state.kind,
      pid: state.kind === 'none' ? null : state.pid,
      log: files.log,
      metrics: files.metrics,
    };
  });
}

/**
 * The node arguments of a service: its bundle with the image's flags (built here from its sources,
 * so a restart runs the current code), or tsx's ESM loader by absolute URL on its sources; both work
 * whatever the cwd.
 */
export function nodeArgs(spec: ServiceSpec, paths: RunnerPaths): string[] {
  if (spec.bundle) {
    // In the repo (its imports resolve node_modules from there), one per state dir (runners of two
    // state dirs never write one file at once).
    const dir = `${bundleDirPrefix(spec.bundle)}${createHash('sha256').update(paths.stateDir).digest('hex').slice(0, 12)}`;
    return [...PRODUCER_NODE_FLAGS, buildProducerSync(join(REPO_ROOT, dir, 'main.mjs')), ...spec.args];
  }
  return ['--import', import.meta.resolve('tsx'), join(REPO_ROOT, spec.entry), ...spec.args];
}

export interface StartResult {
  readonly name: RunnerService;
  readonly action: 'started' | 'already running' | 'missing';
  readonly pid: number | null;
  readonly detail?: string;
}

/**
 * Starts every service that is not running, detached, logs appended to .local/logs/<name>.log. Idempotent:
 * a running service is left alone, a stale pid file (crash, kill -9, reboot) is replaced, so `up` is also
 * the way to recover; a restarted producer resumes its job from the checkpoint.
 */
export function startServices(
  outputs: StackOutputs,
  paths: RunnerPaths,
  options: { names?: readonly RunnerService[]; env?: NodeJS.ProcessEnv } = {},
): StartResult[] {
  mkdirSync(paths.logs, { recursive: true });
  mkdirSync(paths.run, { recursive: true });
  mkdirSync(paths.metrics, { recursive: true });
  const results: StartResult[] = [];
  for (const name of options.names ?? RUNNER_SERVICES) {
    const spec = SERVICE_SPECS[name];
    const files = paths.of(name);
    const state = pidState(files.pid, markerOf(spec));
    if (state.kind === 'running') {
      results.push({ name, action: 'already running', pid: state.pid });
      continue;
    }
    if (!existsSync(join(REPO_ROOT, spec.entry))) {
      results.push({ name, action: 'missing', pid: null, detail: `${spec.entry} does not exist yet` });
      continue;
    }
    if (state.kind === 'stale') removePid(files.pid);
    const pid = spawnDetached(process.execPath, nodeArgs(spec, paths), {
      cwd: REPO_ROOT,
      logFile: files.log,
      env: serviceEnv(outputs, name, paths, options.env ?? process.env),
    });
    writePid(files.pid, pid);
    results.push({ name, action: 'started', pid });
  }
  return results;
}

export interface StopResult {
  readonly name: RunnerService;
  readonly result: 'terminated' | 'killed' | 'gone' | 'not running' | 'stale pid file removed';
}

/** SIGTERM each running service (its process group), SIGKILL after `graceMs`; pid files are removed. */
export async function stopServices(paths: RunnerPaths, graceMs = 15_000): Promise<StopResult[]> {
  return Promise.all(
    RUNNER_SERVICES.map(async (name): Promise<StopResult> => {
      const files = paths.of(name);
      const state = pidState(files.pid, markerOf(SERVICE_SPECS[name]));
      if (state.kind === 'none') return { name, result: 'not running' };
      if (state.kind === 'stale') {
        removePid(files.pid);
        return { name, result: 'stale pid file removed' };
      }
      const result = await stopProcess(state.pid, graceMs);
      removePid(files.pid);
      return { name, result };
    }),
  );
}

/**
 * Runs every service in the foreground, output prefixed with its name; resolves when all have exited.
 * The first SIGINT/SIGTERM stops them with SIGTERM, a second one (or the grace period) with SIGKILL.
 */
export async function runForeground(
  outputs: StackOutputs,
  paths: RunnerPaths,
  options: { names?: readonly RunnerService[]; env?: NodeJS.ProcessEnv; graceMs?: number } = {},
): Promise<number> {
  const names = (options.names ?? RUNNER_SERVICES).filter((n) => {
    const spec = SERVICE_SPECS[n];
    const state = pidState(paths.of(n).pid, markerOf(spec));
    if (state.kind === 'running') {
      console.error(
        `${n}: already running in the background (pid ${state.pid}); stop it with \`rowstream local down\``,
      );
      return false;
    }
    if (!existsSync(join(REPO_ROOT, spec.entry))) {
      console.error(`${n}: ${spec.entry} does not exist yet, skipped`);
      return false;
    }
    return true;
  });
  mkdirSync(paths.run, { recursive: true });
  mkdirSync(paths.metrics, { recursive: true });
  const children = names.map((name) => {
    const spec = SERVICE_SPECS[name];
    const child = spawn(process.execPath, nodeArgs(spec, paths), {
      cwd: REPO_ROOT,
      env: serviceEnv(outputs, name, paths, options.env ?? process.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (child.pid) writePid(paths.of(name).pid, child.pid);
    const prefix = `[${name}] `;
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        const lines = buf.split('\n');
        buf = lines.pop() ?? '';
        for (const line of lines) process.stdout.write(`${prefix}${line}\n`);
      });
    }
    const exited = new Promise<number>((resolve) =>
      child.once('exit', (code, signal) => {
        removePid(paths.of(name).pid);
        process.stdout.write(`${prefix}exited (${signal ?? code})\n`);
        resolve(code ?? 1);
      }),
    );
    return { name, child, exited };
  });
  let stopping = 0;
  const stop = () => {
    stopping++;
    const signal = stopping === 1 ? 'SIGTERM' : 'SIGKILL';
    for (const c of children) if (c.child.exitCode === null) c.child.kill(signal);
    if (stopping === 1) {
      setTimeout(() => {
        for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
      }, options.graceMs ?? 15_000).unref();
    }
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  const codes = await Promise.all(children.map((c) => c.exited));
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return stopping > 0 ? 0 : Math.max(0, ...codes);
}
