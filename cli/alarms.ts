import {
  type CloudWatchClient,
  DescribeAlarmsCommand,
  type MetricAlarm,
  SetAlarmStateCommand,
} from '@aws-sdk/client-cloudwatch';
import { type AlarmDef, alarmDefinitions, type RunbookLocation, runbookUrl } from '../monitoring/alarms.ts';
import { APP } from '../topology/topology.ts';
import { UsageError } from './context.ts';

/** One alarm as `rowstream alarms` shows it (and the dashboard's alarm panel). */
export interface AlarmView {
  readonly name: string;
  readonly id: string | null;
  readonly severity: string | null;
  readonly title: string | null;
  readonly state: string;
  readonly since: string | null;
  readonly value: number | null;
  readonly threshold: number | null;
  readonly comparison: string | null;
  readonly unit: string | null;
  readonly reason: string | null;
  readonly runbook: string | null;
}

const OP: Record<string, string> = {
  GreaterThanThreshold: '>',
  GreaterThanOrEqualToThreshold: '>=',
  LessThanThreshold: '<',
  LessThanOrEqualToThreshold: '<=',
};

/** Where runbook links point for a stage: ROWSTREAM_RUNBOOK_URL, else the copy shipped in its bucket. */
export function runbookLocation(
  target: { bucket: string; region: string; endpoint: string | null },
  env: NodeJS.ProcessEnv = process.env,
): RunbookLocation {
  return env.ROWSTREAM_RUNBOOK_URL
    ? { kind: 'url', url: env.ROWSTREAM_RUNBOOK_URL }
    : { kind: 'bucket', bucket: target.bucket, region: target.region, endpoint: target.endpoint };
}

function lastDatapoint(reasonData: string | undefined): number | null {
  if (!reasonData) return null;
  try {
    const points = (JSON.parse(reasonData) as { recentDatapoints?: unknown }).recentDatapoints;
    const last = Array.isArray(points) ? points.filter(Number.isFinite).at(-1) : undefined;
    return typeof last === 'number' ? last : null;
  } catch {
    return null;
  }
}

/** Joins what CloudWatch says (state, since, datapoint) with the definitions (runbook, severity). Pure. */
export function alarmViews(
  alarms: readonly MetricAlarm[],
  defs: readonly AlarmDef[],
  runbooks: RunbookLocation,
): AlarmView[] {
  const byName = new Map(defs.map((d) => [d.name, d]));
  const views = alarms.map((a): AlarmView => {
    const def = byName.get(a.AlarmName ?? '') ?? null;
    return {
      name: a.AlarmName ?? '?',
      id: def?.id ?? null,
      severity: def?.severity ?? null,
      title: def?.title ?? null,
      state: a.StateValue ?? 'INSUFFICIENT_DATA',
      since: a.StateUpdatedTimestamp ? new Date(a.StateUpdatedTimestamp).toISOString() : null,
      value: lastDatapoint(a.StateReasonData),
      threshold: a.Threshold ?? def?.threshold ?? null,
      comparison: a.ComparisonOperator ?? def?.comparison ?? null,
      unit: def?.unit ?? null,
      reason: a.StateReason ?? null,
      runbook: def ? runbookUrl(def.runbook, runbooks) : null,
    };
  });
  // Defined alarms that are missing in CloudWatch are worth seeing too (a stage deployed before them).
  for (const d of defs) {
    if (views.some((v) => v.name === d.name)) continue;
    views.push({
      name: d.name,
      id: d.id,
      severity: d.severity,
      title: d.title,
      state: 'NOT DEPLOYED',
      since: null,
      value: null,
      threshold: d.threshold,
      comparison: d.comparison,
      unit: d.unit,
      reason: null,
      runbook: runbookUrl(d.runbook, runbooks),
    });
  }
  const rank: Record<string, number> = { ALARM: 0, INSUFFICIENT_DATA: 1, 'NOT DEPLOYED': 2, OK: 3 };
  return views.sort((a, b) => (rank[a.state] ?? 9) - (rank[b.state] ?? 9) || a.name.localeCompare(b.name));
}

export async function describeStageAlarms(cw: CloudWatchClient, stage: string): Promise<MetricAlarm[]> {
  const out: MetricAlarm[] = [];
  let next: string | undefined;
  do {
    const page = await cw.send(
      new DescribeAlarmsCommand({
        AlarmNamePrefix: `${APP}-${stage}-`,
        NextToken: next,
        AlarmTypes: ['MetricAlarm'],
      }),
    );
    out.push(...(page.MetricAlarms ?? []));
    next = page.NextToken;
  } while (next);
  return out;
}

const ago = (iso: string | null, now: number) => {
  if (!iso) return '-';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m ago`;
  return `${Math.floor(s / 86_400)}d ago`;
};
const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2));

/** "3 > 0 rows", "- > 0 rows" when the state carries no datapoint. */
export function valueVsThresholdText(v: AlarmView): string {
  const op = v.comparison ? (OP[v.comparison] ?? v.comparison) : 'vs';
  const t = v.threshold === null ? '?' : num(v.threshold);
  return `${v.value === null ? '-' : num(v.value)} ${op} ${t}${v.unit ? ` ${v.unit}` : ''}`;
}

/** The table `rowstream alarms` prints. */
export function alarmsTable(views: readonly AlarmView[], now: number): string[] {
  const rows = views.map((v) => [
    v.state,
    ago(v.since, now),
    v.id ?? v.name,
    v.severity ?? '-',
    valueVsThresholdText(v),
    v.runbook ?? '-',
  ]);
  const head = ['STATE', 'SINCE', 'ALARM', 'SEVERITY', 'VALUE vs THRESHOLD', 'RUNBOOK'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

/** An alarm of the stage by physical name, id (`rows-rejected`) or the part after the stage. */
export function resolveAlarm(stage: string, name: string): AlarmDef {
  const defs = alarmDefinitions(stage);
  const found =
    defs.find((d) => d.name === name) ??
    defs.find((d) => d.id === name) ??
    defs.find((d) => d.name === `${APP}-${stage}-${name}`);
  if (!found) {
    throw new UsageError(`no alarm "${name}" in stage ${stage}; one of: ${defs.map((d) => d.id).join(', ')}`);
  }
  return found;
}

/**
 * `rowstream alarms test <name>`: what `aws cloudwatch set-alarm-state` does, with the project's names.
 * The state change takes the real path (default bus -> alarm-state -> alarm-router -> SNS; a `direct`
 * alarm's actions publish to its topic). CloudWatch (or the local runner) puts the alarm back at its next
 * evaluation, which sends the RESOLVED message.
 */
export async function testAlarm(
  cw: CloudWatchClient,
  stage: string,
  name: string,
  state: 'ALARM' | 'OK',
  by: string,
): Promise<AlarmDef> {
  const def = resolveAlarm(stage, name);
  await cw.send(
    new SetAlarmStateCommand({
      AlarmName: def.name,
      StateValue: state,
      StateReason: `Test by rowstream alarms test (${by}): set to ${state} by hand, no datapoint.`,
      StateReasonData: JSON.stringify({ version: '1.0', recentDatapoints: [], threshold: def.threshold }),
    }),
  );
  return def;
}
