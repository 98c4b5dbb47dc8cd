/**
 * Moving finished sources (ROWSTREAM_SOURCE_FATE=move) on the real local stack: the planner in process
 * and real producer processes, both in move mode. A completed job's object version ends in processed/,
 * a rejected or failed one in failed/ (same bytes, metadata and tags, the inbound/ version gone, the job
 * record's `movedTo` naming the copy); every later reader follows the record: a replayed JobStarted, a
 * redelivered S3 notification, `rowstream resume` of a failed job (it reads failed/, then moves on to
 * processed/), and an end-of-job step interrupted between copy, record and delete, finished by a replay.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jobIdFor } from '../../events/ids.ts';
import { jobStartedFromRecord } from '../../services/producer/core.ts';
import { dynamoMoveRecord } from '../../services/shared/adapters/move-record-dynamo.ts';
import { s3ObjectMove } from '../../services/shared/adapters/object-move-s3.ts';
import { s3ObjectTags } from '../../services/shared/adapters/object-tags-s3.ts';
import { awsClients } from '../../services/shared/aws.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { type InProcessPlanner, inProcessPlanner } from '../../testkit/planner.ts';
import {
  type ProducerProcess,
  REPO,
  readTopic,
  sendJobStarted,
  startProducer,
  waitForJob,
} from '../../testkit/producer.ts';
import { FAST_PRODUCER_ENV } from '../../testkit/producer-faults.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';
import { runCli } from './cli-harness.ts';

const MOVE = { ROWSTREAM_SOURCE_FATE: 'move' } as const;

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: ReturnType<typeof awsClients>;
let planner: InProcessPlanner;
let stackFile: string;
const logDir = join(REPO, '.local', 'test-logs');
const running: ProducerProcess[] = [];

beforeAll(async () => {
  const stack = await freshStack('sm');
  outputs = stack.outputs;
  env = stack.env;
  aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  planner = inProcessPlanner(stack.env, aws, { env: MOVE });
  await planner.drain(); // the s3:TestEvent of the fresh bucket notification
  const dir = join(REPO, 'test-output', `source-move-${outputs.stage}`);
  mkdirSync(dir, { recursive: true });
  stackFile = join(dir, 'stack.json');
  writeFileSync(stackFile, JSON.stringify(outputs, null, 2));
});

/** A producer process of the stage in move mode (plus `extra`), started and ready. */
async function producer(name: string, extra: Record<string, string> = {}): Promise<ProducerProcess> {
  const p = startProducer(
    {
      ...env,
      ...FAST_PRODUCER_ENV,
      ...MOVE,
      ROWSTREAM_PRODUCER_ID: `${name}-${outputs.stage}`,
      ROWSTREAM_METRICS_SINK: `file:${join(logDir, `sm-${name}-emf-${outputs.stage}.log`)}`,
      ...extra,
    },
    join(logDir, `sm-${name}-${outputs.stage}.log`),
  );
  running.push(p);
  await p.waitForLog(/producer started/, 120_000);
  return p;
}

async function stopProducers() {
  const all = running.splice(0);
  for (const p of all) p.kill('SIGTERM');
  await Promise.all(all.map((p) => p.exited));
}

afterEach(stopProducers);
afterAll(stopProducers);

const csv = (rows: number, bad: ReadonlySet<number> = new Set()) =>
  `id,name\n${Array.from({ length: rows }, (_, i) => (bad.has(i + 1) ? `${i + 1}\n` : `${i + 1},n-${i + 1}\n`)).join('')}`;

interface Dropped {
  readonly key: string;
  readonly jobId: string;
  readonly versionId: string;
  readonly etag: string;
  readonly body: string;
}

/** Uploads into inbound/ (with the uploader's tag and an option in metadata) and runs the planner. */
async function drop(key: string, body: string, metadata: Record<string, string> = {}): Promise<Dropped> {
  const put = await aws.s3.send(
    new PutObjectCommand({
      Bucket: outputs.bucket,
      Key: key,
      Body: body,
      Metadata: metadata,
      Tagging: 'team=ingest',
    }),
  );
  await planner.drain();
  const etag = (put.ETag ?? '').replaceAll('"', '');
  return {
    key,
    body,
    etag,
    versionId: put.VersionId!,
    jobId: jobIdFor(outputs.bucket, key, { versionId: put.VersionId ?? null, etag }),
  };
}

const terminal = (r: JobRecord) =>
  ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED', 'REJECTED'].includes(r.status);
