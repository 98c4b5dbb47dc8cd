import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BIN = join(REPO_ROOT, 'bin', 'rowstream.mjs');

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A fresh stage of the running local stack with the rowstream services started for it, exactly as a
 * user would (`rowstream local up --services-only`), in a state dir of its own: the `local` stage and
 * its services, which other people use, are never touched.
 */
export async function cliStage(prefix: string) {
  const { outputs } = await freshStack(prefix);
  mkdirSync(join(REPO_ROOT, 'test-output'), { recursive: true });
  const dir = mkdtempSync(join(REPO_ROOT, 'test-output', `${prefix}-${outputs.stage}-`));
  const stackFile = join(dir, 'stack.json');
  writeFileSync(stackFile, JSON.stringify(outputs, null, 2));
  const stateDir = join(dir, 'state');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ROWSTREAM_STACK_FILE: stackFile,
    ROWSTREAM_STATE_DIR: stateDir,
    ROWSTREAM_SCHEDULE_SPEEDUP: '60',
  };
  delete env.ROWSTREAM_STAGE;
  const run = (args: readonly string[], timeoutMs = 240_000) => runCli(args, env, timeoutMs);
  return {
    outputs: outputs as StackOutputs,
    dir,
    stateDir,
    env,
    run,
    async up() {
      const r = await run(['local', 'up', '--services-only']);
      if (r.code !== 0) throw new Error(`local up failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
      return r;
    },
    async down() {
      return run(['local', 'down', '--services-only', '--grace', '10']);
    },
    /** The tail of every service log, for a failing test's message. */
    logs(lines = 20): string {
      const logs = join(stateDir, 'logs');
      if (!existsSync(logs)) return '(no logs)';
      return readdirSync(logs)
        .map(
          (f) =>
            `== ${f}\n${readFileSync(join(logs, f), 'utf8').trimEnd().split('\n').slice(-lines).join('\n')}`,
        )
        .join('\n');
    },
  };
}

/**
 * The CLI started as a user runs it, output collected as it comes: `output()` is what it printed so
 * far, `done` resolves with everything once it exits (for commands that run until stopped).
 */
export function spawnCli(args: readonly string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  const done = new Promise<CliRun>((resolvePromise, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolvePromise({ code, stdout, stderr }));
  });
  return { child, output: () => ({ stdout, stderr }), done };
}

export async function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  timeoutMs = 240_000,
): Promise<CliRun> {
  const { child, done } = spawnCli(args, env);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    return await done;
  } finally {
    clearTimeout(timer);
  }
}
