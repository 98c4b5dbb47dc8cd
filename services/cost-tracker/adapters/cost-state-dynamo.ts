import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { isConditionFailure } from '../../shared/dynamo.ts';
import type { CostStatePort, MtdState } from '../ports.ts';

const MTD_KEY = 'cost#mtd';
const budgetKey = (month: string, threshold: number) => `budget#${month}#${threshold}`;
// Threshold markers only matter within their month; keep them a little longer for the record.
const BUDGET_TTL_SECONDS = 62 * 24 * 3600;

/** {@link CostStatePort} over the state table. */
export function dynamoCostState(doc: DynamoDBDocumentClient, table: string): CostStatePort {
  return {
    async getMtd() {
      const out = await doc.send(
        new GetCommand({ TableName: table, Key: { pk: MTD_KEY }, ConsistentRead: true }),
      );
      if (!out.Item) return null;
      const { pk: _pk, ...state } = out.Item;
      return state as MtdState;
    },
    async putMtd(state) {
      await doc.send(new PutCommand({ TableName: table, Item: { pk: MTD_KEY, ...state } }));
    },
    async thresholdAnnounced(month, threshold) {
      const out = await doc.send(
        new GetCommand({ TableName: table, Key: { pk: budgetKey(month, threshold) }, ConsistentRead: true }),
      );
      return out.Item !== undefined;
    },
    async markThresholdAnnounced(month, threshold, at) {
      await doc
        .send(
          new PutCommand({
            TableName: table,
            Item: {
              pk: budgetKey(month, threshold),
              announcedAt: at,
              expiresAt: Math.floor(Date.parse(at) / 1000) + BUDGET_TTL_SECONDS,
            },
            // The first announcement's time stays; a concurrent second run is a harmless no-op.
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        )
        .catch((error: unknown) => {
          if (!isConditionFailure(error)) throw error;
        });
    },
  };
}