const moved = (prefix: string) => (r: JobRecord) => terminal(r) && !!r.movedTo?.key.startsWith(prefix);

async function object(key: string, versionId: string) {
  const out = await aws.s3.send(
    new GetObjectCommand({ Bucket: outputs.bucket, Key: key, VersionId: versionId }),
  );
  const tags = await aws.s3.send(
    new GetObjectTaggingCommand({ Bucket: outputs.bucket, Key: key, VersionId: versionId }),
  );
  return {
    body: await out.Body!.transformToString(),
    metadata: out.Metadata ?? {},
    tags: Object.fromEntries((tags.TagSet ?? []).map((t) => [t.Key!, t.Value!])),
  };
}

/** Every version and delete marker of a key. */
async function versionsOf(key: string) {
  const out = await aws.s3.send(new ListObjectVersionsCommand({ Bucket: outputs.bucket, Prefix: key }));
  return {
    versions: (out.Versions ?? []).filter((v) => v.Key === key).map((v) => v.VersionId!),
    deleteMarkers: (out.DeleteMarkers ?? []).filter((m) => m.Key === key).length,
  };
}

/** The job's records in the topic: row numbers in order and values. */
async function jobRows(topic: string, jobId: string) {
  const records = (await readTopic(outputs.kafka.brokers, topic)).filter(
    (r) => r.headers['rowstream-job'] === jobId,
  );
  return {
    rows: records.map((r) => Number(r.headers['rowstream-row'])),
    values: records.map((r) => r.value),
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const rowValue = (row: number) => JSON.stringify({ id: String(row), name: `n-${row}` });

/** The S3 notification of an object version, as S3 sends it (a redelivery of the original). */
const notification = (d: Dropped) =>
  JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        eventTime: new Date().toISOString(),
        s3: {
          bucket: { name: outputs.bucket },
          object: { key: d.key, size: d.body.length, eTag: d.etag, versionId: d.versionId },
        },
      },
    ],
  });

const jobs = (jobId: string) => waitForJob(aws.doc, outputs.tables.jobs, jobId, () => true, 5_000);

