import {
  type CloudWatchClient,
  DescribeAlarmsCommand,
  SetAlarmStateCommand,
  type StateValue,
} from '@aws-sdk/client-cloudwatch';
import { type AlarmDef, alarmDefinitions, alarmMetrics } from '../../monitoring/alarms.ts';
import { EmfTail } from '../emf-tail.ts';
import {
  type AlarmState,
  alarmRefs,
  DatapointStore,
  emfDatapoints,
  evaluateAlarm,
  lookbackMs,
  metricKey,
} from './alarms-core.ts';

/**
 * The local stand-in for CloudWatch's alarm evaluation (moto never evaluates alarms): every tick it
 * reads what the services appended to their EMF files (.local/metrics/<service>.emf.jsonl), samples the
 * AWS/SQS figures the alarms watch from the emulator, evaluates every alarm of the stage with
 * alarms-core.ts, and writes each change with SetAlarmState. The launcher turns that into AWS's
 * `CloudWatch Alarm State Change` event on the default bus, so the alert takes the cloud path:
 * default bus -> rule alarm-state -> alarm-router -> SNS.
 *
 * Not evaluated locally, because nothing produces the figure: AWS/Lambda Errors (the planner runs in
 * the local runner, not in Lambda), so `planner-failures` sees only PlannerErrors; an alarm that
 * reads only such namespaces (the per-function Errors/Throttles alarms, ECS/ContainerInsights
 * RunningTaskCount of `producer-tasks`) is skipped, since treating "missing" as breaching there would
 * page for a figure that cannot exist locally.
 */

/** Namespaces nothing on the local stack produces. */
export const NO_LOCAL_SOURCE: ReadonlySet<string> = new Set(['AWS/Lambda', 'ECS/ContainerInsights']);

/** True when at least one of the alarm's metrics has a local source. */
export function evaluableLocally(def: AlarmDef): boolean {
  return alarmMetrics(def).some((m) => !NO_LOCAL_SOURCE.has(m.namespace));
}

export interface AlarmEvaluatorOptions {
  readonly stage: string;
  readonly region: string;
  /** The emulator endpoint (AWS/SQS figures come from the launcher's sqs-queue-stats). */
  readonly endpoint: string;
  readonly metricsDir: string;
  readonly cloudwatch: CloudWatchClient;
  /** Periods are divided by this (ROWSTREAM_SCHEDULE_SPEEDUP). */
  readonly speedup: number;
  readonly log: (level: 'info' | 'warn', message: string, extra?: Record<string, unknown>) => void;
  readonly fetch?: typeof fetch;
}

/** What the alarms of a stage read from AWS/SQS: queue name -> metric names. */
function sqsNeeds(defs: readonly AlarmDef[]): Map<string, Set<string>> {
  const needs = new Map<string, Set<string>>();
  for (const ref of alarmRefs(defs)) {
    if (ref.namespace !== 'AWS/SQS' || !ref.dimensions.QueueName) continue;
    const set = needs.get(ref.dimensions.QueueName) ?? new Set<string>();
    set.add(ref.metricName);
    needs.set(ref.dimensions.QueueName, set);
  }
  return needs;
}

interface QueueStats {
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
  readonly oldestAgeSeconds: number;
}

const SQS_METRIC: Record<string, (s: QueueStats) => number> = {
  ApproximateNumberOfMessagesVisible: (s) => s.visible,
  ApproximateNumberOfMessagesNotVisible: (s) => s.inFlight,
  ApproximateNumberOfMessagesDelayed: (s) => s.delayed,
  ApproximateAgeOfOldestMessage: (s) => s.oldestAgeSeconds,
};

export function createAlarmEvaluator(o: AlarmEvaluatorOptions) {
  const defs = alarmDefinitions(o.stage).filter(evaluableLocally);
  const store = new DatapointStore();
  const files = new EmfTail(o.metricsDir);
  const queues = sqsNeeds(defs);
  const keep = lookbackMs(defs, o.speedup) + 60_000;
  const doFetch = o.fetch ?? fetch;

  async function sampleQueues(now: number): Promise<void> {
    for (const [queue, metrics] of queues) {
      const url = new URL('/moto-api/rowstream/sqs-queue-stats', o.endpoint);
      url.searchParams.set('queue', queue);
      url.searchParams.set('region', o.region);
      const res = await doFetch(url);
      if (res.status === 404) continue;
      if (!res.ok) throw new Error(`sqs-queue-stats ${queue}: HTTP ${res.status}`);
      const stats = (await res.json()) as QueueStats;
      store.add(
        [...metrics]
          .filter((m) => SQS_METRIC[m])
          .map((m) => ({
            key: metricKey('AWS/SQS', m, { QueueName: queue }),
            at: now,
            values: [SQS_METRIC[m]!(stats)],
          })),
      );
    }
  }

  async function states(): Promise<Map<string, AlarmState>> {
    const out = new Map<string, AlarmState>();
    let next: string | undefined;
    do {
      const page = await o.cloudwatch.send(
        new DescribeAlarmsCommand({ AlarmNamePrefix: `rowstream-${o.stage}-`, NextToken: next }),
      );
      for (const a of page.MetricAlarms ?? []) {
        if (a.AlarmName) out.set(a.AlarmName, (a.StateValue ?? 'INSUFFICIENT_DATA') as AlarmState);
      }
      next = page.NextToken;
    } while (next);
    return out;
  }

  return {
    /** One evaluation of every alarm; returns the changes it wrote. */
    async tick(at: Date): Promise<{ alarm: string; from: AlarmState; to: AlarmState }[]> {
      const now = at.getTime();
      for (const line of files.lines()) store.add(emfDatapoints(line));
      await sampleQueues(now);
      store.prune(now - keep);
      const current = await states();
      const changes: { alarm: string; from: AlarmState; to: AlarmState }[] = [];
      for (const def of defs) {
        const from = current.get(def.name);
        // Not provisioned (a stage from before alarms were provisioned): nothing to change.
        if (from === undefined) continue;
        const e = evaluateAlarm(def, store, now, from, o.speedup);
        if (e.state === from) continue;
        await o.cloudwatch.send(
          new SetAlarmStateCommand({
            AlarmName: def.name,
            StateValue: e.state as StateValue,
            StateReason: e.reason.slice(0, 1023),
            StateReasonData: e.reasonData,
          }),
        );
        changes.push({ alarm: def.name, from, to: e.state });
        o.log('info', `alarm ${def.name}: ${from} -> ${e.state}`, { reason: e.reason });
      }
      return changes;
    },
  };
}
