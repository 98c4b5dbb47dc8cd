/**
 * Large plans on the real local stack: CSVs with 5,000 long column names (a header of about 290 KB as
 * JSON, above EventBridge's 256 KB per event) go through the real S3 notification to the planner (in
 * process), their JobStarted through the real bus and rule to the producer queue, and a real producer
 * process to the real broker. The plan is kept in S3 and referenced; a tampered or deleted plan fails
 * its job with the cause; once fixed, a replayed JobStarted and `rowstream resume` finish the jobs.
 * Every record is checked row by row: every value under its column name.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobStartedV1 } from '../../events/catalog.ts';
import { jobIdFor } from '../../events/ids.ts';
import { cacheKeyFor } from '../../services/planner/core.ts';
import { awsClients } from '../../services/shared/aws.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { type InProcessPlanner, inProcessPlanner } from '../../testkit/planner.ts';
import { type ProducerProcess, REPO, readTopic, startProducer, waitForJob } from '../../testkit/producer.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';
import { runCli } from './cli-harness.ts';

const COLUMNS = 5000;
const EVENTBRIDGE_MAX = 256 * 1024;
const DYNAMODB_ITEM_MAX = 400 * 1024;

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: ReturnType<typeof awsClients>;
let planner: InProcessPlanner;
let producer: ProducerProcess | undefined;
let stackFile: string;
const logDir = join(REPO, '.local', 'test-logs');

/** 5,000 long column names, different per file, so no two jobs share a plan. */
const headerOf = (tag: string) =>
  Array.from({ length: COLUMNS }, (_, c) => `${tag}_sensor_${c}_temperature_reading_celsius_calibrated_avg`);
const valueAt = (row: number, col: number) => `r${row}c${col}`;

interface Dropped {
  readonly name: string;
  readonly key: string;
  readonly topic: string;
  readonly header: string[];
  readonly rows: number;
  readonly jobId: string;
  readonly etag: string;
}

async function drop(name: string, rows: number): Promise<Dropped> {
  const suffix = randomBytes(3).toString('hex');
  const key = `inbound/wide-${name}-${suffix}.csv`;
  const topic = `it-wide-${name}-${suffix}`;
  const header = headerOf(`${name}${suffix}`);
  const lines = [header.join(',')];
  for (let r = 1; r <= rows; r++) lines.push(header.map((_, c) => valueAt(r, c)).join(','));
  const put = await aws.s3.send(
    new PutObjectCommand({
      Bucket: outputs.bucket,
      Key: key,
      Body: `${lines.join('\n')}\n`,
      Metadata: { 'rowstream-topic': topic },
    }),
  );
  const etag = (put.ETag ?? '').replaceAll('"', '');
  const jobId = jobIdFor(outputs.bucket, key, { versionId: put.VersionId ?? null, etag });
  return { name, key, topic, header, rows, jobId, etag };
}

const record = async (jobId: string) =>
  (
    await aws.doc.send(
      new GetCommand({ TableName: outputs.tables.jobs, Key: { jobId }, ConsistentRead: true }),
    )
  ).Item as JobRecord;

/** The JobStarted messages the bus rule delivered, by job id, left on the queue for the producer. */
async function deliveredJobStarted(jobIds: readonly string[]): Promise<Map<string, string>> {
  const bodies = new Map<string, string>();
  const deadline = Date.now() + 30_000;
  while (bodies.size < jobIds.length && Date.now() < deadline) {
    const got = await aws.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: outputs.queues.producer.url,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 30,
      }),
    );
    for (const m of got.Messages ?? []) {
      const jobId = JSON.parse(m.Body ?? '{}').detail?.jobId as string;
      if (jobIds.includes(jobId)) bodies.set(jobId, m.Body ?? '');
      await aws.sqs.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: outputs.queues.producer.url,
          ReceiptHandle: m.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      );
    }
  }
  return bodies;
}

/** Every committed record of the job's topic, in order, each value under its column name. */
async function checkTopic(job: Dropped) {
  const records = await readTopic(outputs.kafka.brokers, job.topic);
  expect(records.map((r) => Number(r.headers['rowstream-row']))).toEqual(
    Array.from({ length: job.rows }, (_, i) => i + 1),
  );
  records.forEach((rec, i) => {
    const row = i + 1;
    expect(rec.headers['rowstream-job']).toBe(job.jobId);
    const value = JSON.parse(rec.value) as Record<string, string>;
    expect(Object.keys(value)).toEqual(job.header);
    const wrong = job.header.filter((name, c) => value[name] !== valueAt(row, c));
    expect(wrong, `row ${row}: values not under their column`).toEqual([]);
  });
}

const terminal = (r: JobRecord) => ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED'].includes(r.status);

