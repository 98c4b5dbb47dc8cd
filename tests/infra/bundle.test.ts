import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './sdk-calls.ts';

/**
 * `sst deploy` bundles each function with SST's own esbuild (0.18, not the repo's) and these options
 * (sst/runtime/handlers/node.js, ESM). `sst build` cannot run here (it asks STS for the account first),
 * so this test does the same bundling offline and imports the result: a handler that does not bundle
 * or does not export `handler` fails here, not in the deploy.
 */
type EsbuildLike = {
  build(options: Record<string, unknown>): Promise<{ errors: unknown[]; warnings: unknown[] }>;
};
const requireFromSst = createRequire(createRequire(import.meta.url).resolve('sst/package.json'));
const esbuild = requireFromSst('esbuild') as EsbuildLike;

const LAMBDA_SERVICES = ['planner', 'alarm-router', 'cost-tracker', 'dims-publisher'] as const;
const out = mkdtempSync(join(tmpdir(), 'rowstream-bundle-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('Lambda bundles, as sst deploy builds them', () => {
  // Not filtered by what exists: a handler that is renamed or moved must fail here, not be skipped.
  it('finds every Lambda handler the stacks deploy (services/<name>/handler.ts)', () => {
    const missing = LAMBDA_SERVICES.filter((s) => !existsSync(join(ROOT, 'services', s, 'handler.ts')));
    expect(missing).toEqual([]);
  });

  it.each(LAMBDA_SERVICES)('%s bundles as ESM and exports handler()', async (service) => {
    // Prepare / Act
    const outfile = join(out, `${service}.mjs`);
    const result = await esbuild.build({
      entryPoints: [join(ROOT, 'services', service, 'handler.ts')],
      platform: 'node',
      bundle: true,
      keepNames: true,
      logLevel: 'silent',
      format: 'esm',
      target: 'esnext',
      mainFields: ['module', 'main'],
      external: ['sharp', 'pg-native'],
      banner: {
        js: [
          `import { createRequire as topLevelCreateRequire } from 'module';`,
          'const require = topLevelCreateRequire(import.meta.url);',
          `import { fileURLToPath as topLevelFileUrlToPath, URL as topLevelURL } from "url"`,
          'const __dirname = topLevelFileUrlToPath(new topLevelURL(".", import.meta.url))',
        ].join('\n'),
      },
      outfile,
    });
    // Assess
    expect(result.errors).toEqual([]);
    const mod = (await import(pathToFileURL(outfile).href)) as { handler?: unknown };
    expect(typeof mod.handler).toBe('function');
  });
});
