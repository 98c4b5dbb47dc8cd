import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../../shared/dynamo.ts';
import type { IdempotencyClaim, IdempotencyPort, SentRecord } from '../ports.ts';

/**
 * Idempotency keys in the state table: `{ pk, status: IN_PROGRESS|DONE, leaseUntil, expiresAt, sent? }`.
 * A claim is a conditional update that succeeds when the key is new or its holder's lease ran out; an
 * update, not a put, so the `sent` record of an earlier holder survives the takeover.
 */
export function dynamoIdempotency(doc: DynamoDBDocumentClient, table: string): IdempotencyPort {
  return {
    async claim(key, { now, leaseSeconds, ttlSeconds }): Promise<IdempotencyClaim> {
      const nowMs = now.getTime();
      try {
        const out = await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: { pk: key },
            UpdateExpression: 'SET #s = :inProgress, leaseUntil = :lease, claimedAt = :at, expiresAt = :exp',
            ConditionExpression: 'attribute_not_exists(pk) OR (#s = :inProgress AND leaseUntil < :now)',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: {
              ':inProgress': 'IN_PROGRESS',
              ':lease': nowMs + leaseSeconds * 1000,
              ':at': now.toISOString(),
              ':exp': Math.floor(nowMs / 1000) + ttlSeconds,
              ':now': nowMs,
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return { status: 'claimed', sent: (out.Attributes?.sent as SentRecord | undefined) ?? null };
      } catch (error) {
        if (!isConditionFailure(error)) throw error;
        const existing = await doc.send(
          new GetCommand({ TableName: table, Key: { pk: key }, ConsistentRead: true }),
        );
        return { status: existing.Item?.status === 'DONE' ? 'done' : 'busy' };
      }
    },
    async markSent(key, sent) {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { pk: key },
          UpdateExpression: 'SET sent = :sent',
          ConditionExpression: '#s = :inProgress',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':sent': sent, ':inProgress': 'IN_PROGRESS' },
        }),
      );
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
      // The lease ends now (the next delivery claims at once); the item, with a possible `sent`, stays.
      await doc
        .send(
          new UpdateCommand({
            TableName: table,
            Key: { pk: key },
            UpdateExpression: 'SET leaseUntil = :zero',
            ConditionExpression: '#s = :inProgress',
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':inProgress': 'IN_PROGRESS', ':zero': 0 },
          }),
        )
        .catch((error: unknown) => {
          if (!isConditionFailure(error)) throw error;
        });
    },
  };
}
