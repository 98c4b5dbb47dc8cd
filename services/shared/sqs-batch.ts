import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { MetricsPort } from './metrics.ts';

/** The minimum of an SQS record a consumer reads (structurally an aws-lambda SQSRecord). */
export interface SqsRecordLike {
  readonly messageId: string;
  readonly body: string;
}
export interface SqsEventLike {
  readonly Records: SqsRecordLike[];
}
export interface BatchResponse {
  batchItemFailures: { itemIdentifier: string }[];
}

export interface SqsBatchOptions {
  /** Told about each record that failed before it goes back to the queue (log it, count it). */
  readonly onRecordError: (record: SqsRecordLike, error: unknown) => void;
  /** Flushed after every batch: Lambda freezes the process after returning, buffered metrics would be lost. */
  readonly metrics: MetricsPort;
}

/**
 * An SQS Lambda handler with partial batch responses (Powertools BatchProcessor): a record whose
 * processing throws is reported in `batchItemFailures` and comes back from the queue (ending in its
 * DLQ after maxReceiveCount); the others are deleted.
 */
export function sqsBatchHandler(
  processRecord: (record: SqsRecordLike) => Promise<unknown>,
  options: SqsBatchOptions,
): (event: SqsEventLike, context?: unknown) => Promise<BatchResponse> {
  const processor = new BatchProcessor(EventType.SQS);
  const recordHandler = async (record: SqsRecordLike) => {
    try {
      return await processRecord(record);
    } catch (e) {
      options.onRecordError(record, e);
      throw e;
    }
  };
  return async (event, context) => {
    try {
      return (await processPartialResponse(event, recordHandler, processor, {
        ...(context ? { context: context as never } : {}),
        // A batch where every record failed is still answered record by record, like a partial one.
        throwOnFullBatchFailure: false,
      })) as BatchResponse;
    } finally {
      await options.metrics.flush();
    }
  };
}
