import { RULES, type RuleDef } from '../../topology/topology.ts';
import { ReplayFailedError, ReplayFilterError, ReplayWindowError } from './errors.ts';

/**
 * Archive replay, decided: which window, which rules, under which name, and following the replay to its
 * end. No SDK here; {@link ReplayPort} is implemented over EventBridge in adapters/eventbridge.ts.
 *
 * StartReplay has no event-pattern filter: it replays every archived event of the window, and
 * `Destination.FilterArns` only narrows which rules of the bus receive them. So `--event JobStarted`
 * becomes "deliver only to the rules that route JobStarted.v1"; any other event type those same rules
 * route is replayed with it (the plan lists them). That is safe because every consumer is idempotent on
 * the event's own id; it is not a precise type filter, and the CLI says so.
 */

export interface ReplayRequest {
  readonly stage: string;
  readonly archiveArn: string;
  readonly busArn: string;
  readonly from: Date;
  readonly to: Date;
  /** Detail-types (`JobStarted.v1`); empty/undefined = every event of the window to every rule. */
  readonly detailTypes?: readonly string[] | undefined;
}

export interface StartReplayInput {
  readonly name: string;
  readonly archiveArn: string;
  readonly from: Date;
  readonly to: Date;
  readonly destinationBusArn: string;
  /** Rule ARNs to deliver to; undefined = all rules of the bus. */
  readonly filterArns?: readonly string[];
  readonly description: string;
}

export type ReplayState = 'STARTING' | 'RUNNING' | 'CANCELLING' | 'COMPLETED' | 'CANCELLED' | 'FAILED';

export interface ReplayStatus {
  readonly name: string;
  readonly state: ReplayState;
  readonly reason: string | null;
  readonly lastReplayedTime: Date | null;
  readonly startTime: Date | null;
  readonly endTime: Date | null;
}

export interface ReplayPort {
  start(input: StartReplayInput): Promise<{ arn: string | null; state: ReplayState }>;
  describe(name: string): Promise<ReplayStatus>;
}

export interface ReplayPlan {
  readonly input: StartReplayInput;
  /** Rules that will receive events (names), all of the bus when no type was asked for. */
  readonly rules: readonly string[];
  /** Detail-types replayed besides the asked ones, because the same rules route them. */
  readonly alsoReplayed: readonly string[];
}

const MAX_NAME = 64;

/** `rowstream-<stage>-r<yyyymmddhhmmss>-<4 chars>`: sortable, unique, within EventBridge's 64 chars. */
export function replayName(stage: string, now: Date, suffix: string): string {
  const stamp = now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `rowstream-${stage}-r${stamp}-${suffix}`.slice(0, MAX_NAME);
}

function detailTypesOf(rule: RuleDef): readonly string[] {
  const dt = rule.eventPattern['detail-type'];
  return Array.isArray(dt) ? dt.filter((x): x is string => typeof x === 'string') : [];
}

/** `arn:…:event-bus/<bus>` -> `arn:…:rule/<bus>/<rule>` (rule ARNs on a custom bus). */
export function ruleArn(busArn: string, physicalRuleName: string): string {
  const m = /^(arn:[^:]+:events:[^:]*:[^:]*:)event-bus\/(.+)$/.exec(busArn);
  if (!m) throw new ReplayFilterError(`not an event bus ARN: ${busArn}`);
  return `${m[1]}rule/${m[2]}/${physicalRuleName}`;
}

/**
 * Decides the replay. Throws {@link ReplayWindowError} for an empty or future window and
 * {@link ReplayFilterError} for a type no rule on the custom bus routes.
 */
