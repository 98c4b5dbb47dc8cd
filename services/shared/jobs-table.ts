import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { JobStatus } from '../../events/catalog.ts';

/** The GSI of the jobs table that serves every "jobs in status S" question (never a scan). */
export const JOBS_BY_STATUS_INDEX = 'byStatus' as const;

export interface ByStatusQuery {
  /** Only jobs whose updatedAt is later than this ISO time (a key condition on the GSI sort key). */
  readonly updatedAfter?: string;
  readonly newestFirst?: boolean;
  /** Stop after this many items. */
  readonly limit?: number;
  readonly projection?: string;
}

/**
 * The items of the jobs GSI `byStatus` for one status, page by page (constant memory).
 *
 * @example for await (const item of jobsByStatus(doc, table, 'RUNNING')) ...
 */
export async function* jobsByStatus(
  doc: DynamoDBDocumentClient,
  table: string,
  status: JobStatus,
  query: ByStatusQuery = {},
): AsyncGenerator<Record<string, unknown>> {
  let startKey: Record<string, unknown> | undefined;
  let left = query.limit ?? Number.POSITIVE_INFINITY;
  do {
    const out = await doc.send(
      new QueryCommand({
        TableName: table,
        IndexName: JOBS_BY_STATUS_INDEX,
        KeyConditionExpression: query.updatedAfter ? '#s = :s AND updatedAt > :after' : '#s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':s': status,
          ...(query.updatedAfter ? { ':after': query.updatedAfter } : {}),
        },
        ScanIndexForward: !query.newestFirst,
        ...(Number.isFinite(left) ? { Limit: left } : {}),
        ...(query.projection ? { ProjectionExpression: query.projection } : {}),
        ExclusiveStartKey: startKey,
      }),
    );
    for (const item of out.Items ?? []) {
      if (left-- <= 0) return;
      yield item;
    }
    startKey = out.LastEvaluatedKey;
  } while (startKey && left > 0);
}

/** How many jobs are in a status (Select COUNT, paginated). */
export async function countJobsByStatus(doc: DynamoDBDocumentClient, table: string, status: JobStatus) {
  let count = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await doc.send(
      new QueryCommand({
        TableName: table,
        IndexName: JOBS_BY_STATUS_INDEX,
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': status },
        Select: 'COUNT',
        ExclusiveStartKey: startKey,
      }),
    );
    count += out.Count ?? 0;
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  return count;
}
