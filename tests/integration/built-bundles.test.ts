/**
 * The Lambda bundles SST builds for a deploy, run against the local stack: not the sources (what the
 * other integration tests import) but the artifacts that get zipped and uploaded, so a file the code
 * reads at run time and the build leaves out fails here. (The dims-publisher once shipped without
 * inventory/metrics.yaml and failed every run with ENOENT.)
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lambdaArtifacts, synthStage } from '../../stacks/synth.ts';
import { freshStack } from '../../testkit/stack.ts';
import { testSettings } from '../../testkit/synth.ts';
import type { StackOutputs } from '../../topology/topology.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let out: string;
let outputs: StackOutputs;
let env: Record<string, string>;

beforeAll(async () => {
  ({ outputs, env } = await freshStack('built'));
  out = mkdtempSync(join(tmpdir(), 'rowstream-built-'));
  await synthStage({ root: ROOT, stage: 'builtbundles', out, settings: testSettings() });
}, 600_000);
afterAll(() => {
  if (out) rmSync(out, { recursive: true, force: true });
});

describe('built Lambda bundles on the local stack', () => {
  it('the built dims-publisher runs a full inventory (reads its definition from the artifact)', async () => {
    // Prepare: the function's environment, pointed at the local stack; the handler reads it at load.
    const dims = lambdaArtifacts(out).find((a) => a.handler.includes('dims-publisher'));
    expect(dims, 'dims-publisher artifact').toBeDefined();
    const emf = join(out, 'dims.emf.jsonl');
    const saved = { ...process.env };
    Object.assign(process.env, env, { LOG_LEVEL: 'WARN', ROWSTREAM_METRICS_SINK: `file:${emf}` });
    delete process.env.ROWSTREAM_INVENTORY_FILE;
    try {
      const mod = (await import(pathToFileURL(dims!.handler).href)) as {
        handler: (e: { time: string }) => Promise<{ prefixes?: unknown } & Record<string, unknown>>;
      };
      // Act
      const summary = await mod.handler({ time: new Date().toISOString() });
      // Assess: it ran to the end against this stage's bucket and wrote its metrics
      expect(summary).toBeTypeOf('object');
      expect(JSON.stringify(summary)).toContain('inbound/');
      expect(readFileSync(emf, 'utf8')).toContain('InventoryObjects');
    } finally {
      process.env = saved;
    }
    expect(outputs.bucket).toBeTruthy();
  });
});
