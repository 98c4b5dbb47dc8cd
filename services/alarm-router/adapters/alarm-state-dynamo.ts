import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../../shared/dynamo.ts';
import { AlarmStateConflictError } from '../errors.ts';
import type { AlarmMemory, AlarmStatePort } from '../ports.ts';

/** Per-alarm memory in the state table (`pk = alarm#<name>`), written with optimistic versions. */
export function dynamoAlarmState(
  doc: DynamoDBDocumentClient,
  table: string,
  ttlSeconds: number,
): AlarmStatePort {
  return {
    async get(alarmName) {
      const out = await doc.send(
        new GetCommand({ TableName: table, Key: { pk: `alarm#${alarmName}` }, ConsistentRead: true }),
      );
      if (!out.Item) return null;
      const { pk: _pk, expiresAt: _e, ...memory } = out.Item;
      return memory as AlarmMemory;
    },
    async put(memory, expectedVersion) {
      try {
        await doc.send(
          new PutCommand({
            TableName: table,
            Item: {
              pk: `alarm#${memory.alarmName}`,
              ...memory,
              expiresAt: Math.floor(Date.now() / 1000) + ttlSeconds,
            },
            ...(expectedVersion === null
              ? { ConditionExpression: 'attribute_not_exists(pk)' }
              : {
                  ConditionExpression: 'version = :v',
                  ExpressionAttributeValues: { ':v': expectedVersion },
                }),
          }),
        );
      } catch (error) {
        if (isConditionFailure(error)) throw new AlarmStateConflictError(memory.alarmName);
        throw error;
      }
    },
  };
}
