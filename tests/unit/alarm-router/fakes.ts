import type { BusEntry, BusPort } from '../../../events/bus.ts';
import type { AlarmRouterDeps } from '../../../services/alarm-router/core.ts';
import { AlarmStateConflictError } from '../../../services/alarm-router/errors.ts';
import type {
  AlarmMemory,
  AlarmRecheck,
  AlarmStatePort,
  IdempotencyClaim,
  IdempotencyPort,
  NotificationMessage,
  NotifierPort,
  RecheckPort,
  SentRecord,
} from '../../../services/alarm-router/ports.ts';
import { type RoutingOverrides, routingConfig } from '../../../services/alarm-router/routing.ts';
import { NO_LOG } from '../../../services/shared/logger.ts';
import { BufferedMetrics, MemorySink } from '../../../services/shared/metrics.ts';

export const STAGE = 'unit';
export const TOPICS = {
  critical: 'arn:aws:sns:us-east-1:123456789012:rowstream-unit-alerts-critical',
  warning: 'arn:aws:sns:us-east-1:123456789012:rowstream-unit-alerts-warning',
  info: 'arn:aws:sns:us-east-1:123456789012:rowstream-unit-alerts-info',
} as const;

export class MemoryIdempotency implements IdempotencyPort {
  readonly items = new Map<
    string,
    { status: 'IN_PROGRESS' | 'DONE'; leaseUntil: number; sent?: SentRecord }
  >();
  /** Makes the next markSent calls fail (DynamoDB down right after the publish). */
  failMarkSent = 0;
  async claim(
    key: string,
    o: { now: Date; leaseSeconds: number; ttlSeconds: number },
  ): Promise<IdempotencyClaim> {
    const it = this.items.get(key);
    if (it?.status === 'DONE') return { status: 'done' };
    if (it && it.leaseUntil >= o.now.getTime()) return { status: 'busy' };
    this.items.set(key, {
      ...it,
      status: 'IN_PROGRESS',
      leaseUntil: o.now.getTime() + o.leaseSeconds * 1000,
    });
    return { status: 'claimed', sent: it?.sent ?? null };
  }
  async markSent(key: string, sent: SentRecord) {
    if (this.failMarkSent > 0) {
      this.failMarkSent--;
      throw new Error('DynamoDB is down');
    }
    const it = this.items.get(key);
    if (it?.status !== 'IN_PROGRESS') throw new Error(`markSent on ${key} without a claim`);
    this.items.set(key, { ...it, sent });
  }
  async complete(key: string) {
    this.items.set(key, { ...this.items.get(key), status: 'DONE', leaseUntil: 0 });
  }
  async release(key: string) {
    const it = this.items.get(key);
    if (it?.status === 'IN_PROGRESS') this.items.set(key, { ...it, leaseUntil: 0 });
  }
}

export class MemoryRechecks implements RecheckPort {
  readonly scheduled: { recheck: AlarmRecheck; delaySeconds: number }[] = [];
  async schedule(recheck: AlarmRecheck, delaySeconds: number) {
    this.scheduled.push({ recheck, delaySeconds });
  }
}

export class MemoryAlarmState implements AlarmStatePort {
  readonly items = new Map<string, AlarmMemory>();
  async get(name: string) {
    return this.items.get(name) ?? null;
  }
  async put(m: AlarmMemory, expected: number | null) {
    const cur = this.items.get(m.alarmName);
    if ((cur?.version ?? null) !== expected) throw new AlarmStateConflictError(m.alarmName);
    this.items.set(m.alarmName, m);
  }
}

export class FakeNotifier implements NotifierPort {
  readonly sent: NotificationMessage[] = [];
  failNext = 0;
  async publish(m: NotificationMessage) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('SNS is down');
    }
    this.sent.push(m);
    return { messageId: `m-${this.sent.length}` };
  }
}

export class FakeBus implements BusPort {
  readonly entries: BusEntry[] = [];
  /** Makes the next putEntries calls throw (EventBridge down after the SNS publish). */
  failNext = 0;
  async putEntries(entries: readonly BusEntry[]) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('EventBridge is down');
    }
    this.entries.push(...entries);
    return entries.map((_, i) => ({ eventId: `e-${this.entries.length + i}` }));
  }
  details(detailType: string): Record<string, unknown>[] {
    return this.entries.filter((e) => e.detailType === detailType).map((e) => JSON.parse(e.detail));
  }
}

