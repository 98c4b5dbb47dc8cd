import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { JobRecord } from '../../shared/jobs.ts';
import type { CachedCount, CountCachePort, JobStorePort } from '../core.ts';

const isConditionFailed = (e: unknown) =>
  e instanceof ConditionalCheckFailedException || (e as Error).name === 'ConditionalCheckFailedException';

/** {@link CountCachePort} over the counts table (pk cacheKey). */
export function dynamoCountCache(doc: DynamoDBDocumentClient, table: string): CountCachePort {
  return {
    async get(cacheKey) {
      const out = await doc.send(
        new GetCommand({ TableName: table, Key: { cacheKey }, ConsistentRead: true }),
      );
      const item = out.Item;
      if (!item || typeof item.totalRows !== 'number') return null;
      return {
        totalRows: item.totalRows,
        header: item.header as string[],
        dataOffset: item.dataOffset as number,
        size: item.size as number,
        delimiter: typeof item.delimiter === 'string' ? item.delimiter : ',',
        countedAt: String(item.countedAt),
      };
    },
    async put(cacheKey, value: CachedCount) {
      await doc.send(new PutCommand({ TableName: table, Item: { cacheKey, ...value } }));
    },
  };
}

/** {@link JobStorePort} over the jobs table: conditional writes only. */
export function dynamoJobStore(doc: DynamoDBDocumentClient, table: string): JobStorePort {
  return {
    async get(jobId) {
      const out = await doc.send(new GetCommand({ TableName: table, Key: { jobId }, ConsistentRead: true }));
      return out.Item ? JobRecord.parse(out.Item) : null;
    },
    async create(record) {
      try {
        await doc.send(
          new PutCommand({
            TableName: table,
            Item: record,
            ConditionExpression: 'attribute_not_exists(jobId)',
          }),
        );
        return true;
      } catch (e) {
        if (isConditionFailed(e)) return false;
        throw e;
      }
    },
    async markStartedPublished(jobId, at) {
      try {
        await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: { jobId },
            UpdateExpression: 'SET startedEventPublished = :t, updatedAt = :at',
            // Once the producer has moved the job on, the flag no longer matters: leave the record alone.
            ConditionExpression: 'attribute_exists(jobId) AND startedEventPublished = :f AND #s = :planned',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':t': true, ':f': false, ':at': at, ':planned': 'PLANNED' },
          }),
        );
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
      }
    },
  };
}
