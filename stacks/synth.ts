import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { App } from 'sst/constructs';
import { initProject } from 'sst/project.js';
import { rowstreamApp } from './app.ts';
import { type DeploySettings, loadDeploySettings } from './settings.ts';
import { stageEnv, stageRegion } from './stage-env.ts';

/** The account offline synthesis names resources with when none is given (no AWS call is made). */
export const OFFLINE_ACCOUNT = '123456789012';

export interface SynthOptions {
  readonly root: string;
  readonly stage: string;
  /** Cloud assembly directory (templates, asset manifests, built function artifacts). */
  readonly out: string;
  /** Extra settings file read after the stage's `.env` files (e.g. stacks/example.env in CI). */
  readonly envFile?: string | undefined;
  readonly account?: string | undefined;
  /** Settings to use instead of reading them from the environment (tests). */
  readonly settings?: DeploySettings | undefined;
  readonly env?: NodeJS.ProcessEnv;
}

export interface SynthResult {
  readonly region: string;
  readonly account: string;
  /** Stack name -> template file. */
  readonly templates: Record<string, string>;
  /** Asset manifest files (one per stack). */
  readonly assetManifests: readonly string[];
}

/**
 * Synthesizes a stage exactly as `sst deploy` does (the same app, SST's own function builds through
 * `app.finish()`), writing CloudFormation templates, asset manifests and the built function artifacts
 * to `out`, without any AWS call. SST's only AWS call on this path (its bootstrap lookup, used for
 * uploading source maps) is skipped the way SST skips it in its own tests; rowstream ships no source maps.
 */
export async function synthStage(o: SynthOptions): Promise<SynthResult> {
  const env = stageEnv(o.root, o.stage, o.env ?? process.env);
  if (o.envFile) Object.assign(env, parseEnv(readFileSync(resolve(o.envFile), 'utf8')));
  const settings = o.settings ?? loadDeploySettings(env);
  const region = env.AWS_REGION || stageRegion(o.root, o.stage, env);
  const account = o.account ?? OFFLINE_ACCOUNT;
  process.env.NODE_ENV = 'test';
  const cwd = process.cwd();
  process.chdir(o.root);
  try {
    await initProject({ stage: o.stage, root: o.root, region });
    rmSync(o.out, { recursive: true, force: true });
    const app = new App(
      { mode: 'deploy', stage: o.stage, name: 'rowstream', region, account },
      { outdir: resolve(cwd, o.out) },
    );
    rowstreamApp(app, settings);
    await app.finish();
    const assembly = app.synth();
    const templates: Record<string, string> = {};
    for (const st of assembly.stacks) templates[st.stackName] = join(assembly.directory, st.templateFile);
    const assetManifests = readdirSync(assembly.directory)
      .filter((f) => f.endsWith('.assets.json'))
      .map((f) => join(assembly.directory, f));
    return { region, account, templates, assetManifests };
  } finally {
    process.chdir(cwd);
  }
}

/** Built function artifacts of a synthesized assembly: asset directories holding a handler bundle. */
export function lambdaArtifacts(out: string): { dir: string; handler: string }[] {
  const found: { dir: string; handler: string }[] = [];
  for (const d of readdirSync(out)) {
    const dir = join(out, d);
    if (!d.startsWith('asset.') || !statSync(dir).isDirectory()) continue;
    const handler = join(dir, 'services');
    if (!existsSync(handler)) continue;
    for (const svc of readdirSync(handler)) {
      const file = join(handler, svc, 'handler.mjs');
      if (existsSync(file)) found.push({ dir, handler: file });
    }
  }
  return found;
}