describe('source fate: move', () => {
  it('a completed job moves to processed/; a replayed JobStarted and a redelivered notification change nothing', async () => {
    // Prepare
    await producer('p1');
    const topic = `it-move-${randomBytes(3).toString('hex')}`;
    const name = `day-${randomBytes(3).toString('hex')}/orders.csv`;
    const d = await drop(`inbound/${name}`, csv(50), { 'rowstream-topic': topic });
    // Act
    const done = await waitForJob(aws.doc, outputs.tables.jobs, d.jobId, moved('processed/'), 60_000);
    // Assess: the copy, its record, the inbound/ version gone (deleted, no delete marker), the rows
    expect(done).toMatchObject({
      status: 'COMPLETED',
      key: d.key,
      versionId: d.versionId,
      movedTo: {
        key: `processed/${name}`,
        outcome: 'COMPLETED',
        from: { key: d.key, versionId: d.versionId },
      },
    });
    const copy = await object(`processed/${name}`, done.movedTo!.versionId);
    expect(copy.body).toBe(d.body);
    expect(copy.metadata).toEqual({ 'rowstream-topic': topic });
    expect(copy.tags).toEqual({ team: 'ingest', 'rowstream-job': d.jobId, 'rowstream-outcome': 'COMPLETED' });
    expect(await versionsOf(d.key)).toEqual({ versions: [], deleteMarkers: 0 });
    const first = await jobRows(topic, d.jobId);
    expect(first.rows).toEqual(range(1, 50));
    expect(first.values).toEqual(range(1, 50).map(rowValue));

    // Act: the JobStarted is replayed (archive replay, re-drive) and the S3 notification redelivered
    const p1 = running[0]!;
    const sawReplay = p1.waitForLog(new RegExp(`already terminal.*${d.jobId}`), 60_000);
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, jobStartedFromRecord(done, new Date())!);
    await sawReplay;
    const redelivered = await planner.planner.processRecord({ messageId: 'again', body: notification(d) });
    // Assess: the same job, unchanged; no second copy, no new row, no rejection
    expect(redelivered).toEqual([{ kind: 'duplicate', jobId: d.jobId, republished: false }]);
    const after = await jobs(d.jobId);
    expect(after).toMatchObject({ status: 'COMPLETED', movedTo: done.movedTo });
    expect(after.rejection).toBeUndefined();
    expect((await versionsOf(`processed/${name}`)).versions).toEqual([done.movedTo!.versionId]);
    expect((await jobRows(topic, d.jobId)).rows).toEqual(range(1, 50));
  });

  it('a rejected object moves to failed/; its redelivered notification is the same job', async () => {
    // Prepare
    const name = `bad-${randomBytes(3).toString('hex')}.txt`;
    // Act
    const d = await drop(`inbound/${name}`, 'id\n1\n');
    const rejected = await waitForJob(aws.doc, outputs.tables.jobs, d.jobId, moved('failed/'), 30_000);
    const outcomes = await planner.planner.processRecord({ messageId: 'again', body: notification(d) });
    // Assess
    expect(rejected).toMatchObject({
      status: 'REJECTED',
      rejection: { reason: 'NOT_CSV' },
      movedTo: { key: `failed/${name}`, outcome: 'REJECTED' },
    });
    const copy = await object(`failed/${name}`, rejected.movedTo!.versionId);
    expect(copy).toMatchObject({
      body: 'id\n1\n',
      tags: { team: 'ingest', 'rowstream-job': d.jobId, 'rowstream-outcome': 'REJECTED' },
    });
    expect(await versionsOf(d.key)).toEqual({ versions: [], deleteMarkers: 0 });
    expect(outcomes).toEqual([{ kind: 'duplicate', jobId: d.jobId, republished: false }]);
    expect(await jobs(d.jobId)).toMatchObject({
      rejection: { reason: 'NOT_CSV' },
      movedTo: rejected.movedTo,
    });
  });

  it.each(['rowstream resume', 'a replayed JobStarted'])(
    'a FAILED job waits in failed/; %s reads it there, finishes it once, and it moves on to processed/',
    async (how) => {
      // Prepare: a strict producer fails the job at row 30 (rows 1-29 committed); the source moves to failed/
      const strict = await producer('strict', { ROWSTREAM_PRODUCER_FAIL_ON_BAD_ROW: 'true' });
      const topic = `it-move-${randomBytes(3).toString('hex')}`;
      const name = `late-${randomBytes(3).toString('hex')}.csv`;
      const d = await drop(`inbound/${name}`, csv(60, new Set([30])), { 'rowstream-topic': topic });
      const failed = await waitForJob(aws.doc, outputs.tables.jobs, d.jobId, moved('failed/'), 60_000);
      expect(failed).toMatchObject({
        status: 'FAILED',
        failure: { reason: 'BAD_ROW' },
        checkpoint: { rowsDone: 29 },
        movedTo: { key: `failed/${name}`, outcome: 'FAILED' },
      });
      expect(await versionsOf(d.key)).toEqual({ versions: [], deleteMarkers: 0 });
      strict.kill('SIGTERM');
      await strict.exited;
      // Act: the stage takes bad rows as rejects now; the operator resumes the job
      await producer('lenient');
      if (how === 'rowstream resume') {
        const cliEnv: NodeJS.ProcessEnv = { ...process.env, ROWSTREAM_STACK_FILE: stackFile };
        delete cliEnv.ROWSTREAM_STAGE;
        const cli = await runCli(['resume', d.jobId, '--timeout', '60'], cliEnv, 90_000);
        expect(cli.stdout).toContain(`resumed ${d.jobId} (was FAILED: BAD_ROW)`);
      } else {
        await sendJobStarted(aws.sqs, outputs.queues.producer.url, jobStartedFromRecord(failed, new Date())!);
      }
      const done = await waitForJob(aws.doc, outputs.tables.jobs, d.jobId, moved('processed/'), 60_000);
      // Assess: every good row once, in order (1-29 from the first run, 31-60 read from failed/)
      expect(done).toMatchObject({
        status: 'COMPLETED_WITH_REJECTS',
        rowsDelivered: 59,
        rowsRejected: 1,
        resumes: 1,
        movedTo: {
          key: `processed/${name}`,
          outcome: 'COMPLETED',
          from: { key: `failed/${name}`, versionId: failed.movedTo!.versionId },
        },
      });
      const rows = range(1, 60).filter((r) => r !== 30);
      const read = await jobRows(topic, d.jobId);
      expect(read.rows).toEqual(rows);
      expect(read.values).toEqual(rows.map(rowValue));
      expect(await versionsOf(`failed/${name}`)).toEqual({ versions: [], deleteMarkers: 0 });
      const copy = await object(`processed/${name}`, done.movedTo!.versionId);
      expect(copy.body).toBe(d.body);
      expect(copy.tags).toEqual({
        team: 'ingest',
        'rowstream-job': d.jobId,
        'rowstream-outcome': 'COMPLETED',
      });
    },
  );

  it('a lost job record (restored table) after the move: a replayed JobStarted finds the copy by its tags, nothing sent twice', async () => {
    // Prepare: a completed, moved job whose record is then lost
    await producer('p3');
    const topic = `it-move-${randomBytes(3).toString('hex')}`;
    const name = `lost-${randomBytes(3).toString('hex')}.csv`;
    const d = await drop(`inbound/${name}`, csv(40), { 'rowstream-topic': topic });
    const done = await waitForJob(aws.doc, outputs.tables.jobs, d.jobId, moved('processed/'), 60_000);
    await aws.doc.send(new DeleteCommand({ TableName: outputs.tables.jobs, Key: { jobId: d.jobId } }));
    // Act
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, jobStartedFromRecord(done, new Date())!);
    const recovered = await waitForJob(
      aws.doc,
      outputs.tables.jobs,
      d.jobId,
      (r) => r.recoveredFrom === 'kafka' && terminal(r),
      60_000,
    );
    // Assess
    expect(recovered).toMatchObject({
      status: 'COMPLETED',
      movedTo: { key: `processed/${name}`, versionId: done.movedTo!.versionId, outcome: 'COMPLETED' },
    });
    expect((await jobRows(topic, d.jobId)).rows).toEqual(range(1, 40));
    expect((await versionsOf(`processed/${name}`)).versions).toEqual([done.movedTo!.versionId]);
  });

  it('an end-of-job step interrupted after the copy, then after the record, is finished by replays: one copy, nothing lost', async () => {
    // Prepare: a COMPLETED job whose step stopped right after the copy (the process died there)
    const p = await producer('p2');
    const name = `cut-${randomBytes(3).toString('hex')}.csv`;
    const key = `inbound/${name}`;
    const body = csv(5);
    const put = await aws.s3.send(new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: body }));
    const etag = (put.ETag ?? '').replaceAll('"', '');
    const jobId = jobIdFor(outputs.bucket, key, { versionId: put.VersionId!, etag });
    const now = new Date().toISOString();
    const record: JobRecord = {
      jobId,
      status: 'COMPLETED',
      createdAt: now,
      updatedAt: now,
      finishedAt: now,
      bucket: outputs.bucket,
      key,
      etag,
      versionId: put.VersionId!,
      sourceUri: `s3://${outputs.bucket}/${key}`,
      size: body.length,
      header: ['id', 'name'],
      dataOffset: 8,
      totalRows: 5,
      topic: 'it-move-cut',
      options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: false },
      startedEventPublished: true,
    };
    await aws.doc.send(new PutCommand({ TableName: outputs.tables.jobs, Item: record }));
    const objects = s3ObjectMove(aws.s3);
    const source = { bucket: outputs.bucket, key, versionId: put.VersionId! };
    // a later upload of the key (its own job, not planned here): never touched by this job's step
    const later = (await aws.s3.send(new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: body })))
      .VersionId!;
    // the interrupted attempt had tagged the version and copied it, nothing more
    await s3ObjectTags(aws.s3).put(source, { 'rowstream-job': jobId, 'rowstream-outcome': 'COMPLETED' });
    const interrupted = await objects.copy(source, `processed/${name}`);
    const replay = async () => {
      const saw = p.waitForLog(new RegExp(`already terminal.*${jobId}`), 60_000);
      await sendJobStarted(aws.sqs, outputs.queues.producer.url, jobStartedFromRecord(record, new Date())!);
      await saw;
    };
    // Act 1: a replay finishes the step
    await replay();
    const afterFirst = await waitForJob(aws.doc, outputs.tables.jobs, jobId, moved('processed/'), 30_000);
    await waitFor(async () => (await versionsOf(key)).versions.length === 1);
    // Assess 1: the copy the interrupted attempt made was adopted (no second copy), the source version gone
    expect(afterFirst.movedTo).toMatchObject({ key: `processed/${name}`, versionId: interrupted.versionId });
    expect((await versionsOf(`processed/${name}`)).versions).toEqual([interrupted.versionId]);
    expect(await versionsOf(key)).toEqual({ versions: [later], deleteMarkers: 0 });

    // Prepare 2: another job, stopped after copy and record, before the delete
    const body2 = 'id,name\n7,x\n';
    const put2 = await aws.s3.send(new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: body2 }));
    const etag2 = (put2.ETag ?? '').replaceAll('"', '');
    const record2: JobRecord = {
      ...record,
      jobId: jobIdFor(outputs.bucket, key, { versionId: put2.VersionId!, etag: etag2 }),
      etag: etag2,
      versionId: put2.VersionId!,
      size: body2.length,
      totalRows: 1,
    };
    await aws.doc.send(new PutCommand({ TableName: outputs.tables.jobs, Item: record2 }));
    const source2 = { bucket: outputs.bucket, key, versionId: put2.VersionId! };
    await s3ObjectTags(aws.s3).put(source2, {
      'rowstream-job': record2.jobId,
      'rowstream-outcome': 'COMPLETED',
    });
    const copy2 = await objects.copy(source2, `processed/${name}`);
    const movedTo2 = {
      key: `processed/${name}`,
      versionId: copy2.versionId,
      outcome: 'COMPLETED' as const,
      from: { key, versionId: put2.VersionId! },
      movedAt: new Date().toISOString(),
    };
    expect(
      await dynamoMoveRecord(aws.doc, outputs.tables.jobs).recordMove(record2.jobId, movedTo2, null),
    ).toBe(true);
    // a reader between the record and the delete reads the copy the record names
    const between = await aws.s3.send(
      new HeadObjectCommand({ Bucket: outputs.bucket, Key: movedTo2.key, VersionId: movedTo2.versionId }),
    );
    // Act 2: two replays (the second finds everything done)
    const replay2 = async () => {
      const saw = p.waitForLog(new RegExp(`already terminal.*${record2.jobId}`), 60_000);
      await sendJobStarted(aws.sqs, outputs.queues.producer.url, jobStartedFromRecord(record2, new Date())!);
      await saw;
    };
    await replay2();
    await waitFor(async () => !(await versionsOf(key)).versions.includes(put2.VersionId!));
    await replay2();
    // Assess 2: only that version deleted; processed/ holds each job's copy once, the record unchanged
    expect(between.ContentLength).toBe(body2.length);
    expect(await versionsOf(key)).toEqual({ versions: [later], deleteMarkers: 0 });
    expect((await versionsOf(`processed/${name}`)).versions.sort()).toEqual(
      [interrupted.versionId, copy2.versionId].sort(),
    );
    expect((await jobs(record2.jobId)).movedTo).toEqual(movedTo2);
    expect((await object(movedTo2.key, movedTo2.versionId)).body).toBe(body2);
  });
});

