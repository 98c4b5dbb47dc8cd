import { describe, expect, it } from 'vitest';
import { parse } from '../../../events/bus.ts';
import { eventIdFor } from '../../../events/ids.ts';
import { alarmDefinitions } from '../../../monitoring/alarms.ts';
import {
  alarmFactId,
  alarmNumbers,
  classify,
  createAlarmRouter,
  decideAlarm,
  decideRecheck,
  formatMessage,
  reasonNumbers,
  sanitizeSubject,
  valueVsThreshold,
} from '../../../services/alarm-router/core.ts';
import { AlertInProgressError } from '../../../services/alarm-router/errors.ts';
import { alarmRouterFromDeps } from '../../../services/alarm-router/handler.ts';
import { alarmEnvelope, budgetCrossed, fakeDeps, jobCompleted, jobFailed, STAGE, TOPICS } from './fakes.ts';

const DLQ = alarmDefinitions(STAGE).find((a) => a.id === 'dlq-planner')?.name as string;
const t = (minutes: number) => new Date(Date.UTC(2026, 10, 25, 10, minutes)).toISOString();

function formatted(envelope: unknown, kind: 'ALERT' | 'RESOLVED' = 'ALERT', deps = fakeDeps().deps) {
  const incoming = parse(envelope);
  const c = classify(incoming, deps.config);
  if (!c.route) throw new Error('not routed');
  return formatMessage(incoming, c, kind, deps.config);
}

describe('message formatting', () => {
  it('alarm: subject under 100 characters with severity and title; body with numbers and links; attributes', () => {
    // Act
    const m = formatted(alarmEnvelope(DLQ, 'ALARM', t(0), { datapoint: 3, threshold: 0 }));
    // Assess
    expect(m.subject).toBe('[CRITICAL] rowstream unit: Messages in DLQ planner-dlq');
    expect(m.subject.length).toBeLessThan(100);
    expect(m.topicArn).toBe(TOPICS.critical);
    expect(m.body).toContain(`Alarm ${DLQ} changed from OK to ALARM`);
    expect(m.body).toContain('Value vs threshold: 3 > 0 messages.');
    expect(m.body).toContain(
      'Runbook:   https://example.org/rowstream/blob/v1.2.0/docs/runbooks.md#dlq-not-empty (section "dlq-not-empty")',
    );
    expect(m.body).toContain('#dashboards/dashboard/rowstream-unit-dashboard');
    expect(m.attributes).toEqual({
      severity: 'critical',
      service: 'planner',
      kind: 'ALERT',
      stage: STAGE,
      alarmName: DLQ,
    });
  });

  it('job failure: names the job, the file, the reason, the position and the checkpoint', () => {
    const m = formatted(jobFailed());
    expect(m.subject).toBe(
      '[CRITICAL] rowstream unit: job failed (KAFKA_RETRIES_EXHAUSTED): orders-2026-11.csv',
    );
    expect(m.body).toContain('s3://rowstream-unit-data/inbound/orders-2026-11.csv');
    expect(m.body).toContain('Position: row 1201, byte 98304.');
    expect(m.body).toContain('1200 rows done');
    expect(m.body).toContain('runbooks.md#job-failed');
    expect(m.attributes).toMatchObject({
      jobId: 'j-0123456789abcdef01234567',
      service: 'producer',
      kind: 'ALERT',
    });
  });

  it('keeps the subject under 100 characters and on one line whatever the file name', () => {
    const key = `inbound/${'very-long-name-'.repeat(20)}\nwith\tcontrol.csv`;
    const m = formatted(jobFailed({ key }));
    expect(m.subject.length).toBeLessThanOrEqual(99);
    expect(m.subject).not.toMatch(/\p{Cc}/u);
    expect(m.subject.endsWith('...')).toBe(true);
    expect(sanitizeSubject('a\r\nb')).toBe('a b');
  });

  it('budget: threshold vs value in subject and body', () => {
    const m = formatted(budgetCrossed(80));
    expect(m.subject).toBe('[WARNING] rowstream unit: cost reached 80% of budget (412.50 of 500 USD)');
    expect(m.body).toContain('82.50% of the monthly budget of 500 USD (threshold 80%)');
    expect(m.topicArn).toBe(TOPICS.warning);
  });

  it('resolved goes to the same severity by default, to info when configured', () => {
    const same = formatted(alarmEnvelope(DLQ, 'OK', t(5)), 'RESOLVED');
    expect(same.subject).toBe('[RESOLVED] rowstream unit: Messages in DLQ planner-dlq');
    expect(same.topicArn).toBe(TOPICS.critical);
    expect(same.attributes.kind).toBe('RESOLVED');
    const info = formatted(alarmEnvelope(DLQ, 'OK', t(5)), 'RESOLVED', fakeDeps({ resolvedTo: 'info' }).deps);
    expect(info.topicArn).toBe(TOPICS.info);
    expect(info.attributes.severity).toBe('info');
  });

  it('reads value and threshold from reasonData, and survives garbage', () => {
    expect(alarmNumbers(JSON.stringify({ recentDatapoints: [1, 7.5], threshold: 5 }))).toEqual({
      value: 7.5,
      threshold: 5,
    });
    expect(alarmNumbers('not json')).toEqual({ value: null, threshold: null });
    expect(alarmNumbers(undefined)).toEqual({ value: null, threshold: null });
  });
});

