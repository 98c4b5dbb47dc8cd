/**
 * Helpers shared by the producer's integration tests, the chaos test and the benchmark: upload a CSV,
 * describe it as the planner would (JobStarted.v1), run producer processes, read a topic back with an
 * independent reader (read_committed, decided from the log's markers: committed.ts), wait for job states.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { Upload } from '@aws-sdk/lib-storage';
import { type Admin, Kafka, logLevel } from 'kafkajs';
import type { JobOptions, JobStarted, JobStartedEvent } from '../events/catalog.ts';
import { eventIdFor, jobIdFor } from '../events/ids.ts';
import { PRODUCER_NODE_FLAGS } from '../scripts/build-producer.ts';
import { type JobRecord, recordFromJobStarted } from '../services/shared/jobs.ts';
import { readCommitted } from './committed.ts';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Header fields and the byte offset of the first data row (after BOM and the header record). */
export function describeCsv(head: Buffer, delimiter = ','): { header: string[]; dataOffset: number } {
  let start = 0;
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) start = 3;
  // Empty lines before the header are not records.
  while (head[start] === 0x0a || (head[start] === 0x0d && head[start + 1] === 0x0a))
    start += head[start] === 0x0a ? 1 : 2;
  let inQ = false;
  let i = start;
  for (; i < head.length; i++) {
    const b = head[i];
    if (b === 0x22) inQ = !inQ;
    else if (b === 0x0a && !inQ) break;
  }
  let line = head.subarray(start, i).toString('utf8');
  if (line.endsWith('\r')) line = line.slice(0, -1);
  return { header: line.split(delimiter).map((h) => h.replace(/^"|"$/g, '')), dataOffset: i + 1 };
}

export interface UploadedJob {
  readonly job: JobStarted;
}

/** Uploads `body` (or a file path via `stream`) and builds the JobStarted the planner would publish. */
export async function uploadJob(
  s3: S3Client,
  bucket: string,
  key: string,
  body: Buffer | { path: string; size: number; head: Buffer },
  opts: { topic: string; totalRows: number; options?: Partial<JobOptions> },
): Promise<JobStarted> {
  let etag: string;
  let size: number;
  let head: Buffer;
  if (Buffer.isBuffer(body)) {
    const out = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    etag = (out.ETag ?? '').replaceAll('"', '');
    size = body.length;
    head = body.subarray(0, 64 * 1024);
  } else {
    const { createReadStream } = await import('node:fs');
    const up = new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: createReadStream(body.path) },
      partSize: 64 * 1024 * 1024,
      queueSize: 2,
    });
    const out = await up.done();
    etag = (out.ETag ?? '').replaceAll('"', '');
    size = body.size;
    head = body.head;
  }
  const { header, dataOffset } = describeCsv(head, opts.options?.delimiter ?? ',');
  const jobId = jobIdFor(bucket, key, { versionId: null, etag });
  return {
    eventId: eventIdFor('JobStarted', jobId),
    occurredAt: new Date().toISOString(),
    jobId,
    bucket,
    key,
    etag,
    versionId: null,
    sourceUri: `s3://${bucket}/${key}`,
    size,
    totalRows: opts.totalRows,
    header,
    dataOffset,
    topic: opts.topic,
    options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: false, ...opts.options },
  };
}

/**
 * Writes the job record as the planner does (PLANNED, event published); an existing record is kept.
 * The producer acts only on a JobStarted whose job the planner recorded.
 */
export async function planJob(
  doc: DynamoDBDocumentClient,
  table: string,
  job: JobStartedEvent,
): Promise<void> {
  const record: JobRecord = {
    ...recordFromJobStarted(job, 'PLANNED', job.occurredAt),
    startedEventPublished: true,
  };
  await doc
    .send(
      new PutCommand({ TableName: table, Item: record, ConditionExpression: 'attribute_not_exists(jobId)' }),
    )
    .catch((e: unknown) => {
      if ((e as Error).name !== 'ConditionalCheckFailedException') throw e;
    });
}

/**
 * Puts a JobStarted on the producer queue as the bus rule would (EventBridge envelope as the body),
 * after writing the planner's job record when `plan` is given (what the planner does before publishing).
 */
export async function sendJobStarted(
  sqs: SQSClient,
  queueUrl: string,
  job: JobStartedEvent,
  plan?: { doc: DynamoDBDocumentClient; table: string },
): Promise<void> {
  if (plan) await planJob(plan.doc, plan.table, job);
  const envelope = {
    version: '0',
    id: `${job.eventId}-${Date.now()}`,
    'detail-type': 'JobStarted.v1',
    source: 'rowstream.planner',
    account: '000000000000',
    time: new Date().toISOString(),
    region: 'us-east-1',
    resources: [],
    detail: job,
  };
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(envelope) }));
}

