import type { AlarmEvent, BusPort, IncomingEvent } from '../../events/bus.ts';
import { event, parse, publish } from '../../events/bus.ts';
import type { Severity } from '../../events/catalog.ts';
import { eventIdFor } from '../../events/ids.ts';
import { type AlarmDef, runbookUrl, severityFromAlarmName } from '../../monitoring/alarms.ts';
import type { Log } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import { AlertInProgressError } from './errors.ts';
import {
  type AlarmAction,
  type AlarmMemory,
  type AlarmRecheck,
  type AlarmStatePort,
  type IdempotencyPort,
  MAX_RECHECK_DELAY_SECONDS,
  type NotificationMessage,
  type NotifierPort,
  type RecheckPort,
  type SentRecord,
} from './ports.ts';
import type { RoutingConfig } from './routing.ts';

export interface AlarmRouterDeps {
  readonly config: RoutingConfig;
  readonly idempotency: IdempotencyPort;
  readonly rechecks: RecheckPort;
  readonly alarmState: AlarmStatePort;
  readonly notifier: NotifierPort;
  readonly bus: BusPort;
  readonly metrics: MetricsPort;
  readonly log: Log;
  readonly now: () => Date;
}

// ---------------------------------------------------------------------------------------------------
// Classification

export interface Classified {
  readonly severity: Severity;
  readonly runbook: string;
  /** Stable id of the fact: detail.eventId, or for alarms a hash of name + state timestamp. */
  readonly sourceEventId: string;
  readonly sourceDetailType: string;
  readonly service: string;
  readonly jobId?: string;
  readonly alarm?: { readonly def: AlarmDef | null; readonly event: AlarmEvent };
}

export type Classification =
  | { readonly route: false; readonly reason: string }
  | ({ readonly route: true } & Classified);

/**
 * Alarm state changes carry a new envelope id when replayed from an archive; name + state timestamp
 * identify the fact itself.
 */
export function alarmFactId(alarmName: string, stateTimestamp: string): string {
  return eventIdFor('alarm', alarmName, stateTimestamp);
}

/** Decides whether and how urgently an event concerns a person. Pure. */
export function classify(incoming: IncomingEvent, config: RoutingConfig): Classification {
  if (incoming.kind === 'aws.alarm') return classifyAlarm(incoming, config);
  const service = incoming.source.replace(/^rowstream\./, '');
  switch (incoming.detailType) {
    case 'JobFailed.v1':
      return {
        route: true,
        severity: config.events.jobFailed,
        runbook: 'job-failed',
        sourceEventId: incoming.detail.eventId,
        sourceDetailType: incoming.detailType,
        service,
        jobId: incoming.detail.jobId,
      };
    case 'JobRejected.v1':
      return {
        route: true,
        severity: config.events.jobRejected,
        runbook: 'job-rejected',
        sourceEventId: incoming.detail.eventId,
        sourceDetailType: incoming.detailType,
        service,
        jobId: incoming.detail.jobId,
      };
    case 'JobCompleted.v1':
      if (incoming.detail.rowsRejected === 0)
        return { route: false, reason: 'job completed without rejects' };
      return {
        route: true,
        severity: config.events.jobCompletedWithRejects,
        runbook: 'job-completed-with-rejects',
        sourceEventId: incoming.detail.eventId,
        sourceDetailType: incoming.detailType,
        service,
        jobId: incoming.detail.jobId,
      };
    case 'BudgetThresholdCrossed.v1': {
      const rule = config.budget.filter((r) => r.atLeastPercent <= incoming.detail.thresholdPercent).at(-1);
      if (!rule) return { route: false, reason: `no budget rule for ${incoming.detail.thresholdPercent}%` };
      return {
        route: true,
        severity: rule.severity,
        runbook: 'budget',
        sourceEventId: incoming.detail.eventId,
        sourceDetailType: incoming.detailType,
        service,
      };
    }
    default:
      return { route: false, reason: `${incoming.detailType} is not routed` };
  }
}