describe('decideAlarm (flapping)', () => {
  const change = (value: 'OK' | 'ALARM' | 'INSUFFICIENT_DATA', minute: number) => ({
    alarmName: DLQ,
    value,
    at: Date.parse(t(minute)),
    key: `k-${value}-${minute}`,
  });
  const run = (steps: ['OK' | 'ALARM' | 'INSUFFICIENT_DATA', number][], window = 900) => {
    let memory = null as Parameters<typeof decideAlarm>[0];
    return steps.map(([v, m]) => {
      const d = decideAlarm(memory, change(v, m), window);
      memory = { ...d.next, version: (memory?.version ?? 0) + 1 };
      return d.action;
    });
  };

  it('ALARM -> OK -> ALARM inside the window: one alert, one resolved, then quiet', () => {
    expect(
      run([
        ['ALARM', 0],
        ['OK', 2],
        ['ALARM', 4],
        ['OK', 6],
      ]),
    ).toEqual(['ALERT', 'RESOLVED', 'SUPPRESSED', 'SUPPRESSED']);
  });

  it('ALARM again after the window alerts again', () => {
    expect(
      run([
        ['ALARM', 0],
        ['OK', 2],
        ['ALARM', 20],
      ]),
    ).toEqual(['ALERT', 'RESOLVED', 'ALERT']);
  });

  it('a window of 0 disables suppression', () => {
    expect(
      run(
        [
          ['ALARM', 0],
          ['OK', 1],
          ['ALARM', 2],
        ],
        0,
      ),
    ).toEqual(['ALERT', 'RESOLVED', 'ALERT']);
  });

  it('ALARM -> INSUFFICIENT_DATA -> ALARM is one incident; OK without an alert says nothing', () => {
    expect(
      run([
        ['ALARM', 0],
        ['INSUFFICIENT_DATA', 1],
        ['ALARM', 30],
      ]),
    ).toEqual(['ALERT', 'IGNORED', 'SUPPRESSED']);
    expect(run([['OK', 0]])).toEqual(['IGNORED']);
  });

  it('ignores an older change that arrives late (out of order)', () => {
    expect(
      run([
        ['ALARM', 0],
        ['OK', 5],
        ['ALARM', 3],
      ]),
    ).toEqual(['ALERT', 'RESOLVED', 'IGNORED']);
  });
});

