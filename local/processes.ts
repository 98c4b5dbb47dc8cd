import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** True when something accepts a TCP connection on host:port within `timeoutMs`. */
export function portAnswers(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function readPid(pidFile: string): number | null {
  if (!existsSync(pidFile)) return null;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : null;
}

export function writePid(pidFile: string, pid: number): void {
  mkdirSync(dirname(pidFile), { recursive: true });
  writeFileSync(pidFile, `${pid}\n`);
}

export function removePid(pidFile: string): void {
  rmSync(pidFile, { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether `pid` is alive and still the process we started (its command line contains `marker`),
 * so a pid recycled by the OS after a reboot is not mistaken for ours. Without /proc (macOS) only
 * liveness can be checked.
 */
export function isOurs(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  const cmdlineFile = `/proc/${pid}/cmdline`;
  if (!existsSync('/proc/self/cmdline')) return true;
  try {
    return readFileSync(cmdlineFile, 'utf8').split('\0').join(' ').includes(marker);
  } catch {
    return false;
  }
}

/**
 * Starts a long-running process in its own process group, detached from ours, with stdout and
 * stderr appended to `logFile`: it survives the `tsx` parent exiting and is stopped as a group.
 */
export function spawnDetached(
  command: string,
  args: readonly string[],
  opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv },
): number {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
    });
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/**
 * SIGTERM to the process group, then SIGKILL once `graceMs` has passed. Resolves with how it
 * ended. Only ever called with a pid read from our own pid file and checked by {@link isOurs}.
 */
export async function stopProcess(pid: number, graceMs: number): Promise<'terminated' | 'killed' | 'gone'> {
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  };
  if (!isAlive(pid)) return 'gone';
  signalGroup('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return 'terminated';
    await sleep(200);
  }
  signalGroup('SIGKILL');
  for (let i = 0; i < 25 && isAlive(pid); i++) await sleep(200);
  return 'killed';
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
}

/**
 * Runs a command to completion, its output appended to `logFile` (stdout is also returned).
 * Rejects with ENOENT when the command does not exist.
 */
export function runLogged(
  command: string,
  args: readonly string[],
  opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv },
): Promise<RunResult> {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      stdio: ['ignore', 'pipe', fd],
      env: opts.env ?? process.env,
    });
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.once('error', (error) => {
      closeSync(fd);
      reject(error);
    });
    child.once('close', (code) => {
      try {
        writeFileSync(fd, stdout);
      } finally {
        closeSync(fd);
      }
      resolve({ code, stdout });
    });
  });
}

/** Polls `probe` until it returns true or `timeoutMs` passes; the last error is kept for the message. */
export async function waitUntil(
  probe: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; abort?: () => string | null },
): Promise<{ ok: true } | { ok: false; reason: string }> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    const aborted = opts.abort?.();
    if (aborted) return { ok: false, reason: aborted };
    try {
      if (await probe()) return { ok: true };
    } catch (error) {
      last = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    await sleep(opts.intervalMs ?? 250);
  }
  return { ok: false, reason: `no success within ${Math.round(opts.timeoutMs / 1000)} s (last: ${last})` };
}

/** The last lines of a log, to put in an error message. */
export function tailOf(file: string, lines = 15): string {
  if (!existsSync(file)) return '(log is empty)';
  const text = readFileSync(file, 'utf8').trimEnd().split('\n');
  return text.slice(-lines).join('\n');
}