export interface ProducerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when a log line matching `re` appears. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts `tsx services/producer/main.ts` with the given environment; logs go to `logFile`. */
/**
 * Starts the producer service as a process: the sources through tsx, or `opts.bundle`, the file
 * `npm run build:producer` writes (what the image runs).
 */
export function startProducer(
  env: Record<string, string>,
  logFile: string,
  opts: { bundle?: string } = {},
): ProducerProcess {
  const args = opts.bundle
    ? [...PRODUCER_NODE_FLAGS, opts.bundle]
    : ['--import', 'tsx', join(REPO, 'services/producer/main.ts')];
  const child = spawn(process.execPath, args, {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out: WriteStream | null = null;
  void mkdir(dirname(logFile), { recursive: true }).then(() => {
    out = createWriteStream(logFile, { flags: 'a' });
  });
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let tail = '';
  const onData = (d: Buffer) => {
    out?.write(d);
    tail += d.toString();
    const lines = tail.split('\n');
    tail = lines.pop() ?? '';
    for (const line of lines) {
      for (let i = waiters.length - 1; i >= 0; i--) {
        const w = waiters[i]!;
        if (w.re.test(line)) {
          waiters.splice(i, 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      out?.end();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    exited,
    waitForLog(re, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(
          () => reject(new Error(`no log line matching ${re} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
    kill(signal) {
      child.kill(signal);
    },
  };
}

export async function getJob(doc: DynamoDBDocumentClient, table: string, jobId: string) {
  const out = await doc.send(new GetCommand({ TableName: table, Key: { jobId }, ConsistentRead: true }));
  return out.Item as JobRecord | undefined;
}

export async function waitForJob(
  doc: DynamoDBDocumentClient,
  table: string,
  jobId: string,
  done: (r: JobRecord) => boolean,
  timeoutMs = 120_000,
): Promise<JobRecord> {
  const deadline = Date.now() + timeoutMs;
  let last: JobRecord | undefined;
  while (Date.now() < deadline) {
    last = await getJob(doc, table, jobId);
    if (last && done(last)) return last;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `job ${jobId} not done within ${timeoutMs} ms; last: ${JSON.stringify(last)?.slice(0, 800)}`,
  );
}

export interface TopicRecord {
  readonly partition: number;
  readonly offset: string;
  readonly key: string | null;
  readonly value: string;
  /** The value's bytes (Avro records are not text). */
  readonly bytes: Buffer;
  readonly headers: Record<string, string>;
}

/**
 * The sum of a topic's partition end offsets (records and transaction markers, aborted ones included):
 * how far writing has gone, whatever has committed. 0 when it cannot be read (not created yet).
 */
export async function topicEndOffset(admin: Admin, topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
  return offsets.reduce((sum, p) => sum + Number(p.high), 0);
}

/**
 * Deletes topics a bench or chaos run wrote (best effort: a failure is printed, not thrown). The local
 * broker keeps every topic until it is deleted: left behind, the 1M- to 20M-row topics of benches and
 * chaos runs grew `.local/kafka/data` to 59 GB over a few sessions and filled the disk.
 */
export async function deleteTopics(brokers: readonly string[], topics: readonly string[]): Promise<void> {
  if (topics.length === 0) return;
  const admin = new Kafka({
    clientId: 'rowstream-cleanup',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
  }).admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: [...topics], timeout: 30_000 });
  } catch (e) {
    console.error(`could not delete topics ${topics.join(', ')}: ${(e as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/**
 * Reads a whole topic read_committed, partition by partition in offset order, up to its end as of the
 * call: testkit/committed.ts decides which transactions committed from the log's own control markers
 * (Kafka's rule), not through a client's aborted-transaction filter, and shares no code with the
 * producer's resume scan.
 */
export async function readTopic(
  brokers: readonly string[],
  topic: string,
  timeoutMs = 120_000,
  /** When given, records are handed over one by one and not kept (big topics). */
  visit?: (r: TopicRecord) => void,
): Promise<TopicRecord[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`topic ${topic} not read to the end in ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([readCommitted(brokers, topic, visit), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `rowstream-row` headers in topic order, per partition concatenated. */
export const rowsOf = (records: readonly TopicRecord[]) =>
  records.map((r) => Number(r.headers['rowstream-row']));