export function fakeDeps(overrides: RoutingOverrides = {}, now = () => new Date('2026-11-25T10:00:00Z')) {
  const sink = new MemorySink();
  const metrics = new BufferedMetrics({ sink, defaultDimensions: { Service: 'alarm-router', Stage: STAGE } });
  const deps = {
    config: routingConfig({
      stage: STAGE,
      region: 'us-east-1',
      topics: TOPICS,
      runbookUrl: 'https://example.org/rowstream/blob/v1.2.0/docs/runbooks.md',
      bucket: 'rowstream-unit-data',
      overrides,
    }),
    idempotency: new MemoryIdempotency(),
    rechecks: new MemoryRechecks(),
    alarmState: new MemoryAlarmState(),
    notifier: new FakeNotifier(),
    bus: new FakeBus(),
    metrics,
    log: NO_LOG,
    now,
  } satisfies AlarmRouterDeps;
  return { deps, sink };
}

/** An EventBridge envelope of a CloudWatch alarm state change, shaped like AWS's. */
export function alarmEnvelope(
  alarmName: string,
  value: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA',
  timestamp: string,
  opts: { id?: string; previous?: string; replayName?: string; datapoint?: number; threshold?: number } = {},
) {
  return {
    version: '0',
    id: opts.id ?? `env-${alarmName}-${value}-${timestamp}`,
    'detail-type': 'CloudWatch Alarm State Change',
    source: 'aws.cloudwatch',
    account: '123456789012',
    time: timestamp.replace(/\.\d+/, ''),
    region: 'us-east-1',
    resources: [`arn:aws:cloudwatch:us-east-1:123456789012:alarm:${alarmName}`],
    ...(opts.replayName ? { 'replay-name': opts.replayName } : {}),
    detail: {
      alarmName,
      state: {
        value,
        reason: `Threshold Crossed: 1 datapoint [${opts.datapoint ?? 3}.0] was greater than the threshold (${opts.threshold ?? 0}.0).`,
        reasonData: JSON.stringify({
          version: '1.0',
          statistic: 'Maximum',
          period: 60,
          recentDatapoints: [opts.datapoint ?? 3],
          threshold: opts.threshold ?? 0,
        }),
        timestamp,
      },
      previousState: { value: opts.previous ?? (value === 'ALARM' ? 'OK' : 'ALARM'), reason: '', timestamp },
      configuration: { description: 'test', metrics: [] },
    },
  };
}

/** An EventBridge envelope of a rowstream event. */
export function rowstreamEnvelope(
  detailType: string,
  source: string,
  detail: Record<string, unknown>,
  id = 'env-1',
) {
  return {
    version: '0',
    id,
    'detail-type': detailType,
    source,
    account: '123456789012',
    time: '2026-11-25T10:00:00Z',
    region: 'us-east-1',
    resources: [],
    detail,
  };
}

export const jobFailed = (over: Record<string, unknown> = {}) =>
  rowstreamEnvelope('JobFailed.v1', 'rowstream.producer', {
    eventId: 'ev-failed-1',
    occurredAt: '2026-11-25T10:00:00Z',
    jobId: 'j-0123456789abcdef01234567',
    bucket: 'rowstream-unit-data',
    key: 'inbound/orders-2026-11.csv',
    reason: 'KAFKA_RETRIES_EXHAUSTED',
    message: 'broker unreachable after 10 retries',
    position: { row: 1201, byte: 98304 },
    checkpoint: { rowsDone: 1200, nextByteOffset: 98304 },
    ...over,
  });

export const jobRejected = () =>
  rowstreamEnvelope('JobRejected.v1', 'rowstream.planner', {
    eventId: 'ev-rejected-1',
    occurredAt: '2026-11-25T10:00:00Z',
    jobId: 'j-rejected',
    bucket: 'rowstream-unit-data',
    key: 'inbound/empty.csv',
    etag: 'abc',
    versionId: null,
    reason: 'EMPTY_OBJECT',
    message: 'the object is empty (0 bytes)',
  });

export const jobCompleted = (rowsRejected: number) =>
  rowstreamEnvelope('JobCompleted.v1', 'rowstream.producer', {
    eventId: `ev-completed-${rowsRejected}`,
    occurredAt: '2026-11-25T10:00:00Z',
    jobId: 'j-done',
    bucket: 'rowstream-unit-data',
    key: 'inbound/done.csv',
    status: rowsRejected > 0 ? 'COMPLETED_WITH_REJECTS' : 'COMPLETED',
    rowsDelivered: 1000 - rowsRejected,
    rowsRejected,
    bytes: 50_000,
    durationMs: 12_000,
    topic: 'rowstream.rows',
    partitions: [],
    rejectsUri: rowsRejected > 0 ? 's3://rowstream-unit-data/rejected/done.csv.rejects.csv' : null,
  });

export const budgetCrossed = (thresholdPercent: number) =>
  rowstreamEnvelope('BudgetThresholdCrossed.v1', 'rowstream.cost-tracker', {
    eventId: `ev-budget-${thresholdPercent}`,
    occurredAt: '2026-11-25T10:00:00Z',
    month: '2026-11',
    thresholdPercent,
    monthToDateCostUsd: 412.5,
    budgetUsd: 500,
    utilizationPercent: 82.5,
  });
