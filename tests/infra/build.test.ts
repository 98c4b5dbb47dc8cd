// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation templates are untyped JSON, walked by shape.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNBOOK_PATH, RUNBOOKS_KEY } from '../../monitoring/alarms.ts';
import { RUNTIME_FILES } from '../../stacks/Pipeline.ts';
import { lambdaArtifacts, synthStage } from '../../stacks/synth.ts';
import { testSettings } from '../../testkit/synth.ts';
import { ROOT } from './sdk-calls.ts';

/**
 * SST's real build (`app.finish()`, as `sst deploy` runs it): every function artifact, as it would be
 * zipped and uploaded, must hold every file its bundle reads at run time, and be minified without a
 * source map. The dims-publisher once shipped without inventory/metrics.yaml and failed every run.
 */
const BUILD_TIMEOUT_MS = 600_000;
let out: string;
let artifacts: { dir: string; handler: string }[];
let assetManifests: readonly string[];
let templates: Record<string, string>;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'rowstream-build-'));
  const r = await synthStage({
    root: ROOT,
    stage: 'buildcheck',
    out,
    settings: testSettings({ producer: { ...testSettings().producer, image: null } }),
  });
  assetManifests = r.assetManifests;
  templates = r.templates;
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

describe('the runbooks shipped with the deployment', () => {
  const template = (stack: string): Record<string, any> =>
    JSON.parse(readFileSync(templates[`buildcheck-rowstream-${stack}`]!, 'utf8'));

  it('deploys docs/runbooks.md, as it is in this version, to the object every alarm links', () => {
    // Prepare: the Storage stack's bucket and its deployment of the runbooks
    const storage = template('Storage');
    const resources = Object.entries(storage.Resources) as [string, { Type: string; Properties: any }][];
    const [bucketId, bucket] = resources.find(([, r]) => r.Type === 'AWS::S3::Bucket')!;
    const deployments = resources.filter(([, r]) => r.Type === 'Custom::CDKBucketDeployment');
    expect(deployments).toHaveLength(1);
    const d = deployments[0]![1].Properties;
    // Act: the object it writes is prefix + the file name of the source asset
    expect(d.DestinationBucketName).toEqual({ Ref: bucketId });
    const [assetKey] = d.SourceObjectKeys as string[];
    const asset = assetManifests
      .flatMap((f) => Object.entries(JSON.parse(readFileSync(f, 'utf8')).files ?? {}))
      .find(([hash]) => `${hash}.zip` === assetKey)?.[1] as { source: { path: string; packaging: string } };
    expect(asset.source.packaging).toBe('zip');
    const dir = join(out, asset.source.path);
    const deployed = readdirSync(dir).map((f) => `${d.DestinationBucketKeyPrefix}${f}`);
    // Assess: exactly runbooks/runbooks.md, with this checkout's text, pruned on each deploy
    expect(deployed).toEqual([RUNBOOKS_KEY]);
    expect(readFileSync(join(dir, RUNBOOKS_KEY.split('/').pop()!), 'utf8')).toBe(
      readFileSync(join(ROOT, RUNBOOK_PATH), 'utf8'),
    );
    expect(d.Prune).toBe(true);
    expect(d.SystemMetadata['content-type']).toMatch(/^text\/markdown/);
    expect(storage.Outputs.Runbooks.Value).toEqual({
      'Fn::Join': ['', ['s3://', { Ref: bucketId }, `/${RUNBOOKS_KEY}`]],
    });

    // Every alarm of the Monitoring stack links that object in that bucket, at a section it has.
    const anchors = new Set(
      [...readFileSync(join(ROOT, RUNBOOK_PATH), 'utf8').matchAll(/<a id="([^"]+)"><\/a>/g)].map((m) => m[1]),
    );
    const alarms = Object.values(template('Monitoring').Resources as Record<string, any>).filter(
      (r) => r.Type === 'AWS::CloudWatch::Alarm',
    );
    expect(alarms.length).toBeGreaterThan(10);
    for (const a of alarms) {
      const link = /Runbook: (\S+)$/.exec(a.Properties.AlarmDescription)?.[1];
      expect(link, a.Properties.AlarmName).toMatch(
        new RegExp(`^s3://${bucket.Properties.BucketName}/${RUNBOOKS_KEY}#`),
      );
      expect(anchors, link).toContain(link!.split('#')[1]);
    }
  });
});
