import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNTIME_FILES } from '../../stacks/Pipeline.ts';
import { lambdaArtifacts, synthStage } from '../../stacks/synth.ts';
import { ROOT } from './sdk-calls.ts';
import { testSettings } from './synth.ts';

/**
 * SST's real build (`app.finish()`, as `sst deploy` runs it): every function artifact, as it would be
 * zipped and uploaded, must hold every file its bundle reads at run time, and be minified without a
 * source map. The dims-publisher once shipped without inventory/metrics.yaml and failed every run.
 */
const BUILD_TIMEOUT_MS = 600_000;
let out: string;
let artifacts: { dir: string; handler: string }[];
let assetManifests: readonly string[];

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'rowstream-build-'));
  const r = await synthStage({
    root: ROOT,
    stage: 'buildcheck',
    out,
    settings: testSettings({ producer: { ...testSettings().producer, image: null } }),
  });
  assetManifests = r.assetManifests;
  artifacts = lambdaArtifacts(out);
}, BUILD_TIMEOUT_MS);
afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

/** Files a bundle opens relative to itself: `new URL('<path>', import.meta.url)` with a literal path. */
function filesReadAtRunTime(bundle: string): string[] {
  const text = readFileSync(bundle, 'utf8');
  return [...text.matchAll(/new URL\(\s*(["'`])([^"'`]+)\1\s*,\s*import\.meta\.url\s*\)/g)]
    .map((m) => m[2]!)
    .filter((p) => p.startsWith('.'));
}

const filesUnder = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });

describe('the function artifacts sst deploy uploads', () => {
  it('builds one artifact per function', () => {
    const services = artifacts.map((a) => relative(a.dir, a.handler).split('/')[1]).sort();
    expect(services).toEqual(['alarm-router', 'cost-tracker', 'dims-publisher', 'planner']);
  });

  it('holds every file a bundle reads at run time, next to it where the code looks', () => {
    for (const a of artifacts) {
      for (const rel of filesReadAtRunTime(a.handler)) {
        const file = join(dirname(a.handler), rel);
        expect(existsSync(file), `${relative(out, a.handler)} reads ${rel}: missing from the artifact`).toBe(
          true,
        );
      }
    }
    const dims = artifacts.find((a) => a.handler.includes('dims-publisher'))!;
    expect(filesReadAtRunTime(dims.handler)).toContain('../../inventory/metrics.yaml');
    for (const f of RUNTIME_FILES['dims-publisher'] ?? [])
      expect(existsSync(join(dims.dir, f)), f).toBe(true);
  });

  it('ships minified bundles and no source maps', () => {
    for (const a of artifacts) {
      const files = filesUnder(a.dir);
      expect(
        files.filter((f) => f.endsWith('.map')),
        a.handler,
      ).toEqual([]);
      const size = statSync(a.handler).size;
      expect(size, `${relative(out, a.handler)}: ${size} bytes`).toBeLessThan(2_000_000);
      // Minified: few, long lines.
      const lines = readFileSync(a.handler, 'utf8').split('\n').length;
      expect(lines, relative(out, a.handler)).toBeLessThan(size / 200);
    }
  });

  it('builds the producer image for linux/amd64, the task platform', () => {
    const images = assetManifests.flatMap((f) =>
      Object.values(
        (JSON.parse(readFileSync(f, 'utf8')).dockerImages ?? {}) as Record<
          string,
          { source: { platform?: string } }
        >,
      ),
    );
    expect(images).toHaveLength(1);
    expect(images[0]!.source.platform).toBe('linux/amd64');
  });
});
