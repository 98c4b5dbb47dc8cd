import cliProgress from 'cli-progress';
import { formatCount, formatEta, formatRate, type ProgressSnapshot, progressLine } from './format.ts';

/** How `drop` shows a job while it runs. */
export interface ProgressView {
  update(snapshot: ProgressSnapshot): void;
  /** Removes the live bar (if any) so the summary prints below it. */
  stop(): void;
}

/** A live bar (cli-progress) on a TTY: rows done/total, percent, rows/s, ETA. */
export function barView(stream: NodeJS.WriteStream = process.stderr): ProgressView {
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: ' {bar} {percentage}% | {done}/{totalText} rows | {rate} | ETA {etaText} | {status}{rejects}',
      hideCursor: true,
      barsize: 30,
      fps: 5,
      // The bar's own ETA would average from the upload; the job record's smoothed one is better.
      etaBuffer: 1,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(s) {
      const payload = {
        done: formatCount(s.rowsDone),
        totalText: s.totalRows === null ? '?' : formatCount(s.totalRows),
        rate: formatRate(s.rowsPerSecond),
        etaText: formatEta(s.etaSeconds),
        status: s.status,
        rejects: s.rowsRejected > 0 ? ` | ${formatCount(s.rowsRejected)} rejected` : '',
      };
      const total = Math.max(1, s.totalRows ?? 1);
      if (!started) {
        bar.start(total, Math.min(s.rowsDone, total), payload);
        started = true;
        return;
      }
      bar.setTotal(total);
      bar.update(Math.min(s.rowsDone, total), payload);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}

/**
 * Plain lines for pipes and CI: one at most every `everyMs`, plus one whenever the status changes, so a
 * log shows the job's life without a line per poll.
 */
export function lineView(
  write: (line: string) => void,
  options: { everyMs?: number; now?: () => number } = {},
): ProgressView {
  const everyMs = options.everyMs ?? 5000;
  const now = options.now ?? Date.now;
  let lastAt = Number.NEGATIVE_INFINITY;
  let lastStatus: string | null = null;
  return {
    update(s) {
      const t = now();
      if (s.status !== lastStatus || t - lastAt >= everyMs) {
        write(progressLine(s));
        lastAt = t;
        lastStatus = s.status;
      }
    },
    stop() {},
  };
}
