import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../../shared/dynamo.ts';
import { JobRecord } from '../../shared/jobs.ts';
import type { JobStorePort } from '../ports.ts';

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
        if (isConditionFailure(e)) return false;
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
        if (!isConditionFailure(e)) throw e;
      }
    },
  };
}
