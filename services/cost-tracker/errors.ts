/** Base class of every cost-tracker error. */
export class CostTrackerError extends Error {
  override readonly name: string = 'CostTrackerError';
}

/** The price table override (ROWSTREAM_COST_PRICES) is invalid. */
export class PriceConfigError extends CostTrackerError {
  override readonly name = 'PriceConfigError';
}
