import { readFileSync } from 'node:fs';

/** What the machine was doing around a measurement, read from /proc (Linux). */

/** The 1, 5 and 15 minute load averages, as /proc/loadavg gives them. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** CPU seconds (user + system, all threads) a process has used so far; null when it is gone. */
export function cpuSeconds(pid: number): number | null {
  try {
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/** Busy and total CPU time of the whole machine so far (/proc/stat), in clock ticks. */
export function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

/** The share of all cores that was busy between two {@link machineTicks} readings (1 = all). */
export function busyShare(
  from: { busy: number; total: number },
  to: { busy: number; total: number },
): number {
  return Math.round(((to.busy - from.busy) / Math.max(1, to.total - from.total)) * 100) / 100;
}
