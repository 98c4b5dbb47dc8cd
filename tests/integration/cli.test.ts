import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { badRowNumbers, writeSample } from '../../testkit/sample.ts';
import { cliStage } from './cli-harness.ts';

/**
 * The CLI as a user drives it, against the real local stack (moto + Kafka) with the real services
 * running for a fresh stage: drop a CSV with quoted newlines and bad rows, drop an empty file, list them.
 */
let stage: Awaited<ReturnType<typeof cliStage>>;

beforeAll(async () => {
  stage = await cliStage('cli');
  await stage.up();
});

afterAll(async () => {
  await stage?.down();
});

const ROWS = 3000;
const BAD = 4;

/** Every record of a job on a topic, read_committed, in partition order. */
async function readJob(brokers: readonly string[], topic: string, jobId: string, expected: number) {
  const kafka = new Kafka({ clientId: 'cli-test', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({
    groupId: `cli-test-${randomBytes(4).toString('hex')}`,
    readUncommitted: false,
  });
  const out: { row: number; value: Record<string, string>; partition: number }[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(resolve, 60_000);
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (message.headers?.['rowstream-job']?.toString() !== jobId) return;
          out.push({
            partition,
            row: Number(message.headers['rowstream-row']?.toString()),
            value: JSON.parse(message.value?.toString() ?? 'null') as Record<string, string>,
          });
          if (out.length >= expected) {
            // Wait a moment for anything beyond the expected count (a duplicate would show up here).
            setTimeout(() => {
              clearTimeout(deadline);
              resolve();
            }, 2000);
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return out;
}

describe('rowstream drop / status on the local stack', () => {
  const ids: { withRejects?: string; empty?: string } = {};

  it('drops a CSV with quoted newlines and bad rows: exit 3, rejects object named, topic = good rows in order', async () => {
    // Prepare
    const file = join(stage.dir, 'orders-with-rejects.csv');
    await writeSample(file, { rows: ROWS, badRows: BAD, seed: 7 });
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/"multi-line note \d+\n/); // the sample really has newlines inside quotes
    const bad = badRowNumbers(ROWS, BAD);
    const all = parse(text, { columns: true, relax_column_count: true }) as Record<string, string>[];
    const good = all.filter((_, i) => !bad.has(i + 1));
    const topic = `cli-orders-${stage.outputs.stage}`;

    // Act
    const r = await stage.run(['drop', file, '--topic', topic, '--timeout', '150']);

    // Assess
    const context = `stdout:\n${r.stdout}\nstderr:\n${r.stderr}\n${stage.logs()}`;
    expect(r.code, context).toBe(3);
    const jobId = /^job (j-[0-9a-f]{24})$/m.exec(r.stdout)?.[1];
    expect(jobId, context).toBeDefined();
    ids.withRejects = jobId;
    expect(r.stdout).toMatch(
      new RegExp(`rejected\\s+${BAD} rows\\s+-> s3://${stage.outputs.bucket}/rejected/`),
    );
    expect(r.stdout).toContain(`delivered  ${(ROWS - BAD).toLocaleString('en-US')} rows`);
    expect(r.stdout).toContain(`topic ${topic}`);
    // Without a TTY: plain progress lines, no escape codes.
    expect(r.stdout).not.toContain('\u001b[');

    const records = await readJob(stage.outputs.kafka.brokers, topic, jobId!, good.length);
    expect(records.length).toBe(good.length);
    const byPartitionOrder = records.map((x) => x.row);
    expect(byPartitionOrder).toEqual([...byPartitionOrder].sort((a, b) => a - b));
    expect(records.map((x) => x.value)).toEqual(good);
  });

  it('drops an empty file: exit 2 with the reason', async () => {
    // Prepare
    const file = join(stage.dir, 'empty.csv');
    writeFileSync(file, '');
    // Act
    const r = await stage.run(['drop', file, '--timeout', '120']);
    // Assess
    expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(2);
    expect(r.stdout).toMatch(/rejected: EMPTY_OBJECT: .+/);
    ids.empty = /^job (j-[0-9a-f]{24})$/m.exec(r.stdout)?.[1];
  });

  it('status --json lists both jobs with the right statuses', async () => {
    // Act
    const r = await stage.run(['status', '--json']);
    // Assess
    expect(r.code, r.stderr).toBe(0);
    const body = JSON.parse(r.stdout) as { stage: string; jobs: { jobId: string; status: string }[] };
    expect(body.stage).toBe(stage.outputs.stage);
    const statusOf = Object.fromEntries(body.jobs.map((j) => [j.jobId, j.status]));
    expect(statusOf[ids.withRejects ?? 'missing']).toBe('COMPLETED_WITH_REJECTS');
    expect(statusOf[ids.empty ?? 'missing']).toBe('REJECTED');
  });

  it('local status shows every service running with its log', async () => {
    const r = await stage.run(['--stack-file', stage.env.ROWSTREAM_STACK_FILE!, 'local', 'status']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of ['planner', 'producer', 'alarm-router', 'scheduler']) {
      expect(r.stdout).toMatch(
        new RegExp(`${name}\\s+running\\s+pid \\d+\\s+log ${stage.stateDir}/logs/${name}.log`),
      );
    }
  });
});