beforeAll(async () => {
  const stack = await freshStack('lp');
  outputs = stack.outputs;
  env = stack.env;
  aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  planner = inProcessPlanner(env, aws);
  await planner.drain(); // the s3:TestEvent of the fresh bucket notification
  const dir = join(REPO, 'test-output', `large-plans-${outputs.stage}`);
  mkdirSync(dir, { recursive: true });
  stackFile = join(dir, 'stack.json');
  writeFileSync(stackFile, JSON.stringify(outputs, null, 2));
});

afterAll(async () => {
  producer?.kill('SIGTERM');
  await producer?.exited;
});

describe('a header too large for events and job records (plan kept in S3, referenced)', () => {
  let good: Dropped;
  let tampered: Dropped;
  let deleted: Dropped;
  let delivered: Map<string, string>;
  const originals = new Map<string, Buffer>();

  it('the planner keeps each plan in S3; JobStarted on the bus, the job record and the cache item are small and carry the reference', async () => {
    // Act: three wide files dropped into inbound/, the planner runs on their notifications
    good = await drop('good', 12);
    tampered = await drop('tampered', 6);
    deleted = await drop('deleted', 6);
    await planner.drain();
    delivered = await deliveredJobStarted([good.jobId, tampered.jobId, deleted.jobId]);

    // Assess
    expect([...delivered.keys()].sort()).toEqual([good.jobId, tampered.jobId, deleted.jobId].sort());
    for (const job of [good, tampered, deleted]) {
      const body = delivered.get(job.jobId)!;
      const envelope = JSON.parse(body);
      expect(envelope['detail-type']).toBe('JobStarted.v1');
      expect(JobStartedV1.safeParse(envelope.detail).success).toBe(true);
      expect(envelope.detail.header).toBeUndefined();
      expect(envelope.detail.planRef).toMatchObject({ key: `plans/${job.jobId}.json`, columns: COLUMNS });
      expect(Buffer.byteLength(body)).toBeLessThan(EVENTBRIDGE_MAX / 32);

      const r = await record(job.jobId);
      expect(r.status).toBe('PLANNED');
      expect(r.header).toBeUndefined();
      expect(r.planRef).toEqual(envelope.detail.planRef);
      expect(Buffer.byteLength(JSON.stringify(r))).toBeLessThan(DYNAMODB_ITEM_MAX / 32);

      const plan = await aws.s3.send(new GetObjectCommand({ Bucket: outputs.bucket, Key: r.planRef!.key }));
      const bytes = Buffer.from(await plan.Body!.transformToByteArray());
      expect(bytes.length).toBe(r.planRef!.bytes);
      expect(bytes.length).toBeGreaterThan(EVENTBRIDGE_MAX);
      expect(JSON.parse(bytes.toString()).header).toEqual(job.header);
      originals.set(job.jobId, bytes);

      const cached = await aws.doc.send(
        new GetCommand({
          TableName: outputs.tables.counts,
          Key: { cacheKey: cacheKeyFor(outputs.bucket, job.key, job.etag) },
        }),
      );
      expect(cached.Item).toMatchObject({ totalRows: job.rows, headerRef: { columns: COLUMNS } });
      expect(cached.Item?.header).toBeUndefined();
      expect(Buffer.byteLength(JSON.stringify(cached.Item))).toBeLessThan(DYNAMODB_ITEM_MAX / 32);
    }
  }, 120_000);

  it('the producer runs a referenced plan to COMPLETED; a tampered plan and a deleted one fail their jobs with the cause', async () => {
    // Prepare: one plan changed (a column renamed), one deleted, before any producer runs
    const original = originals.get(tampered.jobId)!;
    const changed = original.toString().replace(tampered.header[0]!, `${tampered.header[0]!.slice(0, -1)}X`);
    await aws.s3.send(
      new PutObjectCommand({ Bucket: outputs.bucket, Key: `plans/${tampered.jobId}.json`, Body: changed }),
    );
    await aws.s3.send(
      new DeleteObjectCommand({ Bucket: outputs.bucket, Key: `plans/${deleted.jobId}.json` }),
    );

    // Act
    producer = startProducer(
      {
        ...env,
        ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
        ROWSTREAM_PRODUCER_SWEEP_MS: '1000',
        ROWSTREAM_METRICS_SINK: `file:${join(logDir, `producer-emf-${outputs.stage}.log`)}`,
      },
      join(logDir, `producer-${outputs.stage}.log`),
    );
    const done = await Promise.all(
      [good, tampered, deleted].map((j) =>
        waitForJob(aws.doc, outputs.tables.jobs, j.jobId, terminal, 180_000),
      ),
    );

    // Assess
    expect(done[0]).toMatchObject({
      status: 'COMPLETED',
      rowsDelivered: good.rows,
      planRef: { columns: COLUMNS },
    });
    await checkTopic(good);
    expect(done[1]).toMatchObject({
      status: 'FAILED',
      failure: {
        reason: 'PLAN_MISMATCH',
        message: expect.stringContaining(
          `s3://${outputs.bucket}/plans/${tampered.jobId}.json is not the one the job refers to`,
        ),
      },
    });
    expect(done[2]).toMatchObject({
      status: 'FAILED',
      failure: {
        reason: 'PLAN_NOT_FOUND',
        message: expect.stringContaining(`s3://${outputs.bucket}/plans/${deleted.jobId}.json does not exist`),
      },
    });
    expect((await readTopic(outputs.kafka.brokers, tampered.topic).catch(() => [])).length).toBe(0);
  }, 240_000);

  it('with the plan restored, a replayed JobStarted (the runbook remedy) finishes the job, every row once', async () => {
    // Prepare
    await aws.s3.send(
      new PutObjectCommand({
        Bucket: outputs.bucket,
        Key: `plans/${tampered.jobId}.json`,
        Body: originals.get(tampered.jobId)!,
      }),
    );
    // Act: the very message the bus delivered, delivered again
    await aws.sqs.send(
      new SendMessageCommand({
        QueueUrl: outputs.queues.producer.url,
        MessageBody: delivered.get(tampered.jobId)!,
      }),
    );
    const done = await waitForJob(
      aws.doc,
      outputs.tables.jobs,
      tampered.jobId,
      (r) => r.status === 'COMPLETED',
      120_000,
    );
    // Assess
    expect(done).toMatchObject({
      rowsDelivered: tampered.rows,
      resumes: 1,
      lastFailure: { reason: 'PLAN_MISMATCH' },
    });
    await checkTopic(tampered);
  }, 180_000);

  it('typed records: an inferred schema too large for the record travels in the plan, and every value is typed', async () => {
    // Prepare: 2,000 integer columns, `rowstream-schema: infer` (json: inferred, not registered, so the
    // definition exists only in the plan: no registry to fall back on)
    const suffix = randomBytes(3).toString('hex');
    const key = `inbound/wide-typed-${suffix}.csv`;
    const topic = `it-wide-typed-${suffix}`;
    const header = Array.from({ length: 2000 }, (_, c) => `typed_${suffix}_reading_${c}_count`);
    const rows = 5;
    const lines = [header.join(',')];
    for (let r = 1; r <= rows; r++) lines.push(header.map((_, c) => String(r * 10_000 + c)).join(','));
    const put = await aws.s3.send(
      new PutObjectCommand({
        Bucket: outputs.bucket,
        Key: key,
        Body: `${lines.join('\n')}\n`,
        Metadata: { 'rowstream-topic': topic, 'rowstream-schema': 'infer' },
      }),
    );
    const jobId = jobIdFor(outputs.bucket, key, {
      versionId: put.VersionId ?? null,
      etag: (put.ETag ?? '').replaceAll('"', ''),
    });
    // Act
    await planner.drain();
    const done = await waitForJob(aws.doc, outputs.tables.jobs, jobId, terminal, 120_000);
    // Assess: the record keeps the schema without its definition; the plan holds it
    expect(done).toMatchObject({ status: 'COMPLETED', rowsDelivered: rows, schema: { source: 'inferred' } });
    expect(done.schema?.definition).toBeUndefined();
    expect(done.header).toBeUndefined();
    const plan = await aws.s3.send(new GetObjectCommand({ Bucket: outputs.bucket, Key: done.planRef!.key }));
    const doc = JSON.parse(await plan.Body!.transformToString());
    expect(JSON.parse(doc.schemaDefinition).fields).toHaveLength(2000);
    const records = await readTopic(outputs.kafka.brokers, topic);
    expect(records.map((r) => Number(r.headers['rowstream-row']))).toEqual([1, 2, 3, 4, 5]);
    records.forEach((rec, i) => {
      const value = JSON.parse(rec.value) as Record<string, unknown>;
      expect(Object.keys(value)).toEqual(header);
      const wrong = header.filter((name, c) => value[name] !== (i + 1) * 10_000 + c);
      expect(wrong, `row ${i + 1}: values not typed under their column`).toEqual([]);
    });
  }, 180_000);

  it("with the plan restored, `rowstream resume` finishes the job (the sweeper runs it from the record's reference)", async () => {
    // Prepare
    await aws.s3.send(
      new PutObjectCommand({
        Bucket: outputs.bucket,
        Key: `plans/${deleted.jobId}.json`,
        Body: originals.get(deleted.jobId)!,
      }),
    );
    const cliEnv: NodeJS.ProcessEnv = { ...process.env, ROWSTREAM_STACK_FILE: stackFile };
    delete cliEnv.ROWSTREAM_STAGE;
    // Act
    const cli = await runCli(['resume', deleted.jobId, '--timeout', '90'], cliEnv, 120_000);
    // Assess
    expect(cli.stdout).toContain(`resumed ${deleted.jobId} (was FAILED: PLAN_NOT_FOUND)`);
    expect(cli.stdout).toContain(`COMPLETED: ${deleted.rows} rows delivered, 0 rejected`);
    expect(cli.code).toBe(0);
    await checkTopic(deleted);
  }, 180_000);
});
