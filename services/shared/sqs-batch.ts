import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { MetricsPort } from './metrics.ts';

/** The fields of an SQS record a consumer reads: every aws-lambda `SQSRecord` is one. */
export type SqsMessage = Pick<SQSRecord, 'messageId' | 'body'>;
/** An SQS event as far as a consumer reads it: every aws-lambda `SQSEvent` is one. */
export type SqsMessages = { readonly Records: SqsMessage[] } & Partial<Omit<SQSEvent, 'Records'>>;
export type { SQSBatchResponse };

export interface SqsBatchOptions {
  /** Told about each record that failed before it goes back to the queue (log it, count it). */
  readonly onRecordError: (record: SqsMessage, error: unknown) => void;
  /** Flushed after every batch: Lambda freezes the process after returning, buffered metrics would be lost. */
  readonly metrics: MetricsPort;
}

/**
 * An SQS Lambda handler with partial batch responses (Powertools BatchProcessor): a record whose
 * processing throws is reported in `batchItemFailures` and comes back from the queue (ending in its
 * DLQ after maxReceiveCount); the others are deleted.
 */
export function sqsBatchHandler(
  processRecord: (record: SqsMessage) => Promise<unknown>,
  options: SqsBatchOptions,
): (event: SqsMessages, context?: unknown) => Promise<SQSBatchResponse> {
  const processor = new BatchProcessor(EventType.SQS);
  const recordHandler = async (record: SqsMessage) => {
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
      })) as SQSBatchResponse;
    } finally {
      await options.metrics.flush();
    }
  };
}
