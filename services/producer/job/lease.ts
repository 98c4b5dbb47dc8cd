import type { Log } from '../../shared/logger.ts';
import { LeaseLostError } from '../errors.ts';
import type { JobsStore } from '../ports.ts';

export interface LeaseSettings {
  readonly owner: string;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  /** No progress (bytes read, batch acked, commit) for this long: stop renewing (see below). */
  readonly stallMs: number;
}

/**
 * Keeps the job's lease while the job makes progress. Every `heartbeatMs` it renews the lease, but only
 * if something moved within `stallMs`: a job stuck in a hung call (an S3 read that never returns, a
 * broker that never answers) stops renewing, so its lease runs out and another producer's sweeper takes
 * the job over; that producer's InitProducerId fences this one in Kafka. When the keeper gives up it
 * marks the lease lost and aborts `signal`, which interrupts the hung read, so this job stops too.
 *
 * A renewal that fails for another reason (a throttle, a timeout) is not a loss: the lease still holds
 * until its expiry, and the next heartbeat tries again. Only a refused renewal (another owner) or an
 * expiry passed without a successful renewal is.
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | null = null;
  private lost: LeaseLostError | null = null;
  private lastProgressAt: number;
  private renewedUntil: number;
  private readonly abort = new AbortController();

  constructor(
    private readonly jobId: string,
    private readonly jobs: JobsStore,
    private readonly s: LeaseSettings,
    private readonly now: () => number,
    private readonly log: Log,
  ) {
    this.lastProgressAt = now();
    this.renewedUntil = now() + s.leaseMs;
  }

  /** Aborted when the lease is lost or given up: pass it to every call that could hang. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.s.heartbeatMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Something moved: bytes read, a batch acknowledged, a commit. */
  progress(): void {
    this.lastProgressAt = this.now();
  }

  /** Throws the loss, if any: the job must stop writing at once. */
  check(): void {
    if (this.lost) throw this.lost;
  }

  get isLost(): boolean {
    return this.lost !== null;
  }

  private markLost(e: LeaseLostError) {
    if (this.lost) return;
    this.lost = e;
    this.abort.abort(e);
  }

  private async beat() {
    if (this.lost) return;
    const now = this.now();
    const idle = now - this.lastProgressAt;
    if (idle >= this.s.stallMs) {
      this.log.warn('no progress; leaving the lease to expire so another producer takes the job over', {
        idleMs: idle,
        stallMs: this.s.stallMs,
      });
      this.markLost(new LeaseLostError(this.jobId, `no progress for ${idle} ms; lease given up`));
      return;
    }
    try {
      await this.jobs.renew(this.jobId, this.s.owner, this.s.leaseMs);
      this.renewedUntil = now + this.s.leaseMs;
    } catch (e) {
      if (e instanceof LeaseLostError) {
        this.markLost(e);
        return;
      }
      // The next heartbeat would come after the expiry: another producer may take the job by then.
      if (this.now() + this.s.heartbeatMs >= this.renewedUntil) {
        this.markLost(new LeaseLostError(this.jobId, `lease expired; renewals failed: ${String(e)}`));
        return;
      }
      this.log.warn('lease renewal failed; retrying at the next heartbeat', { error: String(e) });
    }
  }
}
