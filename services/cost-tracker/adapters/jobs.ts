import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { JobStatus } from '../../../events/catalog.ts';
import { JobRecord } from '../../shared/jobs.ts';
import type { JobsPort, LogPort } from '../core.ts';

/** {@link JobsPort} over the jobs table and its GSI byStatus (status, updatedAt; projection ALL). */
export function dynamoJobs(doc: DynamoDBDocumentClient, table: string, log: LogPort): JobsPort {
  return {
    async *byStatus(status: JobStatus, options = {}) {
      let startKey: Record<string, unknown> | undefined;
      do {
        const out = await doc.send(
          new QueryCommand({
            TableName: table,
            IndexName: 'byStatus',
            KeyConditionExpression: options.updatedAfter ? '#s = :s AND updatedAt > :after' : '#s = :s',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: {
              ':s': status,
              ...(options.updatedAfter ? { ':after': options.updatedAfter } : {}),
            },
            ExclusiveStartKey: startKey,
          }),
        );
        for (const item of out.Items ?? []) {
          const job = JobRecord.safeParse(item);
          // One malformed record must not stop the estimates of the others.
          if (job.success) yield job.data;
          else
            log.warn('job record does not match JobRecord; skipped', {
              jobId: item.jobId,
              issues: job.error.message,
            });
        }
        startKey = out.LastEvaluatedKey;
      } while (startKey);
    },
    async setCost(jobId, cost) {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { jobId },
          UpdateExpression:
            cost.finalCostUsd === undefined
              ? 'SET estimatedCostUsd = :e, costUpdatedAt = :t'
              : 'SET estimatedCostUsd = :e, costUpdatedAt = :t, finalCostUsd = :f',
          // Never create a record that does not exist (a job deleted in between).
          ConditionExpression: 'attribute_exists(jobId)',
          ExpressionAttributeValues: {
            ':e': cost.estimatedCostUsd,
            ':t': cost.costUpdatedAt,
            ...(cost.finalCostUsd === undefined ? {} : { ':f': cost.finalCostUsd }),
          },
        }),
      );
    },
  };
}
