import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { CachedCount, CountCachePort, HeaderRef } from '../ports.ts';

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
        ...(Array.isArray(item.header) ? { header: item.header as string[] } : {}),
        ...(item.headerRef ? { headerRef: item.headerRef as HeaderRef } : {}),
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
