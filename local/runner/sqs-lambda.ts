/**
 * Runs a Lambda-style SQS handler locally the way the Lambda SQS event source mapping does: long-poll,
 * hand the batch to the handler as an SQSEvent, delete the messages that succeeded. Messages listed in
 * `batchItemFailures` (or the whole batch, when the handler throws or answers something else) are left
 * alone: they come back after the queue's visibility timeout and move to the DLQ after maxReceiveCount,
 * exactly as in AWS.
 */
import {
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/** The SQSRecord shape of aws-lambda, built from a received message. */
export interface SqsLambdaRecord {
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly body: string;
  readonly attributes: Record<string, string>;
  readonly messageAttributes: Record<string, unknown>;
  readonly md5OfBody: string;
  readonly eventSource: 'aws:sqs';
  readonly eventSourceARN: string;
  readonly awsRegion: string;
}

export interface SqsLambdaEvent {
  readonly Records: SqsLambdaRecord[];
}

/** Enough of the Lambda context for Powertools and handlers that log the request id. */
export interface LambdaContextLike {
  readonly functionName: string;
  readonly awsRequestId: string;
  readonly invokedFunctionArn: string;
  readonly memoryLimitInMB: string;
  readonly functionVersion: string;
  readonly callbackWaitsForEmptyEventLoop: boolean;
  getRemainingTimeInMillis(): number;
}

export type SqsLambdaHandler = (event: SqsLambdaEvent, context: LambdaContextLike) => Promise<unknown>;

export interface RunSqsLambdaOptions {
  readonly queueUrl: string;
  readonly handler: SqsLambdaHandler;
  readonly sqs: SQSClient;
  /** Abort to stop after the current batch. */
  readonly signal: AbortSignal;
  readonly batchSize?: number;
  readonly waitSeconds?: number;
  /** Lambda's timeout, reported by getRemainingTimeInMillis. */
  readonly timeoutMs?: number;
  readonly functionName?: string;
  /** Stop after this many empty receives in a row (tests: "drain the queue"); default: never. */
  readonly stopWhenIdle?: number;
  /** Told about each batch (tests, progress lines). */
  readonly onBatch?: (summary: BatchSummary) => void;
  /** Told about receive/delete errors; the loop keeps going after a pause. */
  readonly onError?: (error: unknown) => void;
}

export interface BatchSummary {
  readonly received: number;
  readonly deleted: number;
  readonly failed: readonly string[];
  readonly handlerError: unknown;
}

export interface RunSummary {
  readonly batches: number;
  readonly received: number;
  readonly deleted: number;
  readonly failed: number;
}

/** Polls until the signal aborts (or the queue stays idle, with `stopWhenIdle`). */
export async function runSqsLambda(options: RunSqsLambdaOptions): Promise<RunSummary> {
  const { queueUrl, sqs, signal } = options;
  const batchSize = Math.min(10, Math.max(1, options.batchSize ?? 10));
  const waitSeconds = Math.min(20, Math.max(0, options.waitSeconds ?? 10));
  const arn = queueArnFromUrl(queueUrl, await sqs.config.region());
  const totals = { batches: 0, received: 0, deleted: 0, failed: 0 };
  let idle = 0;
  while (!signal.aborted) {
    let messages: Message[];
    try {
      const out = await sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: batchSize,
          WaitTimeSeconds: waitSeconds,
          MessageSystemAttributeNames: ['All'],
          MessageAttributeNames: ['All'],
        }),
        { abortSignal: signal },
      );
      messages = out.Messages ?? [];
    } catch (error) {
      if (signal.aborted) break;
      options.onError?.(error);
      await pause(1000, signal);
      continue;
    }
    if (messages.length === 0) {
      idle++;
      if (options.stopWhenIdle !== undefined && idle >= options.stopWhenIdle) break;
      continue;
    }
    idle = 0;
    const summary = await invoke(options, arn, messages);
    totals.batches++;
    totals.received += summary.received;
    totals.deleted += summary.deleted;
    totals.failed += summary.failed.length;
    options.onBatch?.(summary);
  }
  return totals;
}

/** Delivers one received batch to the handler and deletes what succeeded. Exported for tests. */
export async function invoke(
  options: Pick<
    RunSqsLambdaOptions,
    'queueUrl' | 'handler' | 'sqs' | 'timeoutMs' | 'functionName' | 'onError'
  >,
  queueArn: string,
  messages: readonly Message[],
): Promise<BatchSummary> {
  const region = queueArn.split(':')[3] ?? 'us-east-1';
  const records = messages.map((m) => toRecord(m, queueArn, region));
  const started = Date.now();
  const timeoutMs = options.timeoutMs ?? 300_000;
  const context: LambdaContextLike = {
    functionName: options.functionName ?? 'rowstream-local',
    awsRequestId: `local-${started.toString(36)}-${Math.random().toString(36).slice(2, 10)}`,
    invokedFunctionArn: `arn:aws:lambda:${region}:000000000000:function:${options.functionName ?? 'rowstream-local'}`,
    memoryLimitInMB: '1024',
    functionVersion: '$LATEST',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
  };
  let failedIds: Set<string>;
  let handlerError: unknown = null;
  try {
    const response = await options.handler({ Records: records }, context);
    failedIds = failuresOf(response, records);
  } catch (error) {
    // Lambda: a thrown handler error fails the whole batch.
    handlerError = error;
    failedIds = new Set(records.map((r) => r.messageId));
  }
  const toDelete = messages.filter((m) => m.MessageId && !failedIds.has(m.MessageId) && m.ReceiptHandle);
  let deleted = 0;
  if (toDelete.length > 0) {
    try {
      const out = await options.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: options.queueUrl,
          Entries: toDelete.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
        }),
      );
      deleted = out.Successful?.length ?? 0;
      if (out.Failed?.length)
        options.onError?.(new Error(`delete failed for ${out.Failed.length} message(s)`));
    } catch (error) {
      // Not deleted = delivered again later; the handlers are idempotent.
      options.onError?.(error);
    }
  }
  return { received: messages.length, deleted, failed: [...failedIds], handlerError };
}

function failuresOf(response: unknown, records: readonly SqsLambdaRecord[]): Set<string> {
  if (response === undefined || response === null) return new Set();
  const items = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (items === undefined) return new Set();
  if (!Array.isArray(items)) return new Set(records.map((r) => r.messageId));
  const known = new Set(records.map((r) => r.messageId));
  const ids = new Set<string>();
  for (const it of items) {
    const id = (it as { itemIdentifier?: unknown })?.itemIdentifier;
    // Lambda treats an empty or unknown identifier as a failure of the whole batch.
    if (typeof id !== 'string' || !known.has(id)) return new Set(known);
    ids.add(id);
  }
  return ids;
}

function toRecord(m: Message, arn: string, region: string): SqsLambdaRecord {
  return {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes: { ...(m.Attributes ?? {}) },
    messageAttributes: { ...(m.MessageAttributes ?? {}) },
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: arn,
    awsRegion: region,
  };
}

/** https://sqs.<region>.amazonaws.com/<account>/<name> or http://host:port/<account>/<name>. */
export function queueArnFromUrl(url: string, region: string): string {
  const parts = new URL(url).pathname.split('/').filter(Boolean);
  const name = parts.at(-1) ?? 'queue';
  const account = parts.at(-2) ?? '000000000000';
  return `arn:aws:sqs:${region}:${account}:${name}`;
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