describe('router: idempotency, suppression, events, metrics', () => {
  it('sends once for a duplicate delivery and for an archive replay with a new envelope id', async () => {
    // Prepare
    const { deps, sink } = fakeDeps();
    const router = createAlarmRouter(deps);
    const first = alarmEnvelope(DLQ, 'ALARM', t(0), { id: 'a' });
    const replay = { ...alarmEnvelope(DLQ, 'ALARM', t(0), { id: 'b', replayName: 'r1' }) };
    // Act
    const outcomes = [
      await router.route(parse(first)),
      await router.route(parse(first)),
      await router.route(parse(replay)),
    ];
    await deps.metrics.flush();
    // Assess
    expect(outcomes.map((o) => o.outcome)).toEqual(['sent', 'duplicate', 'duplicate']);
    expect(deps.notifier.sent).toHaveLength(1);
    expect(sink.values('AlertsSuppressed')).toEqual([1, 1]);
    const routed = sink.groups.flatMap((g) =>
      g.points.filter((p) => p.name === 'AlertsRouted').map(() => g.dimensions),
    );
    expect(routed).toEqual([{ Service: 'alarm-router', Stage: STAGE, Severity: 'critical' }]);
  });

  it('a rowstream event is idempotent on its detail eventId and emits AlertRouted.v1 with a stable id', async () => {
    const { deps } = fakeDeps();
    const router = createAlarmRouter(deps);
    await router.route(parse(jobFailed()));
    await router.route(parse({ ...jobFailed(), id: 'another-envelope', 'replay-name': 'replay-1' }));
    expect(deps.notifier.sent).toHaveLength(1);
    const routed = deps.bus.details('AlertRouted.v1');
    expect(routed).toHaveLength(1);
    expect(routed[0]).toMatchObject({
      eventId: eventIdFor('AlertRouted', 'ev-failed-1'),
      sourceEventId: 'ev-failed-1',
      sourceDetailType: 'JobFailed.v1',
      severity: 'critical',
      kind: 'ALERT',
      jobId: 'j-0123456789abcdef01234567',
      topicArn: TOPICS.critical,
      messageId: 'm-1',
    });
  });

  it('ALARM/OK/ALARM within the window: alert, resolved, suppressed (counted)', async () => {
    const { deps, sink } = fakeDeps();
    const router = createAlarmRouter(deps);
    for (const [v, m] of [
      ['ALARM', 0],
      ['OK', 3],
      ['ALARM', 6],
    ] as const)
      await router.route(parse(alarmEnvelope(DLQ, v, t(m))));
    await deps.metrics.flush();
    expect(deps.notifier.sent.map((s) => s.attributes.kind)).toEqual(['ALERT', 'RESOLVED']);
    expect(sink.values('AlertsSuppressed')).toEqual([1]);
    expect(deps.bus.details('AlertRouted.v1').map((d) => d.sourceEventId)).toEqual([
      alarmFactId(DLQ, t(0)),
      alarmFactId(DLQ, t(3)),
    ]);
  });

  it('a failed publish releases the claim, and the retry sends exactly once', async () => {
    const { deps } = fakeDeps();
    const router = createAlarmRouter(deps);
    deps.notifier.failNext = 1;
    const e = parse(alarmEnvelope(DLQ, 'ALARM', t(0)));
    await expect(router.route(e)).rejects.toThrow('SNS is down');
    // The state already recorded the decision: the retry repeats it instead of seeing a "stale" change.
    await expect(router.route(e)).resolves.toMatchObject({ outcome: 'sent', kind: 'ALERT' });
    await expect(router.route(e)).resolves.toMatchObject({ outcome: 'duplicate' });
    expect(deps.notifier.sent).toHaveLength(1);
  });

  it('a step after the SNS publish fails: the retry finishes without paging again (rowstream event)', async () => {
    // Prepare: EventBridge refuses AlertRouted.v1 once, after SNS accepted the message
    const { deps } = fakeDeps();
    const router = createAlarmRouter(deps);
    deps.bus.failNext = 1;
    const e = parse(jobFailed());
    // Act
    await expect(router.route(e)).rejects.toThrow('EventBridge is down');
    const retry = await router.route(e);
    const again = await router.route(e);
    // Assess: one page, the retry reports it with the first message id, AlertRouted.v1 once
    expect(deps.notifier.sent).toHaveLength(1);
    expect(retry).toMatchObject({ outcome: 'sent', kind: 'ALERT', messageId: 'm-1' });
    expect(again).toMatchObject({ outcome: 'duplicate' });
    expect(deps.bus.details('AlertRouted.v1')).toHaveLength(1);
  });

  it('a step after the SNS publish fails: the retry of an alarm change pages once too', async () => {
    const { deps } = fakeDeps();
    const router = createAlarmRouter(deps);
    deps.bus.failNext = 2;
    const e = parse(alarmEnvelope(DLQ, 'ALARM', t(0)));
    await expect(router.route(e)).rejects.toThrow('EventBridge is down');
    await expect(router.route(e)).rejects.toThrow('EventBridge is down');
    await expect(router.route(e)).resolves.toMatchObject({ outcome: 'sent', kind: 'ALERT' });
    expect(deps.notifier.sent).toHaveLength(1);
    // The OK that follows is still a RESOLVED: the alarm memory saw one incident.
    await router.route(parse(alarmEnvelope(DLQ, 'OK', t(3))));
    expect(deps.notifier.sent.map((m) => m.attributes.kind)).toEqual(['ALERT', 'RESOLVED']);
  });

  it('a publish that never reached SNS is sent by the retry (the claim is released, not kept)', async () => {
    const { deps } = fakeDeps();
    const router = createAlarmRouter(deps);
    deps.notifier.failNext = 1;
    const e = parse(jobFailed());
    await expect(router.route(e)).rejects.toThrow('SNS is down');
    expect(deps.idempotency.items.get('alert#ev-failed-1')).toMatchObject({
      status: 'IN_PROGRESS',
      leaseUntil: 0,
    });
    await expect(router.route(e)).resolves.toMatchObject({ outcome: 'sent' });
    expect(deps.notifier.sent).toHaveLength(1);
  });

  it('a delivery while another holds the claim fails, to come back later', async () => {
    const { deps } = fakeDeps();
    const router = createAlarmRouter(deps);
    const e = parse(jobFailed());
    await deps.idempotency.claim('alert#ev-failed-1', { now: deps.now(), leaseSeconds: 60, ttlSeconds: 60 });
    await expect(router.route(e)).rejects.toBeInstanceOf(AlertInProgressError);
    expect(deps.notifier.sent).toHaveLength(0);
  });

  it('ignores events that need no person, without touching state', async () => {
    const { deps } = fakeDeps();
    const router = createAlarmRouter(deps);
    await expect(router.route(parse(jobCompleted(0)))).resolves.toMatchObject({ outcome: 'ignored' });
    expect(deps.idempotency.items.size).toBe(0);
    expect(deps.notifier.sent).toHaveLength(0);
  });

  it('SQS layer: a bad message fails alone (partial batch failure), the good one is routed', async () => {
    const { deps } = fakeDeps();
    const service = alarmRouterFromDeps(deps);
    const response = await service.handler({
      Records: [
        { messageId: 'bad', body: '{"not":"an event"}' },
        { messageId: 'good', body: JSON.stringify(jobFailed()) },
      ],
    });
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: 'bad' }]);
    expect(deps.notifier.sent).toHaveLength(1);
  });
});