describe('source fate: moving a large object', () => {
  it('above the single-copy limit the version is copied in parts, bytes, metadata and tags kept; a failed copy is aborted', async () => {
    // Prepare: an 11 MiB version with the uploader's metadata, content type and tags; the single-copy limit
    // lowered to 1 MiB so the multipart path runs on a test-sized object (S3's limit is 5 GiB)
    const key = `inbound/big-${randomBytes(3).toString('hex')}.csv`;
    const body = Buffer.alloc(11 * 1024 * 1024 + 17, 'a,b\n');
    const put = await aws.s3.send(
      new PutObjectCommand({
        Bucket: outputs.bucket,
        Key: key,
        Body: body,
        ContentType: 'text/csv',
        Metadata: { 'rowstream-topic': 'big' },
        Tagging: 'team=ingest&rowstream-job=j-big',
      }),
    );
    const objects = s3ObjectMove(aws.s3, { maxCopyObjectBytes: 1024 * 1024, partBytes: 5 * 1024 * 1024 });
    const from = { bucket: outputs.bucket, key, versionId: put.VersionId! };
    const toKey = key.replace('inbound/', 'processed/');
    // Act
    const copy = await objects.copy(from, toKey, body.length);
    const failedTo = key.replace('inbound/', 'failed/');
    const failure = await objects.copy(from, failedTo, body.length + 10 * 1024 * 1024).catch((e: Error) => e);
    // Assess
    const got = await aws.s3.send(
      new GetObjectCommand({ Bucket: outputs.bucket, Key: toKey, VersionId: copy.versionId }),
    );
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    expect(bytes.equals(body)).toBe(true);
    expect(got.ContentType).toBe('text/csv');
    expect(got.Metadata).toEqual({ 'rowstream-topic': 'big' });
    expect((await object(toKey, copy.versionId)).tags).toEqual({ team: 'ingest', 'rowstream-job': 'j-big' });
    expect(failure).toBeInstanceOf(Error);
    const uploads = await aws.s3.send(
      new ListMultipartUploadsCommand({ Bucket: outputs.bucket, Prefix: failedTo }),
    );
    expect(uploads.Uploads ?? []).toEqual([]);
    expect((await versionsOf(failedTo)).versions).toEqual([]);
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
