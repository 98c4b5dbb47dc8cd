import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { JobStatus } from '../../../events/catalog.ts';
import { countJobsByStatus, jobsByStatus } from '../../shared/jobs-table.ts';
import { retry } from '../../shared/retry.ts';
import { UnprocessedKeysError } from '../errors.ts';
import type { InventoryJobsPort } from '../ports.ts';

const BATCH_GET_MAX = 100;
// BatchGetItem hands back what it could not read under throttling; those keys are asked again.
const UNPROCESSED_RETRY = { attempts: 10, baseMs: 100, maxMs: 2000 } as const;

/** {@link InventoryJobsPort} over the jobs table and its GSI byStatus; never a scan. */
export function dynamoInventoryJobs(doc: DynamoDBDocumentClient, table: string): InventoryJobsPort {
  return {
    countByStatus: (status) => countJobsByStatus(doc, table, status),
    async rowsDeliveredSince(status, updatedAfter) {
      let rows = 0;
      for await (const item of jobsByStatus(doc, table, status, {
        updatedAfter,
        projection: 'rowsDelivered',
      })) {
        rows += typeof item.rowsDelivered === 'number' ? item.rowsDelivered : 0;
      }
      return rows;
    },
    async statuses(jobIds) {
      const found = new Map<string, JobStatus>();
      const unique = [...new Set(jobIds)];
      for (let i = 0; i < unique.length; i += BATCH_GET_MAX) {
        let keys = unique.slice(i, i + BATCH_GET_MAX).map((jobId): Record<string, unknown> => ({ jobId }));
        await retry(
          async () => {
            const out = await doc.send(
              new BatchGetCommand({
                RequestItems: {
                  [table]: {
                    Keys: keys,
                    ProjectionExpression: 'jobId, #s',
                    ExpressionAttributeNames: { '#s': 'status' },
                  },
                },
              }),
            );
            for (const item of out.Responses?.[table] ?? [])
              found.set(String(item.jobId), item.status as JobStatus);
            keys = (out.UnprocessedKeys?.[table]?.Keys as Record<string, unknown>[] | undefined) ?? [];
            if (keys.length > 0) throw new UnprocessedKeysError(keys.length);
          },
          { ...UNPROCESSED_RETRY, isRetryable: (e) => e instanceof UnprocessedKeysError },
        );
      }
      return found;
    },
  };
}
