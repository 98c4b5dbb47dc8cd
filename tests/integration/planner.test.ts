/**
 * The planner on the real local stack: objects put into the stage's bucket reach the planner queue
 * through the real S3 notification, the planner runs under the local SQS Lambda runner, and what it
 * publishes reaches the producer and alarm-router queues through the stage's real bus rules.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobRejected, JobStarted } from '../../events/catalog.ts';
import { jobIdFor } from '../../events/ids.ts';
import { destroyClients, type LocalClients, localClients } from '../../local/clients.ts';
import { runSqsLambda } from '../../local/runner/sqs-lambda.ts';
import { cacheKeyFor } from '../../services/planner/core.ts';
import { createPlanner, type Planner, plannerFromDeps } from '../../services/planner/handler.ts';
import type { ObjectStorePort } from '../../services/planner/ports.ts';
import { PlannerEnv } from '../../services/planner/settings.ts';
import { type AwsClients, awsClients } from '../../services/shared/aws.ts';
import { loadConfig } from '../../services/shared/config.ts';
import { JobRecord } from '../../services/shared/jobs.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { BufferedMetrics, MemorySink } from '../../services/shared/metrics.ts';
import { serviceRuntime } from '../../services/shared/runtime.ts';
import { freshStack, requireLocalStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

/** An EventBridge envelope as a rule target queue receives it. */
interface Delivered<D> {
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: D;
}

let outputs: StackOutputs;
let aws: LocalClients;
let clients: AwsClients;
let planner: Planner;
let sink: MemorySink;
let tmp: string;
const extraQueues: string[] = [];

beforeAll(async () => {
  await requireLocalStack();
  const stack = await freshStack('pl');
  outputs = stack.outputs;
  aws = localClients({ endpoint: outputs.endpoint! });
  // The planner is wired exactly as its Lambda entry wires it, from the stage's environment; only
  // the metrics sink is swapped for one the tests can read.
  const config = loadConfig(PlannerEnv, { ...stack.env, LOG_LEVEL: 'ERROR' });
  clients = awsClients({ region: config.AWS_REGION, endpoint: config.AWS_ENDPOINT_URL });
  sink = new MemorySink();
  planner = createPlanner(
    config,
    serviceRuntime('planner', config, {
      clients,
      log: createLogger('planner', { stage: config.ROWSTREAM_STAGE, level: 'ERROR' }),
      metrics: new BufferedMetrics({ sink, defaultDimensions: { Service: 'planner', Stage: outputs.stage } }),
    }),
  );
  tmp = mkdtempSync(join(tmpdir(), 'rowstream-planner-it-'));
  // Provisioning put the bucket notification, which sends an s3:TestEvent: let the planner eat it so
  // every test starts from an empty planner queue.
  await drainPlanner();
  await takeAll(outputs.queues.producer.url, 500);
  await takeAll(outputs.queues.alarmRouter.url, 500);
});

afterAll(async () => {
  for (const url of extraQueues)
    await aws.sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => {});
  rmSync(tmp, { recursive: true, force: true });
  destroyClients(aws);
});

// ---- helpers -------------------------------------------------------------------------------------

/** Runs the planner on a queue until it stays empty; returns the runner's totals and failures. */
async function drainPlanner(queueUrl = outputs.queues.planner.url, handler = planner.handler, idle = 1) {
  const failed: string[] = [];
  const totals = await runSqsLambda({
    queueUrl,
    handler,
    sqs: aws.sqs,
    signal: new AbortController().signal,
    waitSeconds: 1,
    stopWhenIdle: idle,
    functionName: 'planner',
    onBatch: (b) => failed.push(...b.failed),
  });
  return { ...totals, failedIds: failed };
}

/** Receives and deletes messages until `enough` holds or `timeoutMs` passes. */
async function take(
  sqs: SQSClient,
  queueUrl: string,
  enough: (messages: readonly Message[]) => boolean,
  timeoutMs: number,
): Promise<Message[]> {
  const seen: Message[] = [];
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: Math.max(0, Math.min(1, Math.floor((deadline - Date.now()) / 1000))),
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const msgs = got.Messages ?? [];
    if (msgs.length > 0) {
      seen.push(...msgs);
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
    }
    if (enough(seen)) break;
  }
  return seen;
}

const takeAll = (queueUrl: string, ms: number) => take(aws.sqs, queueUrl, () => false, ms);

