/**
 * The Lambda bundles SST builds for a deploy, run against the local stack: not the sources (what the
 * other integration tests import) but the artifacts that get zipped and uploaded, so a file the code
 * reads at run time and the build leaves out fails here. (The dims-publisher once shipped without
 * inventory/metrics.yaml and failed every run with ENOENT.) The producer's bundle, what its image
 * runs (`npm run build:producer`, stacks/producer.Dockerfile), runs a job to the end here too.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProducer } from '../../scripts/build-producer.ts';
import { awsClients } from '../../services/shared/aws.ts';
import { lambdaArtifacts, synthStage } from '../../stacks/synth.ts';
import { sendJobStarted, startProducer, uploadJob, waitForJob } from '../../testkit/producer.ts';
import { checkJobRows } from '../../testkit/producer-faults.ts';
import { ROWS_HEADER, rowLine } from '../../testkit/rows.ts';
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

describe("the built producer (the image's bundle) on the local stack", () => {
  it('starts from dist and streams a job to COMPLETED: every row once, in order, with its value', async () => {
    // Prepare: the bundle inside the repository (its npm imports resolve from node_modules, as in
    // the image), a 5,000-row object and the JobStarted the planner would send.
    const bundle = await buildProducer(join('.local', 'build', `producer-${outputs.stage}`, 'main.mjs'));
    const aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
    const rows = 5000;
    const csv = Buffer.from(
      `${ROWS_HEADER.join(',')}\n${Array.from({ length: rows }, (_, i) => `${rowLine(i + 1)}\n`).join('')}`,
    );
    const topic = `it-built-${outputs.stage}`;
    const job = await uploadJob(aws.s3, outputs.bucket, 'inbound/built.csv', csv, { topic, totalRows: rows });
    const producer = startProducer(
      { ...env, ROWSTREAM_PRODUCER_WAIT_SECONDS: '1', ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '1000' },
      join(ROOT, '.local', 'test-logs', `producer-built-${outputs.stage}.log`),
      { bundle },
    );
    try {
      await producer.waitForLog(/producer started/);
      // Act
      await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
        doc: aws.doc,
        table: outputs.tables.jobs,
      });
      const done = await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) => r.status === 'COMPLETED');
      // Assess
      expect(done.rowsDelivered).toBe(rows);
      expect(
        await checkJobRows(outputs.kafka.brokers, topic, job.jobId, rows, { values: true, skip: new Set() }),
      ).toEqual({ delivered: rows, duplicated: 0, missing: 0, outOfOrder: 0, badValues: 0 });
    } finally {
      producer.kill('SIGTERM');
      const exit = await producer.exited;
      // SIGTERM: the bundle flushes, checkpoints and exits cleanly, as the sources do.
      expect(exit.code).toBe(0);
    }
  }, 180_000);
});
