import { z } from 'zod';

/** The small interfaces the alarm-router core talks through; adapters/ implements them. */

export type AlarmAction = 'ALERT' | 'RESOLVED' | 'SUPPRESSED' | 'IGNORED';

/** What a delivery recorded right after SNS accepted its message (the one step that cannot be undone). */
export interface SentRecord {
  readonly messageId: string | null;
  readonly topicArn: string;
  readonly kind: 'ALERT' | 'RESOLVED';
  readonly sentAt: string;
}

export type IdempotencyClaim =
  /** `sent`: an earlier delivery of this fact published it and then failed; finish without publishing. */
  | { readonly status: 'claimed'; readonly sent: SentRecord | null }
  | { readonly status: 'done' }
  | { readonly status: 'busy' };

/** Idempotency keys in the state table (`pk = alert#<id>`). */
export interface IdempotencyPort {
  /**
   * Takes the key unless it is done, or held by another delivery whose lease has not expired. Taking
   * over a released or expired key keeps what the earlier holder recorded with {@link markSent}.
   */
  claim(
    key: string,
    options: { now: Date; leaseSeconds: number; ttlSeconds: number },
  ): Promise<IdempotencyClaim>;
  /** Records that SNS accepted the message, before any later step can fail. */
  markSent(key: string, sent: SentRecord): Promise<void>;
  complete(key: string, result: Readonly<Record<string, unknown>>): Promise<void>;
  /**
   * Gives the key back after a failure, so the retry does not wait for the lease. The key and its
   * sent record stay: a retry after a publish finishes the remaining steps and never pages again.
   */
  release(key: string): Promise<void>;
}

/** What the router remembers about one alarm (`pk = alarm#<name>`). */
export interface AlarmMemory {
  readonly alarmName: string;
  readonly state: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';
  /** state.timestamp (epoch ms) of the last state change applied; older ones are stale. */
  readonly stateAt: number;
  /** The last message sent about this alarm. */
  readonly notified: 'ALERT' | 'RESOLVED' | null;
  readonly notifiedAt: number | null;
  /** In ALARM without an alert, because the ALARM was suppressed as flapping. */
  readonly suppressedAlarm: boolean;
  /** The event key and decision of the last change applied, so a retried delivery repeats it. */
  readonly lastKey: string;
  readonly lastAction: AlarmAction;
  readonly version: number;
}

export interface AlarmStatePort {
  get(alarmName: string): Promise<AlarmMemory | null>;
  /** Conditional on `expectedVersion` (null = must not exist); throws AlarmStateConflictError (errors.ts). */
  put(memory: AlarmMemory, expectedVersion: number | null): Promise<void>;
}

export interface NotificationMessage {
  readonly topicArn: string;
  readonly subject: string;
  readonly body: string;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface NotifierPort {
  publish(message: NotificationMessage): Promise<{ messageId: string | null }>;
}

/**
 * A later look at an alarm whose ALARM was suppressed as flapping: when the suppression window ends
 * and the alarm is still in that ALARM, it is paged. Carried by the router's own queue (a delayed
 * message), so it needs no timer and survives restarts.
 */
export const AlarmRecheck = z.object({
  rowstream: z.literal('alarm-recheck.v1'),
  alarmName: z.string().min(1),
  /** state.timestamp (epoch ms) of the suppressed ALARM. */
  stateAt: z.number(),
  /** When the suppression window ends (epoch ms). */
  dueAt: z.number(),
  /** The suppressed state change, for the message. */
  event: z.unknown(),
});
export type AlarmRecheck = z.infer<typeof AlarmRecheck>;

export interface RecheckPort {
  /** Delivers `recheck` back to the router after `delaySeconds` (at most 900: SQS DelaySeconds). */
  schedule(recheck: AlarmRecheck, delaySeconds: number): Promise<void>;
}

/** The longest delay SQS allows on one message; longer waits are chained. */
export const MAX_RECHECK_DELAY_SECONDS = 900;
