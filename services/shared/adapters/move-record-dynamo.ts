import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../dynamo.ts';
import { TERMINAL_STATUSES } from '../jobs.ts';
import type { MoveRecordPort } from '../source-fate.ts';

/**
 * {@link MoveRecordPort} over the jobs table: `movedTo` is set only while the job is terminal (a job
 * resumed meanwhile reads its source from where it was: it must not move under it) and only over the
 * `movedTo` the caller saw (compare and set), so two runs of the step cannot both move the object.
 */
export function dynamoMoveRecord(doc: DynamoDBDocumentClient, table: string): MoveRecordPort {
  return {
    async recordMove(jobId, moved, expected) {
      const statuses = Object.fromEntries(TERMINAL_STATUSES.map((s, i) => [`:t${i}`, s]));
      try {
        await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: { jobId },
            UpdateExpression: 'SET movedTo = :m, updatedAt = :at',
            ConditionExpression:
              `attribute_exists(jobId) AND #s IN (${Object.keys(statuses).join(', ')}) AND ` +
              (expected ? 'movedTo.#k = :ek AND movedTo.versionId = :ev' : 'attribute_not_exists(movedTo)'),
            ExpressionAttributeNames: { '#s': 'status', ...(expected ? { '#k': 'key' } : {}) },
            ExpressionAttributeValues: {
              ':m': moved,
              ':at': moved.movedAt,
              ...statuses,
              ...(expected ? { ':ek': expected.key, ':ev': expected.versionId } : {}),
            },
          }),
        );
        return true;
      } catch (e) {
        if (isConditionFailure(e)) return false;
        throw e;
      }
    },
  };
}