function classifyAlarm(e: AlarmEvent, config: RoutingConfig): Classification {
  const name = e.detail.alarmName;
  const base = {
    route: true as const,
    sourceEventId: alarmFactId(name, e.detail.state.timestamp),
    sourceDetailType: e.detailType,
  };
  const rule = config.alarmRules.find(
    (r) => (!r.prefix || name.startsWith(r.prefix)) && (!r.suffix || name.endsWith(r.suffix)),
  );
  const def = config.alarms.find((a) => a.name === name) ?? null;
  if (rule) {
    return {
      ...base,
      severity: rule.severity,
      runbook: rule.runbook ?? def?.runbook ?? 'unknown-alarm',
      service: def?.service ?? 'unknown',
      alarm: { def, event: e },
    };
  }
  if (def) {
    if (def.delivery === 'direct') return { route: false, reason: 'alarm notifies its topic directly' };
    if (def.delivery === 'silent') return { route: false, reason: 'alarm is announced by an event instead' };
    return {
      ...base,
      severity: def.severity,
      runbook: def.runbook,
      service: def.service,
      alarm: { def, event: e },
    };
  }
  if (!name.startsWith(`rowstream-${config.stage}-`)) {
    return { route: false, reason: 'alarm of another stage or app' };
  }
  return {
    ...base,
    severity: severityFromAlarmName(config.stage, name) ?? config.defaultAlarmSeverity,
    runbook: 'unknown-alarm',
    service: 'unknown',
    alarm: { def: null, event: e },
  };
}

// ---------------------------------------------------------------------------------------------------
// Flapping

export interface AlarmDecision {
  readonly action: AlarmAction;
  readonly reason: string;
  readonly next: Omit<AlarmMemory, 'version'>;
  /**
   * A flapping ALARM was suppressed: when its window ends (epoch ms), the router looks again and pages
   * if the alarm is still in that ALARM, so an outage that stays is never kept quiet.
   */
  readonly recheckAt?: number;
}

/**
 * One alert per incident. ALARM -> alert; OK after an alert -> resolved; ALARM again less than the
 * window after the last message about this alarm -> suppressed (and so is the OK that follows it);
 * stale (out-of-order) changes and INSUFFICIENT_DATA change nothing people see. Times are the alarm's
 * own state timestamps, so re-deliveries and replays decide the same way as the first delivery.
 */
export function decideAlarm(
  memory: AlarmMemory | null,
  change: { alarmName: string; value: AlarmMemory['state']; at: number; key: string },
  windowSeconds: number,
): AlarmDecision {
  const base = {
    alarmName: change.alarmName,
    notified: memory?.notified ?? null,
    notifiedAt: memory?.notifiedAt ?? null,
    suppressedAlarm: memory?.suppressedAlarm ?? false,
    lastKey: change.key,
  };
  if (memory && change.at <= memory.stateAt) {
    return {
      action: 'IGNORED',
      reason: 'stale: a newer state change was already applied',
      next: { ...memory, lastKey: change.key, lastAction: 'IGNORED' },
    };
  }
  const moved = { ...base, state: change.value, stateAt: change.at };
  if (change.value === 'INSUFFICIENT_DATA') {
    return { action: 'IGNORED', reason: 'INSUFFICIENT_DATA', next: { ...moved, lastAction: 'IGNORED' } };
  }
  if (change.value === 'ALARM') {
    if (memory?.notified === 'ALERT') {
      return {
        action: 'SUPPRESSED',
        reason: 'already alerted and not resolved yet',
        next: { ...moved, lastAction: 'SUPPRESSED' },
      };
    }
    if (memory?.notifiedAt != null && change.at - memory.notifiedAt < windowSeconds * 1000) {
      return {
        action: 'SUPPRESSED',
        reason: `flapping: ALARM again within ${windowSeconds}s of the last message`,
        next: { ...moved, suppressedAlarm: true, lastAction: 'SUPPRESSED' },
        recheckAt: memory.notifiedAt + windowSeconds * 1000,
      };
    }
    return {
      action: 'ALERT',
      reason: 'ALARM',
      next: {
        ...moved,
        notified: 'ALERT',
        notifiedAt: change.at,
        suppressedAlarm: false,
        lastAction: 'ALERT',
      },
    };
  }
  // OK
  if (memory?.notified === 'ALERT') {
    return {
      action: 'RESOLVED',
      reason: 'OK after an alert',
      next: {
        ...moved,
        notified: 'RESOLVED',
        notifiedAt: change.at,
        suppressedAlarm: false,
        lastAction: 'RESOLVED',
      },
    };
  }
  if (memory?.suppressedAlarm) {
    return {
      action: 'SUPPRESSED',
      reason: 'flapping: OK after a suppressed ALARM',
      next: { ...moved, suppressedAlarm: false, lastAction: 'SUPPRESSED' },
    };
  }
  return { action: 'IGNORED', reason: 'OK without an open alert', next: { ...moved, lastAction: 'IGNORED' } };
}

