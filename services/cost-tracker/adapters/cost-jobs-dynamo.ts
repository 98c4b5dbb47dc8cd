import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { JobStatus } from '../../../events/catalog.ts';
import { JobRecord } from '../../shared/jobs.ts';
import { jobsByStatus } from '../../shared/jobs-table.ts';
import type { Log } from '../../shared/logger.ts';
import type { CostJobsPort } from '../ports.ts';

/** {@link CostJobsPort} over the jobs table and its GSI byStatus (status, updatedAt; projection ALL). */
export function dynamoCostJobs(doc: DynamoDBDocumentClient, table: string, log: Log): CostJobsPort {
  return {
    async *byStatus(status: JobStatus, options = {}) {
      const query = options.updatedAfter ? { updatedAfter: options.updatedAfter } : {};
      for await (const item of jobsByStatus(doc, table, status, query)) {
        const job = JobRecord.safeParse(item);
        // One malformed record must not stop the estimates of the others.
        if (job.success) yield job.data;
        else
          log.warn('job record does not match JobRecord; skipped', {
            jobId: item.jobId,
            issues: job.error.message,
          });
      }
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
