import { z } from 'zod';
import { retry } from '../services/shared/retry.ts';
import { ALARM_STATE_CHANGE, AlarmStateChange } from './aws.ts';
import { CATALOG, type DetailInput, type DetailType, type RowstreamEvent } from './catalog.ts';

/** One entry of a PutEvents call, independent of the SDK. */
export interface BusEntry {
  readonly source: string;
  readonly detailType: string;
  readonly detail: string;
  readonly time?: Date;
}

/** The result of one entry: an event id, or an error code and message. */
export interface BusEntryResult {
  readonly eventId?: string;
  readonly errorCode?: string;
  readonly errorMessage?: string;
}

/** The port `publish` writes through; events/eventbridge.ts implements it with the AWS SDK. */
export interface BusPort {
  /** At most 10 entries; returns one result per entry, in order. */
  putEntries(entries: readonly BusEntry[]): Promise<readonly BusEntryResult[]>;
}

/** A validated event to publish. */
export interface OutgoingEvent<T extends DetailType = DetailType> {
  readonly detailType: T;
  readonly detail: DetailInput<T>;
}

export class EventValidationError extends Error {
  override readonly name = 'EventValidationError';
  constructor(
    readonly detailType: string,
    readonly issues: string,
  ) {
    super(`${detailType} does not match its schema: ${issues}`);
  }
}

export class PublishError extends Error {
  override readonly name = 'PublishError';
  constructor(
    readonly detailType: string,
    readonly eventId: string,
    readonly errorCode: string,
    message: string,
  ) {
    super(`PutEvents failed for ${detailType} ${eventId}: ${errorCode}: ${message}`);
  }
}

const MAX_ENTRIES_PER_CALL = 10;

/** Builds an event, validating its detail; throws {@link EventValidationError} naming the fields. */
export function event<T extends DetailType>(detailType: T, detail: DetailInput<T>): OutgoingEvent<T> {
  validate(detailType, detail);
  return { detailType, detail };
}

function validate(detailType: DetailType, detail: unknown) {
  const result = CATALOG[detailType].schema.safeParse(detail);
  if (!result.success) throw new EventValidationError(detailType, z.prettifyError(result.error));
  return result.data as Record<string, unknown>;
}

export interface PublishOptions {
  readonly maxAttempts?: number;
  readonly baseDelayMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Validates and publishes events: batches of 10 per PutEvents call, entries that fail
 * (FailedEntryCount) are retried with the shared backoff (services/shared/retry.ts), and if they
 * still fail a {@link PublishError} names the entry.
 *
 * @example await publish(bus, [event('JobStarted.v1', detail)]);
 */
export async function publish(bus: BusPort, events: readonly OutgoingEvent[], options: PublishOptions = {}) {
  const prepared = events.map((e) => {
    const detail = validate(e.detailType, e.detail);
    return {
      detailType: e.detailType,
      eventId: String(detail.eventId),
      entry: {
        source: CATALOG[e.detailType].source,
        detailType: e.detailType,
        detail: JSON.stringify(detail),
      },
    };
  });
  for (let start = 0; start < prepared.length; start += MAX_ENTRIES_PER_CALL) {
    let pending = prepared.slice(start, start + MAX_ENTRIES_PER_CALL);
    await retry(
      async () => {
        const results = await bus.putEntries(pending.map((p) => p.entry));
        const failed = pending.flatMap((p, i) => {
          const r = results[i];
          return r?.errorCode ? [{ p, r }] : [];
        });
        if (failed.length === 0) return;
        pending = failed.map((f) => f.p);
        const first = failed[0]!;
        throw new PublishError(
          first.p.detailType,
          first.p.eventId,
          first.r.errorCode ?? 'Unknown',
          first.r.errorMessage ?? '',
        );
      },
      {
        attempts: options.maxAttempts ?? 5,
        baseMs: options.baseDelayMs ?? 100,
        maxMs: 5_000,
        // A call that throws (network, credentials) is the SDK's to retry; only failed entries are ours.
        isRetryable: (e) => e instanceof PublishError,
        ...(options.sleep ? { sleep: options.sleep } : {}),
      },
    );
  }
}

/** An AWS CloudWatch alarm state change, as delivered by the default-bus rule. */
export interface AlarmEvent {
  readonly kind: 'aws.alarm';
  readonly id: string;
  readonly detailType: typeof ALARM_STATE_CHANGE.detailType;
  readonly source: typeof ALARM_STATE_CHANGE.source;
  readonly time: string;
  readonly region: string | null;
  readonly account: string | null;
  readonly resources: readonly string[];
  readonly replayName: string | null;
  readonly detail: AlarmStateChange;
}

export type IncomingEvent = RowstreamEvent | AlarmEvent;

export class EventParseError extends Error {
  override readonly name = 'EventParseError';
}

const Envelope = z.looseObject({
  id: z.string().min(1),
  source: z.string().min(1),
  'detail-type': z.string().min(1),
  time: z.string().default(() => new Date().toISOString()),
  region: z.string().optional(),
  account: z.string().optional(),
  resources: z.array(z.string()).default([]),
  'replay-name': z.string().optional(),
  detail: z.unknown(),
});

/**
 * Parses an EventBridge envelope (an object, or the JSON body of an SQS message a rule delivered)
 * into a validated discriminated union. Throws {@link EventParseError} with the reason.
 */
export function parse(input: unknown): IncomingEvent {
  let raw = input;
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch (e) {
      throw new EventParseError(`not JSON: ${(e as Error).message}`);
    }
  }
  const env = Envelope.safeParse(raw);
  if (!env.success) throw new EventParseError(`not an EventBridge event: ${z.prettifyError(env.error)}`);
  const e = env.data;
  const common = { id: e.id, time: e.time, replayName: e['replay-name'] ?? null };
  if (e.source === ALARM_STATE_CHANGE.source && e['detail-type'] === ALARM_STATE_CHANGE.detailType) {
    const detail = AlarmStateChange.safeParse(e.detail);
    if (!detail.success)
      throw new EventParseError(`bad alarm state change: ${z.prettifyError(detail.error)}`);
    return {
      kind: 'aws.alarm',
      ...common,
      detailType: ALARM_STATE_CHANGE.detailType,
      source: ALARM_STATE_CHANGE.source,
      region: e.region ?? null,
      account: e.account ?? null,
      resources: e.resources,
      detail: detail.data,
    };
  }
  const detailType = e['detail-type'] as DetailType;
  const entry = CATALOG[detailType];
  if (!entry) throw new EventParseError(`unknown detail-type ${e['detail-type']} from ${e.source}`);
  if (entry.source !== e.source) {
    throw new EventParseError(`${detailType} must come from ${entry.source}, not ${e.source}`);
  }
  const detail = entry.schema.safeParse(e.detail);
  if (!detail.success)
    throw new EventParseError(`${detailType} detail is invalid: ${z.prettifyError(detail.error)}`);
  return {
    kind: 'rowstream',
    ...common,
    detailType,
    source: entry.source,
    detail: detail.data,
  } as RowstreamEvent;
}
