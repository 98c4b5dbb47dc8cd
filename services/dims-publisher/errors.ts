/** Base class of every dims-publisher error. */
export class DimsPublisherError extends Error {
  override readonly name: string = 'DimsPublisherError';
}

/** The inventory definition (inventory/metrics.yaml) cannot be read or is invalid. */
export class InventoryDefinitionError extends DimsPublisherError {
  override readonly name = 'InventoryDefinitionError';
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`inventory definition ${source}: ${reason}`);
  }
}

/** BatchGetItem still left keys unread when the retries ran out (the table is throttled). */
export class UnprocessedKeysError extends DimsPublisherError {
  override readonly name = 'UnprocessedKeysError';
  constructor(readonly left: number) {
    super(`BatchGetItem left ${left} keys unprocessed after retries`);
  }
}