export function planReplay(
  req: ReplayRequest,
  opts: { now: Date; suffix: string; rules?: readonly RuleDef[] },
): ReplayPlan {
  const rules = (opts.rules ?? RULES).filter((r) => r.bus === 'custom');
  if (Number.isNaN(req.from.getTime()) || Number.isNaN(req.to.getTime())) {
    throw new ReplayWindowError('--from and --to must be valid times (ISO 8601)');
  }
  if (req.from.getTime() >= req.to.getTime()) {
    throw new ReplayWindowError(
      `--from (${req.from.toISOString()}) must be before --to (${req.to.toISOString()})`,
    );
  }
  if (req.from.getTime() > opts.now.getTime()) {
    throw new ReplayWindowError(
      `--from (${req.from.toISOString()}) is in the future: nothing is archived yet`,
    );
  }
  // EventBridge rejects an end time after "now"; clamp, since "until now" is what a person means.
  const to = req.to.getTime() > opts.now.getTime() ? opts.now : req.to;
  const name = replayName(req.stage, opts.now, opts.suffix);
  const wanted = [...new Set(req.detailTypes ?? [])];
  let selected = rules;
  if (wanted.length > 0) {
    for (const t of wanted) {
      if (!rules.some((r) => detailTypesOf(r).includes(t))) {
        const routed = [...new Set(rules.flatMap(detailTypesOf))].sort().join(', ');
        throw new ReplayFilterError(`no rule on the bus routes ${t}; replayable types: ${routed}`);
      }
    }
    selected = rules.filter((r) => detailTypesOf(r).some((t) => wanted.includes(t)));
  }
  const also =
    wanted.length === 0
      ? []
      : [...new Set(selected.flatMap(detailTypesOf))].filter((t) => !wanted.includes(t)).sort();
  const physical = (r: RuleDef) => `rowstream-${req.stage}-${r.name}`;
  return {
    input: {
      name,
      archiveArn: req.archiveArn,
      from: req.from,
      to,
      destinationBusArn: req.busArn,
      ...(wanted.length > 0 ? { filterArns: selected.map((r) => ruleArn(req.busArn, physical(r))) } : {}),
      description: `rowstream replay ${req.from.toISOString()}..${to.toISOString()}${wanted.length ? ` of ${wanted.join(',')}` : ''}`,
    },
    rules: selected.map(physical),
    alsoReplayed: also,
  };
}

export interface Progress {
  readonly name: string;
  readonly state: ReplayState;
  /** Share of the window replayed so far, from EventLastReplayedTime; null before the first event. */
  readonly percent: number | null;
  readonly lastReplayedTime: Date | null;
  readonly elapsedMs: number;
}

export interface FollowDeps {
  readonly replays: ReplayPort;
  readonly sleep: (ms: number) => Promise<void>;
  readonly now: () => number;
}

/**
 * Polls DescribeReplay until COMPLETED (returns the last status) or FAILED/CANCELLED/timeout
 * ({@link ReplayFailedError}), reporting progress after each poll.
 */
export async function followReplay(
  deps: FollowDeps,
  plan: Pick<StartReplayInput, 'name' | 'from' | 'to'>,
  opts: { pollMs?: number; timeoutMs?: number; onProgress?: (p: Progress) => void } = {},
): Promise<ReplayStatus> {
  const pollMs = opts.pollMs ?? 5_000;
  const timeoutMs = opts.timeoutMs ?? 6 * 3600_000;
  const started = deps.now();
  const span = plan.to.getTime() - plan.from.getTime();
  for (;;) {
    const st = await deps.replays.describe(plan.name);
    const percent =
      st.state === 'COMPLETED'
        ? 100
        : st.lastReplayedTime
          ? Math.max(0, Math.min(100, (100 * (st.lastReplayedTime.getTime() - plan.from.getTime())) / span))
          : null;
    opts.onProgress?.({
      name: plan.name,
      state: st.state,
      percent,
      lastReplayedTime: st.lastReplayedTime,
      elapsedMs: deps.now() - started,
    });
    if (st.state === 'COMPLETED') return st;
    if (st.state === 'FAILED' || st.state === 'CANCELLED') {
      throw new ReplayFailedError(plan.name, st.state, st.reason ?? 'no reason given');
    }
    if (deps.now() - started > timeoutMs) {
      throw new ReplayFailedError(
        plan.name,
        st.state,
        `still ${st.state} after ${Math.round(timeoutMs / 1000)} s`,
      );
    }
    await deps.sleep(pollMs);
  }
}

/** One line for a person: `replay x: RUNNING 42% (last event 2026-11-25T10:00:00Z, 12 s)`. */
export function formatProgress(p: Progress): string {
  const pct = p.percent === null ? '' : ` ${p.percent.toFixed(0)}%`;
  const last = p.lastReplayedTime ? ` (last event ${p.lastReplayedTime.toISOString()}` : ' (';
  return `replay ${p.name}: ${p.state}${pct}${last}${p.lastReplayedTime ? ', ' : ''}${(p.elapsedMs / 1000).toFixed(0)} s)`;
}