function envelopes<D>(messages: readonly Message[], detailType: string): Delivered<D>[] {
  return messages
    .map((m) => JSON.parse(m.Body ?? 'null') as Delivered<D>)
    .filter((e) => e['detail-type'] === detailType);
}

/** JobStarted.v1 events on the producer queue for `key`: waits for `expected`, then a settle time. */
async function startedFor(key: string, expected: number, settleMs = 1000): Promise<JobStarted[]> {
  const found = (ms: readonly Message[]) =>
    envelopes<JobStarted>(ms, 'JobStarted.v1').filter((e) => e.detail.key === key);
  const first =
    expected === 0
      ? []
      : await take(aws.sqs, outputs.queues.producer.url, (m) => found(m).length >= expected, 8000);
  // Anything more would be a duplicate: give it the time to arrive.
  const more = await takeAll(outputs.queues.producer.url, settleMs);
  const all = [...first, ...more];
  for (const e of envelopes<unknown>(all, 'JobStarted.v1')) expect(e.source).toBe('rowstream.planner');
  return found(all).map((e) => e.detail);
}

/** JobRejected.v1 events for `key`, read from the alarm-router queue (the real `ops-events` rule). */
async function rejectedFor(key: string, expected: number, settleMs = 1000): Promise<JobRejected[]> {
  const found = (ms: readonly Message[]) =>
    envelopes<JobRejected>(ms, 'JobRejected.v1').filter((e) => e.detail.key === key);
  const first =
    expected === 0
      ? []
      : await take(aws.sqs, outputs.queues.alarmRouter.url, (m) => found(m).length >= expected, 8000);
  const more = await takeAll(outputs.queues.alarmRouter.url, settleMs);
  return found([...first, ...more]).map((e) => e.detail);
}

