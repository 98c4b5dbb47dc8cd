// Window of the rate behind RowsPerSecond and the ETA.
const RATE_WINDOW_MS = 5_000;

/**
 * Rate over a sliding window of commit points (the newest point at least RATE_WINDOW_MS old is the
 * base). Why not the former EWMA (10 s time constant): it still carried the slow start (process
 * warm-up, fence, first reads) at 10% of a one-minute job, so the ETA there was ~34% off; a window
 * forgets the start as soon as it slides past it, and commit points every ~0.25 s keep it smooth.
 * The first commit point is the window's first base (warm-up): the time before it (fence, resume
 * scan, first S3 bytes, JIT) says nothing about the speed of the rest, so no rate (and no ETA)
 * until the second commit.
 */
export class RateWindow {
  rowRate = 0;
  byteRate = 0;
  private samples: { at: number; row: number; byte: number }[] = [];

  add(now: number, row: number, byte: number): void {
    const samples = this.samples;
    samples.push({ at: now, row, byte });
    while (samples.length > 2 && now - samples[1]!.at >= RATE_WINDOW_MS) samples.shift();
    const base = samples[0]!;
    if (samples.length < 2) return;
    const dt = (now - base.at) / 1000;
    if (dt <= 0) return;
    this.rowRate = (row - base.row) / dt;
    this.byteRate = (byte - base.byte) / dt;
  }

  eta(rowsLeft: number): number | null {
    if (this.rowRate <= 0) return null;
    return Math.max(rowsLeft, 0) / this.rowRate;
  }
}

/** When the next checkpoint and JobProgress are due (explicit state of the cadence). */
export class Cadence {
  private lastCheckpointAt: number;
  private lastCheckpointRow: number;
  private lastProgressAt: number;
  private lastProgressDecile: number;

  constructor(
    now: number,
    row: number,
    private readonly totalRows: number,
    private readonly s: { checkpointRows: number; checkpointMs: number; progressMs: number },
  ) {
    this.lastCheckpointAt = now;
    this.lastCheckpointRow = row;
    this.lastProgressAt = now;
    this.lastProgressDecile = this.decile(row);
  }

  decile(row: number): number {
    return this.totalRows > 0 ? Math.floor((row * 10) / this.totalRows) : 0;
  }

  checkpointDue(now: number, row: number): boolean {
    return (
      row - this.lastCheckpointRow >= this.s.checkpointRows ||
      now - this.lastCheckpointAt >= this.s.checkpointMs
    );
  }

  checkpointed(now: number, row: number): void {
    this.lastCheckpointAt = now;
    this.lastCheckpointRow = row;
  }

  /** True (and remembered) when a JobProgress is due: a new 10% or `progressMs` passed. */
  takeProgress(now: number, row: number): boolean {
    const decile = this.decile(row);
    if (decile > this.lastProgressDecile || now - this.lastProgressAt >= this.s.progressMs) {
      this.lastProgressDecile = decile;
      this.lastProgressAt = now;
      return true;
    }
    return false;
  }
}
