import { z } from 'zod';
import { Severity } from '../../events/catalog.ts';
import { type AlarmDef, alarmDefinitions, type RunbookLocation } from '../../monitoring/alarms.ts';
import { dashboardUrl } from '../../monitoring/dashboard.ts';
import { RoutingConfigError } from './errors.ts';

/**
 * How the alarm-router classifies and delivers: a typed object with defaults, overridable by the JSON
 * in ROWSTREAM_ALERT_ROUTING (validated here, so a typo fails at start with the field's name).
 */
export interface RoutingConfig {
  readonly stage: string;
  readonly region: string;
  /** Where runbook links point (monitoring/alarms.ts runbookUrl). */
  readonly runbooks: RunbookLocation;
  readonly dashboardUrl: string;
  /** Topic ARN per severity. */
  readonly topics: Readonly<Record<Severity, string>>;
  /** ALARM again within this many seconds after the last message about that alarm is suppressed. */
  readonly suppressionWindowSeconds: number;
  /** Where RESOLVED goes: the topic of the alarm's own severity (`same`), or `info`. */
  readonly resolvedTo: 'same' | 'info';
  /**
   * Lifetime of idempotency keys. Longer than the longest archive retention (365 days in prod), so a
   * replay of any archived event is recognised as already handled.
   */
  readonly idempotencyTtlSeconds: number;
  /** How long a delivery holds an event's claim before another delivery may take over. */
  readonly claimLeaseSeconds: number;
  readonly events: {
    readonly jobFailed: Severity;
    readonly jobRejected: Severity;
    readonly jobCompletedWithRejects: Severity;
  };
  /** BudgetThresholdCrossed: the rule with the highest `atLeastPercent` not above the threshold wins. */
  readonly budget: readonly { readonly atLeastPercent: number; readonly severity: Severity }[];
  /**
   * Extra alarm rules, checked before the alarm definitions: by name prefix and/or suffix. Alarms that
   * match no rule, are not in the definitions and do not start with `rowstream-<stage>-` belong to
   * someone else (the default bus is shared by every stage) and are ignored.
   */
  readonly alarmRules: readonly {
    readonly prefix?: string;
    readonly suffix?: string;
    readonly severity: Severity;
    readonly runbook?: string;
  }[];
  /** Severity of an alarm of this stage whose name encodes none. */
  readonly defaultAlarmSeverity: Severity;
  readonly alarms: readonly AlarmDef[];
}

const Overrides = z.strictObject({
  suppressionWindowSeconds: z.number().int().nonnegative().optional(),
  resolvedTo: z.enum(['same', 'info']).optional(),
  idempotencyTtlSeconds: z.number().int().positive().optional(),
  claimLeaseSeconds: z.number().int().positive().optional(),
  runbookUrl: z.url().optional(),
  events: z
    .strictObject({
      jobFailed: Severity.optional(),
      jobRejected: Severity.optional(),
      jobCompletedWithRejects: Severity.optional(),
    })
    .optional(),
  budget: z
    .array(z.strictObject({ atLeastPercent: z.number().nonnegative(), severity: Severity }))
    .min(1)
    .optional(),
  alarmRules: z
    .array(
      z
        .strictObject({
          prefix: z.string().min(1).optional(),
          suffix: z.string().min(1).optional(),
          severity: Severity,
          runbook: z.string().min(1).optional(),
        })
        .refine((r) => r.prefix || r.suffix, 'a rule needs a prefix or a suffix'),
    )
    .optional(),
  defaultAlarmSeverity: Severity.optional(),
});
export type RoutingOverrides = z.input<typeof Overrides>;

export const DEFAULT_ROUTING = {
  suppressionWindowSeconds: 15 * 60,
  resolvedTo: 'same',
  idempotencyTtlSeconds: 400 * 24 * 3600,
  claimLeaseSeconds: 60,
  events: { jobFailed: 'critical', jobRejected: 'warning', jobCompletedWithRejects: 'info' },
  budget: [
    { atLeastPercent: 50, severity: 'info' },
    { atLeastPercent: 80, severity: 'warning' },
    { atLeastPercent: 100, severity: 'critical' },
  ],
  alarmRules: [],
  defaultAlarmSeverity: 'warning',
} as const satisfies Partial<RoutingConfig>;

export interface RoutingInput {
  readonly stage: string;
  readonly region: string;
  readonly topics: Readonly<Record<Severity, string>>;
  /** ROWSTREAM_RUNBOOK_URL: the runbooks page; links are `<url>#<anchor>`. */
  readonly runbookUrl?: string;
  /** The stage's bucket, where the deployment ships its runbooks (used without a runbook URL). */
  readonly bucket: string;
  /** The emulator endpoint, locally (the bucket copy is linked there). */
  readonly endpoint?: string | null;
  /** Parsed object or JSON text (ROWSTREAM_ALERT_ROUTING). */
  readonly overrides?: unknown;
}

/** The full routing configuration of a stage; throws {@link RoutingConfigError} naming bad fields. */
export function routingConfig(input: RoutingInput): RoutingConfig {
  let raw = input.overrides ?? {};
  if (typeof raw === 'string') {
    try {
      raw = raw.trim() === '' ? {} : JSON.parse(raw);
    } catch (e) {
      throw new RoutingConfigError(`ROWSTREAM_ALERT_ROUTING is not JSON: ${(e as Error).message}`);
    }
  }
  const parsed = Overrides.safeParse(raw);
  if (!parsed.success) {
    throw new RoutingConfigError(`ROWSTREAM_ALERT_ROUTING: ${z.prettifyError(parsed.error)}`);
  }
  const o = parsed.data;
  const url = o.runbookUrl ?? input.runbookUrl;
  const runbooks: RunbookLocation = url
    ? { kind: 'url', url }
    : { kind: 'bucket', bucket: input.bucket, region: input.region, endpoint: input.endpoint ?? null };
  return {
    stage: input.stage,
    region: input.region,
    runbooks,
    dashboardUrl: dashboardUrl(input.stage, input.region),
    topics: input.topics,
    suppressionWindowSeconds: o.suppressionWindowSeconds ?? DEFAULT_ROUTING.suppressionWindowSeconds,
    resolvedTo: o.resolvedTo ?? DEFAULT_ROUTING.resolvedTo,
    idempotencyTtlSeconds: o.idempotencyTtlSeconds ?? DEFAULT_ROUTING.idempotencyTtlSeconds,
    claimLeaseSeconds: o.claimLeaseSeconds ?? DEFAULT_ROUTING.claimLeaseSeconds,
    events: { ...DEFAULT_ROUTING.events, ...o.events },
    budget: [...(o.budget ?? DEFAULT_ROUTING.budget)].sort((a, b) => a.atLeastPercent - b.atLeastPercent),
    alarmRules: o.alarmRules ?? DEFAULT_ROUTING.alarmRules,
    defaultAlarmSeverity: o.defaultAlarmSeverity ?? DEFAULT_ROUTING.defaultAlarmSeverity,
    alarms: alarmDefinitions(input.stage, { runbooks }),
  };
}
