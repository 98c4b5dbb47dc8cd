import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { AlarmMemory, AlarmStatePort, ClaimResult, IdempotencyPort } from '../core.ts';
import { AlarmStateConflictError } from '../errors.ts';

const isConditionFailure = (e: unknown) =>
  e instanceof ConditionalCheckFailedException ||
  (e as { name?: string })?.name === 'ConditionalCheckFailedException';

/**
 * Idempotency keys in the state table: `{ pk, status: IN_PROGRESS|DONE, leaseUntil, expiresAt }`.
 * A claim is a conditional put that succeeds when the key is new or its holder's lease ran out.
 */
export function dynamoIdempotency(doc: DynamoDBDocumentClient, table: string): IdempotencyPort {
  return {
    async claim(key, { now, leaseSeconds, ttlSeconds }): Promise<ClaimResult> {
      const nowMs = now.getTime();
      try {
        await doc.send(
          new PutCommand({
            TableName: table,
            Item: {
              pk: key,
              status: 'IN_PROGRESS',
              leaseUntil: nowMs + leaseSeconds * 1000,
              claimedAt: now.toISOString(),
              expiresAt: Math.floor(nowMs / 1000) + ttlSeconds,
            },
            ConditionExpression: 'attribute_not_exists(pk) OR (#s = :inProgress AND leaseUntil < :now)',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS', ':now': nowMs },
          }),
        );
        return 'claimed';
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const existing = await doc.send(
          new GetCommand({ TableName: table, Key: { pk: key }, ConsistentRead: true }),
        );
        return existing.Item?.status === 'DONE' ? 'done' : 'busy';
      }
    },
    async complete(key, result) {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: key },
          UpdateExpression: 'SET #s = :done, #r = :result REMOVE leaseUntil',
          ExpressionAttributeNames: { '#s': 'status', '#r': 'result' },
          ExpressionAttributeValues: { ':done': 'DONE', ':result': result },
        }),
      );
    },
    async release(key) {
      await doc
        .send(
          new DeleteCommand({
            TableName: table,
            Key: { pk: key },
            ConditionExpression: '#s = :inProgress',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS' },
          }),
        )
        .catch((error: unknown) => {
          if (!isConditionFailure(error)) throw error;
        });
    },
  };
}

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