async function put(key: string, body: string | Uint8Array, metadata?: Record<string, string>) {
  const out = await aws.s3.send(
    new PutObjectCommand({
      Bucket: outputs.bucket,
      Key: key,
      Body: body,
      // Known up front, so the SDK does not warn about a body of unknown length (the empty string).
      ContentLength: typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength,
      ContentType: 'text/csv',
      ...(metadata ? { Metadata: metadata } : {}),
    }),
  );
  return { etag: (out.ETag ?? '').replace(/"/g, ''), versionId: out.VersionId ?? null };
}

async function job(jobId: string) {
  const out = await clients.doc.send(
    new GetCommand({ TableName: outputs.tables.jobs, Key: { jobId }, ConsistentRead: true }),
  );
  return out.Item ? JobRecord.parse(out.Item) : null;
}

async function cacheItem(key: string, etag: string) {
  const out = await clients.doc.send(
    new GetCommand({
      TableName: outputs.tables.counts,
      Key: { cacheKey: cacheKeyFor(outputs.bucket, key, etag) },
      ConsistentRead: true,
    }),
  );
  return out.Item ?? null;
}

async function queueDepth(url: string): Promise<number> {
  const out = await aws.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const a = out.Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0);
}

/** Data rows as Python's csv module reads the file (empty rows skipped, header excluded). */
function pythonRowCount(body: string | Uint8Array): number {
  const file = join(tmp, `py-${Date.now()}-${Math.random().toString(36).slice(2)}.csv`);
  writeFileSync(file, body);
  const out = execFileSync(
    'python3',
    [
      '-c',
      'import csv,sys\nwith open(sys.argv[1], newline="", encoding="utf-8-sig") as f:\n' +
        '    rows = [r for r in csv.reader(f) if r]\nprint(len(rows) - 1)',
      file,
    ],
    { encoding: 'utf8' },
  );
  return Number(out.trim());
}

// ---- tests ---------------------------------------------------------------------------------------

// BOM, CRLF, quoted CRLF and LF inside fields, doubled quotes, an empty line between rows, empty
// fields, a quoted empty field, non-ASCII text and no final newline.
const TRICKY =
  '\ufeffid,name,note\r\n' +
  '1,"Ann","line one\r\nline two"\r\n' +
  '2,Bob,\r\n' +
  '\r\n' +
  '3,"Quote ""x""","a\nb\nc"\r\n' +
  '4,,""\r\n' +
  '5,"Zoë, ünïcode",last';

describe('planner on the local stack', () => {
  it('plans a CSV put into inbound/: JobStarted.v1 on the producer queue via the job-started rule', async () => {
    // Prepare
    const key = 'inbound/2026/11/tricky orders.csv';
    const expectedRows = pythonRowCount(TRICKY);
    expect(expectedRows).toBe(5); // the independent reader agrees with what the fixture was built to hold
    const { etag, versionId } = await put(key, TRICKY);

    // Act
    const run = await drainPlanner();

    // Assess
    expect(run.failedIds).toEqual([]);
    const [started, ...others] = await startedFor(key, 1);
    expect(others).toEqual([]);
    expect(started).toMatchObject({
      bucket: outputs.bucket,
      key,
      etag,
      versionId,
      sourceUri: `s3://${outputs.bucket}/${key}`,
      size: Buffer.byteLength(TRICKY),
      totalRows: expectedRows,
      header: ['id', 'name', 'note'],
      // BOM (3 bytes) + "id,name,note\r\n" (14 bytes)
      dataOffset: 17,
      topic: 'rowstream.rows',
      options: { format: 'json', keyColumn: null, failOnBadRow: false, delimiter: ',' },
    });
    const record = await job(started!.jobId);
    expect(record).toMatchObject({
      status: 'PLANNED',
      startedEventPublished: true,
      totalRows: expectedRows,
      dataOffset: 17,
      etag,
      versionId,
    });
    expect(await cacheItem(key, etag)).toMatchObject({ totalRows: expectedRows, dataOffset: 17 });
    expect(await queueDepth(outputs.queues.planner.url)).toBe(0);
  });

  it('plans one job and publishes one JobStarted when the same notification arrives twice', async () => {
    // Prepare: take the real notification off the queue, then deliver its body twice, one after the other.
    const key = 'inbound/dup.csv';
    await put(key, 'a,b\n1,2\n3,4\n');
    const [notification] = await take(
      aws.sqs,
      outputs.queues.planner.url,
      (m) => m.some((x) => (x.Body ?? '').includes('dup.csv')),
      5000,
    );
    expect(notification?.Body).toContain('ObjectCreated');
    const body = notification!.Body!;

    // Act
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: outputs.queues.planner.url, MessageBody: body }));
    const first = await drainPlanner();
    const afterFirst = await startedFor(key, 1);
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: outputs.queues.planner.url, MessageBody: body }));
    const second = await drainPlanner();
    const afterSecond = await startedFor(key, 0);

    // Assess
    expect([first.received, first.failedIds]).toEqual([1, []]);
    expect([second.received, second.failedIds]).toEqual([1, []]);
    expect(afterFirst).toHaveLength(1);
    expect(afterFirst[0]?.totalRows).toBe(2);
    expect(afterSecond).toEqual([]);
    expect(await job(afterFirst[0]!.jobId)).toMatchObject({ status: 'PLANNED', startedEventPublished: true });
  });

  it('plans one job when duplicates of a notification arrive in the same batch (processed in parallel)', async () => {
    // Prepare
    const key = 'inbound/dup-batch.csv';
    await put(key, 'a,b\n1,2\n');
    const [notification] = await take(
      aws.sqs,
      outputs.queues.planner.url,
      (m) => m.some((x) => (x.Body ?? '').includes('dup-batch.csv')),
      5000,
    );
    const body = notification!.Body!;
    for (let i = 0; i < 3; i++) {
      await aws.sqs.send(new SendMessageCommand({ QueueUrl: outputs.queues.planner.url, MessageBody: body }));
    }

    // Act
    const run = await drainPlanner();

    // Assess
    expect([run.received, run.failedIds]).toEqual([3, []]);
    const started = await startedFor(key, 1);
    expect(started).toHaveLength(1);
    expect(await job(started[0]!.jobId)).toMatchObject({ status: 'PLANNED', startedEventPublished: true });
  });

  it('overwriting the object starts a new job with a fresh count; same bytes again reuse the cached count', async () => {
    // Prepare
    const key = 'inbound/overwritten.csv';
    const v1 = 'id,v\n1,a\n2,b\n3,c\n';
    const v2 = 'id,v\n1,a\n2,"b\nb"\n3,c\n4,d\n5,e\n';
    const p1 = await put(key, v1);
    await drainPlanner();
    const [s1] = await startedFor(key, 1);
    const hitsBefore = sink.values('CacheHits').length;

    // Act
    const p2 = await put(key, v2);
    await drainPlanner();
    const [s2] = await startedFor(key, 1);
    const p3 = await put(key, v1);
    await drainPlanner();
    const [s3] = await startedFor(key, 1);

    // Assess
    expect(s1).toMatchObject({ etag: p1.etag, versionId: p1.versionId, totalRows: pythonRowCount(v1) });
    expect(s2).toMatchObject({ etag: p2.etag, versionId: p2.versionId, totalRows: pythonRowCount(v2) });
    expect(s2!.totalRows).not.toBe(s1!.totalRows);
    expect(p2.etag).not.toBe(p1.etag);
    // Same bytes, new version: a new job (the version is new) but no second read (the ETag is not).
    expect(p3.etag).toBe(p1.etag);
    expect(s3).toMatchObject({ etag: p1.etag, versionId: p3.versionId, totalRows: s1!.totalRows });
    expect(new Set([s1!.jobId, s2!.jobId, s3!.jobId]).size).toBe(3);
    expect(sink.values('CacheHits').length - hitsBefore).toBe(1);
    expect(await cacheItem(key, p1.etag)).toMatchObject({ totalRows: 3 });
    expect(await cacheItem(key, p2.etag)).toMatchObject({ totalRows: 5 });
    for (const s of [s1!, s2!, s3!]) expect((await job(s.jobId))?.status).toBe('PLANNED');
  });

  describe('bad input becomes JobRejected.v1, a REJECTED record and an acknowledged message', () => {
    const cases: {
      name: string;
      key: string;
      prepare: (key: string) => Promise<unknown>;
      reason: JobRejected['reason'];
      message: RegExp;
      position?: JobRejected['position'];
    }[] = [
      {
        name: 'a zero-byte object',
        key: 'inbound/bad/empty.csv',
        prepare: (key) => put(key, ''),
        reason: 'EMPTY_OBJECT',
        message: /empty \(0 bytes\)/,
        position: { byte: 0 },
      },
      {
        name: 'only blank lines',
        key: 'inbound/bad/blank.csv',
        prepare: (key) => put(key, '\ufeff\r\n\n\r\n'),
        reason: 'NO_HEADER',
        message: /no header row.*\(8 bytes\)/,
        position: { row: 0, byte: 8 },
      },
      {
        name: 'binary data',
        key: 'inbound/bad/binary.csv',
        prepare: (key) =>
          put(key, Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13)),
        reason: 'NOT_TEXT',
        message: /NUL byte at byte 8/,
        position: { row: 0, byte: 8 },
      },
      {
        name: 'a header that is not UTF-8 (Latin-1)',
        key: 'inbound/bad/latin1.csv',
        // "id,café\n1,2\n" saved as Latin-1: é is the lone byte 0xe9 at offset 6.
        prepare: (key) => put(key, Buffer.from('id,café\n1,2\n', 'latin1')),
        reason: 'NOT_TEXT',
        message: /not valid UTF-8 at byte 6/,
        position: { row: 0, byte: 6 },
      },
      {
        name: 'an object deleted (that version) before the planner runs',
        key: 'inbound/bad/vanished.csv',
        prepare: async (key) => {
          const { versionId } = await put(key, 'a\n1\n');
          await aws.s3.send(
            new DeleteObjectCommand({ Bucket: outputs.bucket, Key: key, VersionId: versionId ?? undefined }),
          );
        },
        reason: 'OBJECT_NOT_FOUND',
        message: /vanished\.csv.*no longer exists/,
      },
      {
        // A plain DELETE in the versioned bucket keeps the notified version readable behind a delete
        // marker: the uploader meant it gone, so it is not streamed.
        name: 'an object deleted with a plain DELETE (a delete marker) before the planner runs',
        key: 'inbound/bad/delete-marker.csv',
        prepare: async (key) => {
          const { versionId } = await put(key, 'a\n1\n');
          expect(versionId).toBeTruthy();
          const del = await aws.s3.send(new DeleteObjectCommand({ Bucket: outputs.bucket, Key: key }));
          expect(del.DeleteMarker).toBe(true);
        },
        reason: 'OBJECT_NOT_FOUND',
        message: /delete-marker\.csv \(version [^)]+\) no longer exists: it was deleted/,
      },
      {
        // A notification for a key that does not exist at all (no version): HEAD answers 404.
        name: 'a notification for an object that is not there at all',
        key: 'inbound/bad/never-there.csv',
        prepare: (key) =>
          aws.sqs.send(
            new SendMessageCommand({
              QueueUrl: outputs.queues.planner.url,
              MessageBody: JSON.stringify({
                Records: [
                  {
                    eventSource: 'aws:s3',
                    eventName: 'ObjectCreated:Put',
                    s3: {
                      bucket: { name: outputs.bucket },
                      object: {
                        key: encodeURIComponent(key),
                        size: 4,
                        eTag: 'd41d8cd98f00b204e9800998ecf8427e',
                      },
                    },
                  },
                ],
              }),
            }),
          ),
        reason: 'OBJECT_NOT_FOUND',
        message: /never-there\.csv no longer exists/,
      },
      {
        // The console's "Create folder": an empty object whose key ends in /.
        name: 'a folder marker',
        key: 'inbound/bad/folder/',
        prepare: (key) => put(key, ''),
        reason: 'NOT_CSV',
        message: /^a folder marker \(key ending in \/\) is not a file/,
      },
      {
        name: 'a compressed file',
        key: 'inbound/bad/orders.csv.zst',
        prepare: (key) => put(key, Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0)),
        reason: 'NOT_CSV',
        message: /^compressed files \(\.zst\) are not supported: upload the plain \.csv/,
      },
      {
        name: 'a key without .csv',
        key: 'inbound/bad/orders.txt',
        prepare: (key) => put(key, 'id\n1\n'),
        reason: 'NOT_CSV',
        message: /^only keys ending in \.csv are read/,
      },
    ];

    // Prepare and Act once for all cases (one drain, one read of each queue), Assess per case: the
    // objects have distinct keys, and five separate drains would cost ~12 s of idle polling.
    let run: Awaited<ReturnType<typeof drainPlanner>>;
    let rejected: JobRejected[] = [];
    let started: JobStarted[] = [];
    beforeAll(async () => {
      // Prepare
      for (const c of cases) await c.prepare(c.key);
      // Act
      run = await drainPlanner();
      const keys = new Set(cases.map((c) => c.key));
      const ours = (ms: readonly Message[]) =>
        envelopes<JobRejected>(ms, 'JobRejected.v1').filter((e) => keys.has(e.detail.key));
      const got = await take(
        aws.sqs,
        outputs.queues.alarmRouter.url,
        (m) => ours(m).length >= cases.length,
        8000,
      );
      rejected = ours([...got, ...(await takeAll(outputs.queues.alarmRouter.url, 1000))]).map(
        (e) => e.detail,
      );
      started = envelopes<JobStarted>(await takeAll(outputs.queues.producer.url, 500), 'JobStarted.v1')
        .map((e) => e.detail)
        .filter((d) => keys.has(d.key));
    });

    it('acknowledges every message: no failure, planner queue and its DLQ empty, no JobStarted', async () => {
      expect(run.failedIds).toEqual([]);
      expect(run.received).toBeGreaterThanOrEqual(cases.length);
      expect(await queueDepth(outputs.queues.planner.url)).toBe(0);
      expect(await queueDepth(outputs.queues.planner.dlqUrl!)).toBe(0);
      expect(started).toEqual([]);
    });

    for (const c of cases) {
      it(`rejects ${c.name} with ${c.reason}`, async () => {
        const mine = rejected.filter((r) => r.key === c.key);
        expect(mine).toHaveLength(1);
        const [r] = mine;
        expect(r).toMatchObject({ bucket: outputs.bucket, key: c.key, reason: c.reason });
        expect(r!.message).toMatch(c.message);
        if (c.position) expect(r!.position).toEqual(c.position);
        expect(await job(r!.jobId)).toMatchObject({
          status: 'REJECTED',
          rejection: { reason: c.reason, message: r!.message },
        });
      });
    }
  });

  describe('per-object options from S3 metadata', () => {
    it('carries x-amz-meta-rowstream-topic and -rowstream-key-column into JobStarted', async () => {
      // Prepare
      const key = 'inbound/options/keyed.csv';
      await put(key, 'customer,amount\nc1,10\nc2,20\n', {
        'rowstream-topic': 'orders.keyed',
        'rowstream-key-column': 'customer',
      });

      // Act
      await drainPlanner();

      // Assess
      const [started, ...others] = await startedFor(key, 1);
      expect(others).toEqual([]);
      expect(started).toMatchObject({
        topic: 'orders.keyed',
        options: { keyColumn: 'customer', format: 'json' },
        totalRows: 2,
      });
      expect(await job(started!.jobId)).toMatchObject({ topic: 'orders.keyed' });
    });

    it('rejects a key column that is not in the header with BAD_OPTIONS', async () => {
      // Prepare
      const key = 'inbound/options/bad-key.csv';
      await put(key, 'customer,amount\nc1,10\n', { 'rowstream-key-column': 'order_id' });

      // Act
      const run = await drainPlanner();

      // Assess
      expect(run.failedIds).toEqual([]);
      const [r, ...others] = await rejectedFor(key, 1);
      expect(others).toEqual([]);
      expect(r).toMatchObject({ reason: 'BAD_OPTIONS' });
      // The option by name, never the header's names (row data when a file has no header row)
      expect(r!.message).toBe('rowstream-key-column does not name a column of the header (2 columns)');
      expect((await job(r!.jobId))?.status).toBe('REJECTED');
      expect(await startedFor(key, 0, 500)).toEqual([]);
    });
  });

  describe('transient failures go back to the queue and end in its DLQ', () => {
    /** A queue like the planner queue, but with visibility 1 s and maxReceiveCount 2. */
    async function shortQueue(name: string) {
      const dlq = await aws.sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
      const dlqUrl = dlq.QueueUrl!;
      extraQueues.push(dlqUrl);
      const dlqArn = (
        await aws.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))
      ).Attributes!.QueueArn!;
      const q = await aws.sqs.send(
        new CreateQueueCommand({
          QueueName: name,
          Attributes: {
            VisibilityTimeout: '1',
            RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }),
          },
        }),
      );
      extraQueues.push(q.QueueUrl!);
      return { url: q.QueueUrl!, dlqUrl };
    }

    it('moves a junk message to the DLQ after 2 receives while a good one in the same batch is planned', async () => {
      // Prepare
      const q = await shortQueue(`${outputs.stage}-planner-junk`);
      const key = 'inbound/dlq/good.csv';
      await put(key, 'x\n1\n');
      const [notification] = await take(
        aws.sqs,
        outputs.queues.planner.url,
        (m) => m.some((x) => (x.Body ?? '').includes('good.csv')),
        5000,
      );
      await aws.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: '{"not":"an S3 event"}' }));
      await aws.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: notification!.Body! }));

      // Act: keep polling past two visibility timeouts
      const run = await drainPlanner(q.url, planner.handler, 3);

      // Assess
      expect(run.deleted).toBe(1);
      expect(run.failed).toBe(2);
      const dead = await take(aws.sqs, q.dlqUrl, (m) => m.length >= 1, 5000);
      expect(dead.map((m) => m.Body)).toEqual(['{"not":"an S3 event"}']);
      expect(await queueDepth(q.url)).toBe(0);
      const started = await startedFor(key, 1);
      expect(started).toHaveLength(1);
      expect(sink.values('PlannerErrors').length).toBeGreaterThanOrEqual(2);
    });

    it('moves a notification to the DLQ when S3 keeps failing, with no job, no JobStarted, no JobRejected', async () => {
      // Prepare
      const q = await shortQueue(`${outputs.stage}-planner-s3down`);
      const key = 'inbound/dlq/s3-down.csv';
      const version = await put(key, 'x\n1\n');
      const [notification] = await take(
        aws.sqs,
        outputs.queues.planner.url,
        (m) => m.some((x) => (x.Body ?? '').includes('s3-down.csv')),
        5000,
      );
      await aws.sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: notification!.Body! }));
      let heads = 0;
      const broken: ObjectStorePort = {
        ...planner.deps.store,
        async head() {
          heads++;
          throw Object.assign(new Error('We encountered an internal error. Please try again.'), {
            name: 'InternalError',
            $fault: 'server',
          });
        },
      };
      const failing = plannerFromDeps({ ...planner.deps, store: broken });

      // Act
      const run = await drainPlanner(q.url, failing.handler, 3);

      // Assess
      expect([run.received, run.deleted]).toEqual([2, 0]);
      expect(heads).toBe(2);
      const dead = await take(aws.sqs, q.dlqUrl, (m) => m.length >= 1, 5000);
      expect(dead.map((m) => m.Body)).toEqual([notification!.Body]);
      expect(await queueDepth(q.url)).toBe(0);
      expect(await startedFor(key, 0, 500)).toEqual([]);
      expect(await rejectedFor(key, 0, 500)).toEqual([]);
      expect(await job(jobIdFor(outputs.bucket, key, version))).toBeNull();
    });
  });
});