describe('flapping suppression ends', () => {
  const W = 900;
  const flap = async (deps: ReturnType<typeof fakeDeps>['deps']) => {
    const router = createAlarmRouter(deps);
    await router.route(parse(alarmEnvelope(DLQ, 'ALARM', t(0))));
    await router.route(parse(alarmEnvelope(DLQ, 'OK', t(3))));
    await router.route(parse(alarmEnvelope(DLQ, 'ALARM', t(6))));
    return router;
  };

  it('a suppressed ALARM schedules a look at the end of the window (15 min after the last message)', async () => {
    const now = new Date(t(6));
    const { deps } = fakeDeps({}, () => now);
    await flap(deps);
    expect(deps.notifier.sent.map((m) => m.attributes.kind)).toEqual(['ALERT', 'RESOLVED']);
    expect(deps.rechecks.scheduled).toHaveLength(1);
    const { recheck, delaySeconds } = deps.rechecks.scheduled[0]!;
    expect(recheck).toMatchObject({
      alarmName: DLQ,
      stateAt: Date.parse(t(6)),
      dueAt: Date.parse(t(3)) + W * 1000,
    });
    expect(delaySeconds).toBe(12 * 60);
  });

  it('still in ALARM when the window ends: paged once, with a note; the OK after it is RESOLVED', async () => {
    // Prepare
    let now = new Date(t(6));
    const { deps } = fakeDeps({}, () => now);
    const router = await flap(deps);
    const { recheck } = deps.rechecks.scheduled[0]!;
    // Act: the delayed message comes back after the window (twice: SQS is at-least-once)
    now = new Date(t(18));
    const first = await router.recheck(recheck);
    const second = await router.recheck(recheck);
    now = new Date(t(25));
    await router.route(parse(alarmEnvelope(DLQ, 'OK', t(25))));
    // Assess
    expect(first).toMatchObject({ outcome: 'sent', kind: 'ALERT' });
    expect(second).toMatchObject({ outcome: 'duplicate' });
    expect(deps.notifier.sent.map((m) => m.attributes.kind)).toEqual([
      'ALERT',
      'RESOLVED',
      'ALERT',
      'RESOLVED',
    ]);
    expect(deps.notifier.sent[2]?.body).toContain(`Still in ALARM since ${t(6)}`);
    expect(deps.notifier.sent[2]?.subject).toBe('[CRITICAL] rowstream unit: Messages in DLQ planner-dlq');
  });

  it('back to OK before the window ends: nothing more is sent', async () => {
    let now = new Date(t(6));
    const { deps } = fakeDeps({}, () => now);
    const router = await flap(deps);
    const { recheck } = deps.rechecks.scheduled[0]!;
    await router.route(parse(alarmEnvelope(DLQ, 'OK', t(8))));
    now = new Date(t(18));
    await expect(router.recheck(recheck)).resolves.toMatchObject({ outcome: 'ignored' });
    expect(deps.notifier.sent).toHaveLength(2);
  });

  it('a recheck that arrives early (window longer than one SQS delay) is scheduled again', async () => {
    let now = new Date(t(6));
    const { deps } = fakeDeps({ suppressionWindowSeconds: 3600 }, () => now);
    const router = await flap(deps);
    const { recheck, delaySeconds } = deps.rechecks.scheduled[0]!;
    expect(delaySeconds).toBe(900);
    now = new Date(t(60));
    await expect(router.recheck(recheck)).resolves.toMatchObject({ outcome: 'ignored' });
    expect(deps.rechecks.scheduled).toHaveLength(2);
    expect(deps.rechecks.scheduled[1]?.delaySeconds).toBe(3 * 60);
    expect(deps.notifier.sent).toHaveLength(2);
  });

  it('decideRecheck: waits before the end, ignores a changed alarm, pages a persisting one', () => {
    const memory = {
      alarmName: DLQ,
      state: 'ALARM' as const,
      stateAt: 6,
      notified: 'RESOLVED' as const,
      notifiedAt: 3,
      suppressedAlarm: true,
      lastKey: 'k',
      lastAction: 'SUPPRESSED' as const,
      version: 3,
    };
    expect(decideRecheck(memory, { stateAt: 6, dueAt: 10 }, 9, 'r').action).toBe('WAIT');
    expect(decideRecheck({ ...memory, stateAt: 8 }, { stateAt: 6, dueAt: 10 }, 10, 'r').action).toBe(
      'IGNORED',
    );
    expect(decideRecheck({ ...memory, state: 'OK' }, { stateAt: 6, dueAt: 10 }, 10, 'r').action).toBe(
      'IGNORED',
    );
    expect(decideRecheck(memory, { stateAt: 6, dueAt: 10 }, 10, 'r')).toMatchObject({
      action: 'ALERT',
      next: { notified: 'ALERT', notifiedAt: 10, suppressedAlarm: false, lastKey: 'r' },
    });
  });

  it('SQS layer: a recheck message is told from a bus event', async () => {
    let now = new Date(t(6));
    const { deps } = fakeDeps({}, () => now);
    await flap(deps);
    const service = alarmRouterFromDeps(deps);
    now = new Date(t(18));
    const response = await service.handler({
      Records: [{ messageId: 'r', body: JSON.stringify(deps.rechecks.scheduled[0]!.recheck) }],
    });
    expect(response.batchItemFailures).toEqual([]);
    expect(deps.notifier.sent).toHaveLength(3);
  });
});

describe('value vs threshold', () => {
  const def = alarmDefinitions(STAGE).find((a) => a.id === 'rows-rejected') ?? null;
  it('from reasonData, else the reason text; the threshold from the definition when the change lacks it', () => {
    expect(
      valueVsThreshold({ reasonData: JSON.stringify({ recentDatapoints: [12], threshold: 0 }) }, def),
    ).toBe('Value vs threshold: 12 > 0 rows.');
    expect(
      valueVsThreshold(
        {
          reason:
            'Threshold Crossed: 1 datapoint [4.0 (25/11/26 10:00:00)] was greater than the threshold (0.0).',
        },
        null,
      ),
    ).toBe('Value vs threshold: 4 vs 0.');
    expect(valueVsThreshold({ reason: 'set by hand' }, def)).toBe(
      'Value vs threshold: no datapoint (state set without one, e.g. by SetAlarmState) > 0 rows.',
    );
    expect(reasonNumbers('1 datapoint [1.5E2 (x)] was greater than the threshold (100.0)')).toEqual({
      value: 150,
      threshold: 100,
    });
  });
});
