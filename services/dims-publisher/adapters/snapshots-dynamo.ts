import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Snapshot, SnapshotsPort } from '../ports.ts';

const LATEST = 'inventory#latest';

/** {@link SnapshotsPort} over the state table: `inventory#latest` plus `inventory#<takenAt>` with a TTL. */
export function dynamoSnapshots(doc: DynamoDBDocumentClient, table: string): SnapshotsPort {
  const read = async (pk: string): Promise<Snapshot | null> => {
    const out = await doc.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }));
    if (!out.Item) return null;
    return {
      snapshotId: out.Item.snapshotId,
      takenAt: out.Item.takenAt,
      metrics: out.Item.metrics,
      previousSnapshotId: out.Item.previousSnapshotId ?? null,
    } as Snapshot;
  };
  return {
    latest: () => read(LATEST),
    // Snapshot ids are their takenAt: the history item's key.
    get: (snapshotId) => read(`inventory#${snapshotId}`),
    async save(snapshot, historyDays) {
      const expiresAt = Math.floor(Date.parse(snapshot.takenAt) / 1000) + historyDays * 24 * 3600;
      await doc.send(
        new PutCommand({
          TableName: table,
          Item: { pk: `inventory#${snapshot.takenAt}`, ...snapshot, expiresAt },
        }),
      );
      await doc.send(new PutCommand({ TableName: table, Item: { pk: LATEST, ...snapshot } }));
    },
  };
}
