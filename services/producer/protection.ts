/**
 * ECS task scale-in protection while the producer holds jobs.
 *
 * The producer service scales on the job backlog (stacks/Pipeline.ts). When the backlog shrinks,
 * Application Auto Scaling lowers the desired count and ECS stops tasks; a task with scale-in
 * protection is never chosen. So a task protects itself when it takes its first job and drops the
 * protection when its last job ends: scale-in only ever stops idle tasks. A task stopped anyway (a
 * deployment after the protection expired, a Spot interruption) still hands its job over on SIGTERM
 * (commit, checkpoint, release the lease; docs/producer.md).
 *
 * The protection expires by itself (`expiresInMinutes`) and is renewed while jobs are held, so a
 * producer that hangs or loses the agent cannot block scale-in and deployments forever.
 */

/** The ECS agent's task-protection endpoint, or nothing (locally). */
export interface TaskProtectionPort {
  /** `expiresInMinutes` only with `enabled`. Throws when the agent refuses. */
  set(enabled: boolean, expiresInMinutes?: number): Promise<void>;
}

export interface ProtectionLog {
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
}

export interface ProtectionOptions {
  /** Minutes one protection lasts (ECS: 1..2880). Default 60. */
  readonly expiresInMinutes?: number;
  /** How often the protection is renewed while jobs are held. Default: a third of the expiry. */
  readonly renewEveryMs?: number;
  readonly log: ProtectionLog;
  readonly setInterval?: (fn: () => void, ms: number) => unknown;
  readonly clearInterval?: (handle: unknown) => void;
}

export interface ScaleInProtection {
  /** A job was taken (call once per job id; repeats are ignored). */
  jobStarted(jobId: string): void;
  /** A job ended, however it ended. */
  jobEnded(jobId: string): void;
  /** Whether the task should be protected now (jobs are held). */
  readonly wanted: boolean;
  /** The calls to the agent settle (tests, shutdown). */
  settled(): Promise<void>;
  /** Stops renewing and drops the protection. */
  close(): Promise<void>;
}

export const NO_PROTECTION: TaskProtectionPort = { set: async () => {} };

export function scaleInProtection(port: TaskProtectionPort, o: ProtectionOptions): ScaleInProtection {
  const expires = o.expiresInMinutes ?? 60;
  if (!Number.isInteger(expires) || expires < 1 || expires > 2880)
    throw new RangeError(`expiresInMinutes must be 1..2880, not ${expires}`);
  const renewEveryMs = o.renewEveryMs ?? Math.floor((expires * 60_000) / 3);
  const every = o.setInterval ?? ((fn, ms) => setInterval(fn, ms).unref());
  const cancel = o.clearInterval ?? ((h) => clearInterval(h as NodeJS.Timeout));
  const held = new Set<string>();
  let timer: unknown = null;
  // One call at a time, in order, so the agent always ends with the state last asked for.
  let chain: Promise<void> = Promise.resolve();

  const apply = (enabled: boolean, why: string) => {
    chain = chain.then(async () => {
      try {
        await port.set(enabled, enabled ? expires : undefined);
        o.log.info(enabled ? 'scale-in protection on' : 'scale-in protection off', {
          why,
          jobs: held.size,
          ...(enabled ? { expiresInMinutes: expires } : {}),
        });
      } catch (e) {
        // Not fatal: the job goes on; the worst case is a scale-in that stops this task, which then
        // hands its job over on SIGTERM. The next renewal or job change tries again.
        o.log.warn('scale-in protection update failed', { enabled, why, error: (e as Error).message });
      }
    });
  };

  return {
    jobStarted(jobId) {
      if (held.has(jobId)) return;
      held.add(jobId);
      if (held.size !== 1) return;
      apply(true, 'first job taken');
      timer = every(() => {
        if (held.size > 0) apply(true, 'renewal');
      }, renewEveryMs);
    },
    jobEnded(jobId) {
      if (!held.delete(jobId) || held.size > 0) return;
      if (timer !== null) cancel(timer);
      timer = null;
      apply(false, 'last job ended');
    },
    get wanted() {
      return held.size > 0;
    },
    settled: () => chain,
    async close() {
      if (timer !== null) cancel(timer);
      timer = null;
      if (held.size > 0) {
        held.clear();
        apply(false, 'shutting down');
      }
      await chain;
    },
  };
}
