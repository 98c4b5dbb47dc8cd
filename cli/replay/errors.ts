/** Base class of every replay failure. */
export class ReplayError extends Error {
  override readonly name: string = 'ReplayError';
}

/** The time window is not a window (from after to, or in the future). */
export class ReplayWindowError extends ReplayError {
  override readonly name = 'ReplayWindowError';
}

/** An event type no rule of the bus routes: replaying it would deliver nothing. */
export class ReplayFilterError extends ReplayError {
  override readonly name = 'ReplayFilterError';
}

/** EventBridge reports the replay FAILED or CANCELLED, or it did not finish in time. */
export class ReplayFailedError extends ReplayError {
  override readonly name = 'ReplayFailedError';
  constructor(
    readonly replayName: string,
    readonly state: string,
    readonly reason: string,
  ) {
    super(`replay ${replayName} ended ${state}: ${reason}`);
  }
}

/** The emulator cannot replay the way AWS does (see cli/replay/index.ts). */
export class ReplayUnsupportedError extends ReplayError {
  override readonly name = 'ReplayUnsupportedError';
}
