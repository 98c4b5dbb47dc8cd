import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { awsClients } from '../../services/shared/aws.ts';
import { runChaos } from '../../testkit/chaos.ts';
import {
  REPO,
  readTopic,
  sendJobStarted,
  startProducer,
  uploadJob,
  waitForJob,
} from '../../testkit/producer.ts';
import { writeRowsFile } from '../../testkit/rows.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

/**
 * Crash safety on the real broker: the CI-sized chaos run (200k rows, 3 SIGKILLs, one right after a
 * commit, one SIGTERM), and a job longer than the queue's visibility timeout with two producers
 * competing for it.
 */

let outputs: StackOutputs;
let env: Record<string, string>;

beforeAll(async () => {
  ({ outputs, env } = await freshStack('pchaos'));
});

describe('producer under crashes', () => {
  it('SIGKILLed 3 times and SIGTERMed once, the topic still holds every row exactly once, in order', async () => {
    // Prepare + Act
    const report = await runChaos({ outputs, env, rows: 200_000, kills: 3, seed: 7 });

    // Assess
    expect(report.kills.length).toBe(3);
    expect(report.topicRecords).toBe(200_000);
    expect({ duplicates: report.duplicates, missing: report.missing, outOfOrder: report.outOfOrder }).toEqual(
      {
        duplicates: 0,
        missing: 0,
        outOfOrder: 0,
      },
    );
    expect(report.badValues).toBe(0);
    expect(report.status).toBe('COMPLETED');
    // Takeover of a dead producer's job within the lease (3 s) plus a sweep and a process start.
    for (const k of report.kills) expect(k.takeoverMs ?? 0).toBeLessThan(15_000);
    expect(report.sigterm.exitCode).toBe(0);
    expect(report.sigterm.kafkaRow - report.sigterm.checkpointRow).toBeLessThanOrEqual(
      report.sigterm.batchRows,
    );
  });

  it('a job longer than the visibility timeout, with two producers, is produced once', async () => {
    // Prepare: 2 s visibility, a job that takes several times that, two producers polling.
    const aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
    await aws.sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: outputs.queues.producer.url,
        Attributes: { VisibilityTimeout: '2' },
      }),
    );
    // 600k rows: at 300k the producer, once it got faster, could finish in about 4 s, too close to the
    // two visibility timeouts this test must outlast.
    const rows = 600_000;
    const file = join(REPO, '.local', 'bench', `chaos-${rows}.csv`);
    const { size, head } = await writeRowsFile(file, rows);
    const topic = `it-visibility-${randomBytes(3).toString('hex')}`;
    const job = await uploadJob(
      aws.s3,
      outputs.bucket,
      'inbound/long.csv',
      { path: file, size, head },
      {
        topic,
        totalRows: rows,
      },
    );
    const procEnv = {
      ...env,
      ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
      ROWSTREAM_PRODUCER_SWEEP_MS: '1000',
      // Heartbeat 1 s, lease 6 s: a loaded CI machine may delay a heartbeat, never by 5 s.
      ROWSTREAM_PRODUCER_LEASE_MS: '6000',
      ROWSTREAM_PRODUCER_HEARTBEAT_MS: '1000',
      // Small transactions make the job last well past the visibility timeout.
      ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '2000',
      ROWSTREAM_METRICS_SINK: 'file:/dev/null',
    };
    const logs = join(REPO, '.local', 'test-logs');
    const a = startProducer(procEnv, join(logs, `visibility-a-${outputs.stage}.log`));
    const b = startProducer(procEnv, join(logs, `visibility-b-${outputs.stage}.log`));
    await Promise.all([a.waitForLog(/producer started/), b.waitForLog(/producer started/)]);
    const t0 = Date.now();

    // Act
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    const done = await waitForJob(
      aws.doc,
      outputs.tables.jobs,
      job.jobId,
      (r) => r.status === 'COMPLETED',
      170_000,
    );
    const took = Date.now() - t0;
    a.kill('SIGTERM');
    b.kill('SIGTERM');
    await Promise.all([a.exited, b.exited]);
    let count = 0;
    let ordered = true;
    let expected = 1;
    await readTopic(outputs.kafka.brokers, topic, 170_000, (r) => {
      count++;
      const row = Number(r.headers['rowstream-row']);
      if (row !== expected) ordered = false;
      expected = row + 1;
    });

    // Assess
    expect(took).toBeGreaterThan(2_000 * 2);
    expect(done.attempts).toBe(1);
    expect(count).toBe(rows);
    expect(ordered).toBe(true);
  });
});
