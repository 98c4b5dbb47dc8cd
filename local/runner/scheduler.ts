import { randomUUID } from 'node:crypto';
import type { ScheduledEvent } from 'aws-lambda';
import type { ScheduleDef } from '../../topology/topology.ts';

/** The EventBridge rule payload a scheduled handler receives in the cloud. */
export function scheduledEvent(
  ruleArn: string,
  region: string,
  at: Date,
): ScheduledEvent<Record<string, never>> {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: ruleArn.split(':')[4] ?? '000000000000',
    time: at.toISOString(),
    region,
    resources: [ruleArn],
    detail: {},
  };
}

/** Milliseconds between two firings of a schedule locally: its interval divided by the speed-up. */
export function intervalMs(schedule: Pick<ScheduleDef, 'everySeconds'>, speedup: number): number {
  return Math.max(1000, Math.round((schedule.everySeconds * 1000) / speedup));
}

export interface ScheduleTarget {
  readonly schedule: Pick<ScheduleDef, 'name' | 'everySeconds' | 'expression'>;
  fire(at: Date): Promise<void>;
}

export interface SchedulerDeps {
  log(level: 'info' | 'warn' | 'error', message: string, extra?: Record<string, unknown>): void;
  now(): Date;
}

/**
 * Fires each target once at start (so a fresh stack has cost and inventory figures right away) and then
 * every interval. A firing still running when the next is due is skipped, not stacked; a failing firing
 * is logged and tried again at the next tick, never crashing the process.
 */
export function startScheduler(
  targets: readonly ScheduleTarget[],
  speedup: number,
  deps: SchedulerDeps,
  signal: AbortSignal,
): Promise<void> {
  const timers: NodeJS.Timeout[] = [];
  const running = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  const fire = (t: ScheduleTarget) => {
    const name = t.schedule.name;
    if (signal.aborted) return;
    if (running.has(name)) {
      deps.log('warn', `${name}: previous run still going, skipping this tick`);
      return;
    }
    running.add(name);
    const startedAt = Date.now();
    const p = t
      .fire(deps.now())
      .then(
        () => deps.log('info', `${name}: ran`, { durationMs: Date.now() - startedAt }),
        (error: unknown) =>
          deps.log('error', `${name}: failed (will run again at the next tick)`, {
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          }),
      )
      .finally(() => {
        running.delete(name);
        inFlight.delete(p);
      });
    inFlight.add(p);
  };
  for (const t of targets) {
    const every = intervalMs(t.schedule, speedup);
    deps.log(
      'info',
      `moto does not fire scheduled rules: the local runner fires ${t.schedule.name} itself every ${every / 1000} s (${t.schedule.expression}, speed-up ${speedup})`,
    );
    fire(t);
    timers.push(setInterval(() => fire(t), every));
  }
  return new Promise<void>((resolve) => {
    const done = async () => {
      for (const timer of timers) clearInterval(timer);
      await Promise.allSettled([...inFlight]);
      resolve();
    };
    if (signal.aborted) void done();
    else signal.addEventListener('abort', () => void done(), { once: true });
  });
}