/**
 * What to do when a suppression window ends: page only if the alarm is still in the very ALARM that was
 * suppressed (same state timestamp) and nothing was said about it since. Pure.
 */
export function decideRecheck(
  memory: AlarmMemory | null,
  recheck: Pick<AlarmRecheck, 'stateAt' | 'dueAt'>,
  now: number,
  key: string,
): { action: 'ALERT' | 'WAIT' | 'IGNORED'; reason: string; next?: Omit<AlarmMemory, 'version'> } {
  if (now < recheck.dueAt) return { action: 'WAIT', reason: 'suppression window not over yet' };
  if (memory?.state !== 'ALARM' || memory.stateAt !== recheck.stateAt) {
    return { action: 'IGNORED', reason: 'the alarm changed state since the suppressed ALARM' };
  }
  if (!memory.suppressedAlarm || memory.notified === 'ALERT') {
    return { action: 'IGNORED', reason: 'already paged' };
  }
  return {
    action: 'ALERT',
    reason: 'still in ALARM when the suppression window ended',
    next: {
      ...memory,
      notified: 'ALERT',
      notifiedAt: now,
      suppressedAlarm: false,
      lastKey: key,
      lastAction: 'ALERT',
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Messages

const SUBJECT_MAX = 99;

/** SNS subjects: under 100 characters, no line breaks or control characters. */
export function sanitizeSubject(text: string): string {
  const clean = text
    .replace(/\p{Cc}+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (clean.length <= SUBJECT_MAX) return clean;
  return `${clean.slice(0, SUBJECT_MAX - 3).trimEnd()}...`;
}

const basename = (key: string) => key.split('/').filter(Boolean).at(-1) ?? key;

const COMPARISON: Record<AlarmDef['comparison'], string> = {
  GreaterThanThreshold: '>',
  GreaterThanOrEqualToThreshold: '>=',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '<=',
};

/** The latest datapoint and the threshold from CloudWatch's reasonData JSON, when it has them. */
export function alarmNumbers(reasonData: string | undefined): {
  value: number | null;
  threshold: number | null;
} {
  if (!reasonData) return { value: null, threshold: null };
  try {
    const data = JSON.parse(reasonData) as { recentDatapoints?: unknown; threshold?: unknown };
    const points = Array.isArray(data.recentDatapoints) ? data.recentDatapoints.filter(Number.isFinite) : [];
    const value = points.length > 0 ? Number(points.at(-1)) : null;
    const threshold = typeof data.threshold === 'number' ? data.threshold : null;
    return { value, threshold };
  } catch {
    return { value: null, threshold: null };
  }
}

const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** CloudWatch's reason text: "Threshold Crossed: 1 datapoint [4.0 (25/11/26 10:00:00)] was greater than the threshold (0.0)." */
export function reasonNumbers(reason: string | undefined): {
  value: number | null;
  threshold: number | null;
} {
  const num = (m: RegExpExecArray | null) =>
    m?.[1] !== undefined && Number.isFinite(Number(m[1])) ? Number(m[1]) : null;
  if (!reason) return { value: null, threshold: null };
  return {
    value: num(/datapoints? \[(-?[\d.]+(?:E[-+]?\d+)?)/i.exec(reason)),
    threshold: num(/threshold \((-?[\d.]+(?:E[-+]?\d+)?)\)/i.exec(reason)),
  };
}

/**
 * "Value vs threshold: 3 > 0 messages." Value and threshold from the state change (reasonData, then
 * the reason text); the threshold and comparison from the alarm's own definition when the change lacks
 * them. A state set by hand (SetAlarmState, `rowstream alarms test`) has no datapoint: the line says so.
 */
export function valueVsThreshold(
  state: { readonly reason?: string | undefined; readonly reasonData?: string | undefined },
  def: AlarmDef | null,
): string {
  const data = alarmNumbers(state.reasonData);
  const text = reasonNumbers(state.reason);
  const value = data.value ?? text.value;
  const threshold = data.threshold ?? def?.threshold ?? text.threshold;
  const op = def ? COMPARISON[def.comparison] : 'vs';
  const unit = def ? ` ${def.unit}` : '';
  const v = value === null ? 'no datapoint (state set without one, e.g. by SetAlarmState)' : fmt(value);
  const t = threshold === null ? 'threshold unknown (alarm not defined by rowstream)' : fmt(threshold);
  return `Value vs threshold: ${v} ${op} ${t}${unit}.`;
}

/** Subject, body and attributes of one message. Pure. */
export function formatMessage(
  incoming: IncomingEvent,
  c: Classified,
  kind: 'ALERT' | 'RESOLVED',
  config: RoutingConfig,
  note?: string,
): NotificationMessage & { severity: Severity } {
  const severity: Severity = kind === 'RESOLVED' && config.resolvedTo === 'info' ? 'info' : c.severity;
  const tag = kind === 'RESOLVED' ? '[RESOLVED]' : `[${c.severity.toUpperCase()}]`;
  const where = `rowstream ${config.stage}`;
  const runbook = runbookUrl(c.runbook, config.runbooks);
  let headline: string;
  const what: string[] = [];
  if (incoming.kind === 'aws.alarm') {
    const d = incoming.detail;
    const def = c.alarm?.def ?? null;
    headline = def?.title ?? d.alarmName;
    const from = d.previousState?.value ?? 'unknown';
    what.push(`Alarm ${d.alarmName} changed from ${from} to ${d.state.value} at ${d.state.timestamp}.`);
    if (note) what.push(note);
    if (d.state.reason) what.push(`Reason: ${d.state.reason}`);
    what.push(valueVsThreshold(d.state, def));
    if (def) what.push(`Meaning: ${def.description.replace(/\s*Runbook: \S+$/, '')}`);
    if (kind === 'RESOLVED') {
      what.push(
        `Back to OK. If it fires again within ${Math.round(config.suppressionWindowSeconds / 60)} minutes ` +
          'it is treated as flapping and not alerted again: check the dashboard.',
      );
    }
    what.push(
      `Alarm: https://${config.region}.console.aws.amazon.com/cloudwatch/home?region=${config.region}#alarmsV2:alarm/${encodeURIComponent(d.alarmName)}`,
    );
  } else {
    const e = incoming;
    switch (e.detailType) {
      case 'JobFailed.v1': {
        const d = e.detail;
        headline = `job failed (${d.reason}): ${basename(d.key)}`;
        what.push(`Job ${d.jobId} on s3://${d.bucket}/${d.key} failed: ${d.reason}.`, d.message);
        if (d.position) what.push(`Position: row ${d.position.row ?? '?'}, byte ${d.position.byte ?? '?'}.`);
        what.push(
          d.checkpoint
            ? `Last checkpoint: ${d.checkpoint.rowsDone} rows done (next byte ${d.checkpoint.nextByteOffset}); those rows are on the topic exactly once.`
            : 'No checkpoint: nothing of this job was committed to Kafka.',
        );
        break;
      }
      case 'JobRejected.v1': {
        const d = e.detail;
        headline = `file rejected (${d.reason}): ${basename(d.key)}`;
        what.push(`s3://${d.bucket}/${d.key} was rejected before producing: ${d.reason}.`, d.message);
        if (d.position) what.push(`Position: row ${d.position.row ?? '?'}, byte ${d.position.byte ?? '?'}.`);
        what.push(`Job: ${d.jobId}.`);
        break;
      }
      case 'JobCompleted.v1': {
        const d = e.detail;
        headline = `job completed with ${d.rowsRejected} rejected rows: ${basename(d.key)}`;
        what.push(
          `Job ${d.jobId} on s3://${d.bucket}/${d.key} completed: ${d.rowsDelivered} rows delivered to ${d.topic}, ${d.rowsRejected} rejected.`,
        );
        if (d.rejectsUri) what.push(`Rejected rows: ${d.rejectsUri}`);
        break;
      }
      case 'BudgetThresholdCrossed.v1': {
        const d = e.detail;
        headline = `cost reached ${d.thresholdPercent}% of budget (${fmt(d.monthToDateCostUsd)} of ${fmt(d.budgetUsd)} USD)`;
        what.push(
          `Month-to-date cost for ${d.month} is ${fmt(d.monthToDateCostUsd)} USD, ${fmt(d.utilizationPercent)}% of the monthly budget of ${fmt(d.budgetUsd)} USD (threshold ${d.thresholdPercent}%).`,
          'Cost Explorer lags about a day: the real figure is higher.',
        );
        break;
      }
      default:
        headline = e.detailType;
        what.push(`${e.detailType} ${e.id}`);
    }
  }
  const subject = sanitizeSubject(`${tag} ${where}: ${headline}`);
  const body = [
    `${kind === 'RESOLVED' ? 'RESOLVED' : `${c.severity.toUpperCase()} ALERT`}: ${headline}`,
    `Stage: ${config.stage} (${config.region})`,
    '',
    'What happened:',
    ...what.map((l) => `  ${l}`),
    '',
    'What to do:',
    `  Runbook:   ${runbook} (section "${c.runbook}")`,
    `  Dashboard: ${config.dashboardUrl}`,
    '',
    `Source: ${c.sourceDetailType}, event ${c.sourceEventId}${
      incoming.replayName ? `, replay ${incoming.replayName}` : ''
    }`,
  ].join('\n');
  const attributes: Record<string, string> = {
    severity,
    service: c.service,
    kind,
    stage: config.stage,
  };
  if (c.jobId) attributes.jobId = c.jobId;
  if (incoming.kind === 'aws.alarm') attributes.alarmName = incoming.detail.alarmName;
  return { topicArn: config.topics[severity], subject, body, attributes, severity };
}

// ---------------------------------------------------------------------------------------------------
// The router

export type RouteOutcome =
  | { readonly outcome: 'ignored'; readonly reason: string }
  | { readonly outcome: 'duplicate'; readonly key: string }
  | { readonly outcome: 'suppressed'; readonly reason: string }
  | {
      readonly outcome: 'sent';
      readonly kind: 'ALERT' | 'RESOLVED';
      readonly severity: Severity;
      readonly topicArn: string;
      readonly subject: string;
      readonly messageId: string | null;
    };

export function createAlarmRouter(deps: AlarmRouterDeps) {
  const { config, idempotency, metrics, log } = deps;

  const suppressed = (reason: string, extra: Record<string, unknown>): RouteOutcome => {
    metrics.record('AlertsSuppressed', 1, 'Count', { properties: { reason, ...extra } });
    log.info('alert suppressed', { reason, ...extra });
    return { outcome: 'suppressed', reason };
  };

  /**
   * Publishes (unless an earlier delivery of this fact already did), records the publish at once, then
   * the steps that may fail without paging twice: metrics, AlertRouted.v1, the log line.
   */
  async function send(
    incoming: IncomingEvent,
    c: Classified,
    kind: 'ALERT' | 'RESOLVED',
    key: string,
    sent: SentRecord | null,
    note?: string,
  ): Promise<RouteOutcome> {
    const message = formatMessage(incoming, c, kind, config, note);
    let messageId: string | null;
    if (sent) {
      messageId = sent.messageId;
      log.info('already published by an earlier delivery; finishing without publishing again', {
        key,
        messageId,
        sentAt: sent.sentAt,
      });
    } else {
      ({ messageId } = await deps.notifier.publish(message));
      // From here on, a failure must not page again: the retry finds this record and skips the publish.
      await idempotency.markSent(key, {
        messageId,
        topicArn: message.topicArn,
        kind,
        sentAt: deps.now().toISOString(),
      });
    }
    metrics.record('AlertsRouted', 1, 'Count', {
      dimensions: { Severity: message.severity },
      properties: { kind, sourceEventId: c.sourceEventId, ...(c.jobId ? { jobId: c.jobId } : {}) },
    });
    await publish(deps.bus, [
      event('AlertRouted.v1', {
        eventId: eventIdFor('AlertRouted', c.sourceEventId),
        occurredAt: deps.now().toISOString(),
        ...(c.jobId ? { jobId: c.jobId } : {}),
        sourceEventId: c.sourceEventId,
        sourceDetailType: c.sourceDetailType,
        severity: message.severity,
        kind,
        subject: message.subject,
        ...(incoming.kind === 'aws.alarm' ? { alarmName: incoming.detail.alarmName } : {}),
        topicArn: message.topicArn,
        ...(messageId ? { messageId } : {}),
      }),
    ]);
    log.info('alert sent', {
      kind,
      severity: message.severity,
      subject: message.subject,
      messageId,
      sourceEventId: c.sourceEventId,
      ...(c.jobId ? { jobId: c.jobId } : {}),
    });
    return {
      outcome: 'sent',
      kind,
      severity: message.severity,
      topicArn: message.topicArn,
      subject: message.subject,
      messageId,
    };
  }

  async function scheduleRecheck(e: AlarmEvent, stateAt: number, dueAt: number): Promise<void> {
    const delaySeconds = Math.min(
      MAX_RECHECK_DELAY_SECONDS,
      Math.max(0, Math.ceil((dueAt - deps.now().getTime()) / 1000)),
    );
    await deps.rechecks.schedule(
      { rowstream: 'alarm-recheck.v1', alarmName: e.detail.alarmName, stateAt, dueAt, event: envelopeOf(e) },
      delaySeconds,
    );
    log.info('flapping ALARM suppressed; looking again when the window ends', {
      alarmName: e.detail.alarmName,
      dueAt: new Date(dueAt).toISOString(),
    });
  }

  async function decideAndSend(
    incoming: IncomingEvent,
    c: Classified,
    key: string,
    sent: SentRecord | null,
  ): Promise<RouteOutcome> {
    if (!c.alarm) return send(incoming, c, 'ALERT', key, sent);
    const d = c.alarm.event.detail;
    const memory = await deps.alarmState.get(d.alarmName);
    let action: AlarmAction;
    let reason: string;
    let recheckAt: number | undefined;
    const at = Date.parse(d.state.timestamp);
    const stateAt = Number.isFinite(at) ? at : deps.now().getTime();
    if (memory && memory.lastKey === key) {
      // A retried delivery of the change this memory already records: repeat its decision.
      action = memory.lastAction;
      reason = 'retry of an applied change';
      if (action === 'SUPPRESSED' && memory.suppressedAlarm && memory.notifiedAt !== null) {
        recheckAt = memory.notifiedAt + config.suppressionWindowSeconds * 1000;
      }
    } else {
      const decision = decideAlarm(
        memory,
        { alarmName: d.alarmName, value: d.state.value, at: stateAt, key },
        config.suppressionWindowSeconds,
      );
      // State first, then the message: if the write loses a race, nothing was sent and the retry decides
      // again on the newer state.
      await deps.alarmState.put(
        { ...decision.next, version: (memory?.version ?? 0) + 1 },
        memory?.version ?? null,
      );
      action = decision.action;
      reason = decision.reason;
      recheckAt = decision.recheckAt;
    }
    if (action === 'ALERT' || action === 'RESOLVED') return send(incoming, c, action, key, sent);
    if (action === 'SUPPRESSED') {
      if (recheckAt !== undefined) await scheduleRecheck(c.alarm.event, stateAt, recheckAt);
      return suppressed(reason, { alarmName: d.alarmName, state: d.state.value });
    }
    log.info('alarm change needs no message', { alarmName: d.alarmName, state: d.state.value, reason });
    return { outcome: 'ignored', reason };
  }

  /** Claim, run, complete; on failure give the claim back (keeping a publish already made). */
  async function once(
    key: string,
    c: { readonly jobId?: string },
    replayName: string | null,
    run: (sent: SentRecord | null) => Promise<RouteOutcome>,
  ): Promise<RouteOutcome> {
    const claim = await idempotency.claim(key, {
      now: deps.now(),
      leaseSeconds: config.claimLeaseSeconds,
      ttlSeconds: config.idempotencyTtlSeconds,
    });
    if (claim.status === 'busy') throw new AlertInProgressError(key);
    if (claim.status === 'done') {
      metrics.record('AlertsSuppressed', 1, 'Count', { properties: { reason: 'duplicate', key } });
      log.info('duplicate delivery, already handled', {
        key,
        replayName,
        ...(c.jobId ? { jobId: c.jobId } : {}),
      });
      return { outcome: 'duplicate', key };
    }
    try {
      const outcome = await run(claim.sent);
      await idempotency.complete(key, {
        outcome: outcome.outcome,
        ...(outcome.outcome === 'sent' ? { messageId: outcome.messageId, kind: outcome.kind } : {}),
      });
      return outcome;
    } catch (error) {
      await idempotency
        .release(key)
        .catch((e: unknown) => log.warn('could not release claim', { key, error: String(e) }));
      throw error;
    }
  }

  return {
    /** Routes one event; idempotent on the event's fact id. Throws retryable errors (see errors.ts). */
    async route(incoming: IncomingEvent): Promise<RouteOutcome> {
      const c = classify(incoming, config);
      if (!c.route) {
        log.info('event not routed', { detailType: incoming.detailType, id: incoming.id, reason: c.reason });
        return { outcome: 'ignored', reason: c.reason };
      }
      const key = `alert#${c.sourceEventId}`;
      return once(key, c, incoming.replayName, (sent) => decideAndSend(incoming, c, key, sent));
    },

    /**
     * The end of a suppression window: pages an alarm still in the ALARM that was suppressed as flapping.
     * Not due yet (a window longer than one SQS delay): scheduled again.
     */
    async recheck(r: AlarmRecheck): Promise<RouteOutcome> {
      const now = deps.now().getTime();
      const incoming = parse(r.event);
      if (incoming.kind !== 'aws.alarm')
        return { outcome: 'ignored', reason: 'recheck of a non-alarm event' };
      if (now < r.dueAt) {
        await scheduleRecheck(incoming, r.stateAt, r.dueAt);
        return { outcome: 'ignored', reason: 'suppression window not over yet' };
      }
      const c = classify(incoming, config);
      if (!c.route) return { outcome: 'ignored', reason: c.reason };
      const sourceEventId = eventIdFor('AlarmRecheck', r.alarmName, String(r.stateAt));
      const key = `alert#${sourceEventId}`;
      const cr: Classified = { ...c, sourceEventId, sourceDetailType: 'AlarmRecheck' };
      return once(key, cr, null, async (sent) => {
        const memory = await deps.alarmState.get(r.alarmName);
        // A retry after the memory was updated below: the decision was ALERT, repeat it.
        const retried = memory?.lastKey === key && memory.lastAction === 'ALERT';
        if (!retried) {
          const d = decideRecheck(memory, r, now, key);
          if (d.action !== 'ALERT' || !d.next || !memory) {
            log.info('suppression window over; nothing to page', {
              alarmName: r.alarmName,
              reason: d.reason,
            });
            return { outcome: 'ignored', reason: d.reason };
          }
          await deps.alarmState.put({ ...d.next, version: memory.version + 1 }, memory.version);
        }
        const since = new Date(r.stateAt).toISOString();
        return send(
          incoming,
          cr,
          'ALERT',
          key,
          sent,
          `Still in ALARM since ${since}: that ALARM came within the flapping window of an earlier message ` +
            `and was held back; the window is over and the alarm has not recovered.`,
        );
      });
    },
  };
}

/** The EventBridge envelope of an alarm change, as the rule delivered it (for a recheck message). */
function envelopeOf(e: AlarmEvent): Record<string, unknown> {
  return {
    version: '0',
    id: e.id,
    'detail-type': e.detailType,
    source: e.source,
    account: e.account ?? '000000000000',
    time: e.time,
    region: e.region ?? 'us-east-1',
    resources: [...e.resources],
    detail: e.detail,
  };
}

export type AlarmRouter = ReturnType<typeof createAlarmRouter>;
