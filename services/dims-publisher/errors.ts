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
