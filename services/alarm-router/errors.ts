/** Base class of every alarm-router error. */
export class AlarmRouterError extends Error {
  override readonly name: string = 'AlarmRouterError';
}

/** The routing configuration (ROWSTREAM_ALERT_ROUTING or the defaults) is invalid. */
export class RoutingConfigError extends AlarmRouterError {
  override readonly name = 'RoutingConfigError';
}

/**
 * Another delivery of the same event holds the idempotency claim and has not finished yet. The record
 * fails (partial batch failure) and comes back after the visibility timeout, when the claim is either
 * done (then it is a duplicate) or expired (then this delivery takes it over).
 */
export class AlertInProgressError extends AlarmRouterError {
  override readonly name = 'AlertInProgressError';
  constructor(readonly key: string) {
    super(`alert ${key} is being handled by another delivery; retry later`);
  }
}

/** The alarm's state item changed between read and write (two deliveries for one alarm at once). */
export class AlarmStateConflictError extends AlarmRouterError {
  override readonly name = 'AlarmStateConflictError';
  constructor(readonly alarmName: string) {
    super(`state of alarm ${alarmName} changed concurrently; retry later`);
  }
}
