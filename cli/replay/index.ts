import { randomBytes } from 'node:crypto';
import { awsClients } from '../../services/shared/aws.ts';
import { describeArchive, eventBridgeReplays } from './adapters/eventbridge.ts';
import { followReplay, formatProgress, planReplay, type ReplayStatus } from './core.ts';
import { ReplayUnsupportedError } from './errors.ts';

export * from './core.ts';
export * from './errors.ts';

/**
 * `rowstream replay`: starts an EventBridge archive replay of a time window onto the stage's bus and
 * follows it to the end. The same code runs on AWS and on the local stack.
 *
 * Locally (moto 5.2.1): plain moto's StartReplay re-sends *every* archived event to *every* rule,
 * ignoring the window and Destination.FilterArns. The project's moto launcher (local/moto/launcher.py,
 * fix `replay-window`) makes it behave like AWS: only events whose time lies in the window, only to the
 * destination bus's rules (FilterArns honoured), each with a new id and `replay-name` set, all within
 * the StartReplay call (DescribeReplay is COMPLETED at once). This module checks that the fix is active
 * (GET /moto-api/rowstream/fixes) and refuses to replay against a moto without it, instead of
 * re-delivering the whole archive.
 */
export interface StartReplayOptions {
  readonly stage: string;
  readonly region: string;
  /** Emulator endpoint; null/undefined on AWS. */
  readonly endpoint?: string | null;
  readonly archiveName: string;
  readonly busName: string;
  readonly from: Date;
  readonly to: Date;
  readonly detailTypes?: readonly string[] | undefined;
  /** Follow until COMPLETED (default true). */
  readonly wait?: boolean;
  readonly pollMs?: number;
  readonly onProgress?: (line: string) => void;
  /** Tests: a fixed clock. */
  readonly now?: () => Date;
}

export interface ReplaySummary {
  readonly name: string;
  readonly arn: string | null;
  readonly archiveArn: string;
  readonly busArn: string;
  readonly from: string;
  readonly to: string;
  readonly rules: readonly string[];
  readonly alsoReplayed: readonly string[];
  readonly state: string;
  readonly emulator: 'moto+replay-window' | null;
}

export async function startReplay(o: StartReplayOptions): Promise<ReplaySummary> {
  const say = o.onProgress ?? (() => {});
  const now = o.now ?? (() => new Date());
  if (o.endpoint) await requireMotoReplayFix(o.endpoint);
  const clients = awsClients({ region: o.region, endpoint: o.endpoint ?? undefined });
  const archive = await describeArchive(clients.events, o.archiveName);
  const plan = planReplay(
    {
      stage: o.stage,
      archiveArn: archive.archiveArn,
      busArn: archive.busArn,
      from: o.from,
      to: o.to,
      detailTypes: o.detailTypes,
    },
    { now: now(), suffix: randomBytes(2).toString('hex') },
  );
  say(
    `replay ${plan.input.name}: archive ${o.archiveName} (${archive.eventCount ?? '?'} events archived) -> bus ${o.busName}, ` +
      `window ${plan.input.from.toISOString()} .. ${plan.input.to.toISOString()}, rules ${plan.rules.join(', ')}`,
  );
  if (plan.alsoReplayed.length > 0) {
    say(
      `note: StartReplay filters by rule, not by event type; the same rules also receive ${plan.alsoReplayed.join(', ')} ` +
        'from this window (harmless: every consumer is idempotent on the event id)',
    );
  }
  const replays = eventBridgeReplays(clients.events);
  const started = await replays.start(plan.input);
  let final: ReplayStatus | null = null;
  if (o.wait !== false) {
    final = await followReplay(
      { replays, sleep: (ms) => new Promise((r) => setTimeout(r, ms)), now: () => Date.now() },
      plan.input,
      { pollMs: o.pollMs ?? (o.endpoint ? 250 : 5_000), onProgress: (p) => say(formatProgress(p)) },
    );
  }
  return {
    name: plan.input.name,
    arn: started.arn,
    archiveArn: archive.archiveArn,
    busArn: archive.busArn,
    from: plan.input.from.toISOString(),
    to: plan.input.to.toISOString(),
    rules: plan.rules,
    alsoReplayed: plan.alsoReplayed,
    state: final?.state ?? started.state,
    emulator: o.endpoint ? 'moto+replay-window' : null,
  };
}

/** Refuses a moto that would replay the whole archive to every rule (see the module comment). */
export async function requireMotoReplayFix(endpoint: string): Promise<void> {
  let fixes: Record<string, string> = {};
  try {
    const res = await fetch(`${endpoint.replace(/\/+$/, '')}/moto-api/rowstream/fixes`);
    if (res.ok) fixes = ((await res.json()) as { fixes?: Record<string, string> }).fixes ?? {};
  } catch {
    // An endpoint without the route is not the project's moto launcher: same answer as a missing fix.
  }
  if (!fixes['replay-window']) {
    throw new ReplayUnsupportedError(
      `${endpoint} does not report the rowstream moto fix "replay-window": plain moto replays every archived ` +
        'event to every rule, ignoring the window. Start the emulator with `npm run local:up` (local/moto/launcher.py).',
    );
  }
}
