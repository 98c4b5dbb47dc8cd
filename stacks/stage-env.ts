import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';

/** The files SST loads for a stage, in SST's order (a later file wins, and files win over the shell). */
export function stageEnvFiles(root: string, stage: string): string[] {
  return ['.env', '.env.local', `.env.${stage}`, `.env.${stage}.local`].map((f) => join(root, f));
}

/**
 * A stage's environment as the stacks will see it: the shell's, overridden by the stage's files. SST
 * loads these files only after it has called `config()`, so whatever `config()` needs from them (the
 * region) must be read here; `npm run synth` and `npm run deploy` use the same.
 */
export function stageEnv(
  root: string,
  stage: string,
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  const merged: NodeJS.ProcessEnv = { ...env };
  for (const file of stageEnvFiles(root, stage)) {
    if (existsSync(file)) Object.assign(merged, parseEnv(readFileSync(file, 'utf8')));
  }
  return merged;
}

/** The stage's region: AWS_REGION from its files or the shell, else AWS_DEFAULT_REGION, else us-east-1. */
export function stageRegion(
  root: string,
  stage: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const e = stage ? stageEnv(root, stage, env) : env;
  return e.AWS_REGION || e.AWS_DEFAULT_REGION || 'us-east-1';
}
