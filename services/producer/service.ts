import { EventParseError, parse } from '../../events/bus.ts';
import type { JobStartedEvent } from '../../events/catalog.ts';
import type { JobRecord } from '../shared/jobs.ts';
import type { Log } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import { type JobOutcome, jobStartedFromRecord } from './core.ts';

/** One message taken from the producer queue; `ack` deletes it. */
export interface QueueMessage {
  readonly id: string;
  readonly body: string;
  ack(): Promise<void>;
}

export interface ServiceDeps {
  /** Long-polls the producer queue; rejects with the signal's reason when aborted. */
  readonly receive: (max: number, waitSeconds: number, signal: AbortSignal) => Promise<QueueMessage[]>;
  /** RUNNING jobs whose lease ran out (their producer died or stopped making progress). */
  readonly expiredLeases: (limit: number) => Promise<JobRecord[]>;
  /** PLANNED jobs whose JobStarted never went out (outbox flag still false past the grace). */
  readonly unannouncedPlanned: (limit: number) => Promise<JobRecord[]>;
  /** A referenced plan (planRef) is read by the run itself, so a plan that cannot be had fails the job. */
  readonly runJob: (job: JobStartedEvent, onDecided?: () => Promise<void>) => Promise<JobOutcome>;
  readonly log: Log;
  readonly metrics: MetricsPort;
  readonly now: () => number;
  /** Aborted on SIGTERM: stop polling; running jobs hand their work back themselves. */
  readonly shutdown: AbortSignal;
}

export interface ServiceSettings {
  readonly concurrency: number;
  readonly sweepMs: number;
  readonly waitSeconds: number;
  /** Exit when idle this long (0 = run forever). */
  readonly exitWhenIdleMs: number;
}

/**
 * Resolves after `ms`, or at once when `signal` aborts. The abort listener is removed when the timer
 * fires, so a long-lived signal collects no listeners (one per call would trip Node's
 * MaxListenersExceededWarning after 11 calls and keep every closure alive).
 */
export function sleepAbortable(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The producer's service loop: sweep (expired leases, unannounced PLANNED jobs), long-poll the queue
 * while a slot is free, run up to `concurrency` jobs, exit when idle (if asked) or on shutdown, then wait
 * for the running jobs to hand back. Resolves when everything has stopped.
 */
export async function serviceLoop(deps: ServiceDeps, s: ServiceSettings): Promise<void> {
  const { log, shutdown } = deps;
  const running = new Map<string, Promise<JobOutcome | null>>();
  let lastBusyAt = deps.now();

  const start = (job: JobStartedEvent, onDecided?: () => Promise<void>) => {
    if (running.has(job.jobId)) {
      void onDecided?.();
      return;
    }
    lastBusyAt = deps.now();
    const p = (async () => {
      try {
        const outcome = await deps.runJob(job, onDecided);
        log.info('job outcome', { jobId: job.jobId, outcome });
        return outcome;
      } catch (e) {
        // Infrastructure trouble before or after the job (claim, terminal write): the lease expires and
        // the sweeper (here or elsewhere) retries.
        log.error('job run crashed', { jobId: job.jobId, error: e as Error });
        deps.metrics.record('Errors', 1, 'Count');
        return null;
      } finally {
        running.delete(job.jobId);
        lastBusyAt = deps.now();
      }
    })();
    running.set(job.jobId, p);
  };

  const handle = async (m: QueueMessage) => {
    let job: JobStartedEvent;
    try {
      const ev = parse(m.body);
      if (ev.kind !== 'rowstream' || ev.detailType !== 'JobStarted.v1') {
        log.warn('not a JobStarted event; dropping it', { messageId: m.id });
        await m.ack();
        return;
      }
      job = ev.detail;
    } catch (e) {
      // Left on the queue: after maxReceiveCount it goes to the DLQ, whose alarm tells someone.
      log.error('unreadable message', {
        messageId: m.id,
        error: e instanceof EventParseError ? e.message : String(e),
      });
      return;
    }
    start(job, () => m.ack());
  };

  const sweepFrom = async (what: string, list: (limit: number) => Promise<JobRecord[]>) => {
    const free = s.concurrency - running.size;
    if (free <= 0 || shutdown.aborted) return;
    for (const r of await list(free)) {
      const job = jobStartedFromRecord(r, new Date(deps.now()));
      if (!job || running.has(job.jobId)) continue;
      log.info(`sweeper: taking over ${what}`, { jobId: r.jobId, owner: r.leaseOwner });
      start(job);
    }
  };

  const sweep = async () => {
    try {
      await sweepFrom('a job whose lease expired', deps.expiredLeases);
      await sweepFrom('a PLANNED job whose JobStarted never went out', deps.unannouncedPlanned);
    } catch (e) {
      log.warn('sweep failed', { error: (e as Error).message });
    }
  };

  let lastSweep = Number.NEGATIVE_INFINITY;
  while (!shutdown.aborted) {
    if (deps.now() - lastSweep >= s.sweepMs) {
      lastSweep = deps.now();
      await sweep();
    }
    const free = s.concurrency - running.size;
    if (free <= 0) {
      await Promise.race([...running.values(), sleepAbortable(1000, shutdown)]);
      continue;
    }
    if (s.exitWhenIdleMs > 0 && running.size === 0 && deps.now() - lastBusyAt > s.exitWhenIdleMs) {
      log.info('idle; exiting');
      break;
    }
    try {
      const wait = Math.min(s.waitSeconds, Math.ceil(s.sweepMs / 1000));
      const got = await deps.receive(Math.min(10, free), wait, shutdown);
      for (const m of got) await handle(m);
    } catch (e) {
      if (shutdown.aborted) break;
      log.warn('receive failed', { error: (e as Error).message });
      await sleepAbortable(1000, shutdown);
    }
  }
  await Promise.allSettled([...running.values()]);
}
