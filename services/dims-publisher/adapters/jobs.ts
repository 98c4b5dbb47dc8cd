import { BatchGetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { JobStatus } from '../../../events/catalog.ts';
import { countJobsByStatus, jobsByStatus } from '../../shared/jobs-table.ts';
import type { InventoryJobsPort } from '../core.ts';

const BATCH_GET_MAX = 100;

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
        let keys: Record<string, unknown>[] | undefined = unique
          .slice(i, i + BATCH_GET_MAX)
          .map((jobId) => ({ jobId }));
        for (let attempt = 0; keys && keys.length > 0; attempt++) {
          if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(2000, 50 * 2 ** attempt)));
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
          keys = out.UnprocessedKeys?.[table]?.Keys as Record<string, unknown>[] | undefined;
          if (attempt > 8 && keys?.length)
            throw new Error(`BatchGetItem left ${keys.length} keys unprocessed after retries`);
        }
      }
      return found;
    },
  };
}
