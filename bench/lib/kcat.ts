/**
 * `kcat -P` as the yardstick of the benches: the same file's lines produced to the same broker in the
 * same run (idempotent, acks=all), one record per line, so a bench can print its ratio to it pair by
 * pair (bench/producer.ts, bench/connect.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** kcat's path; installs it with apt-get when it is missing (Debian package kcat). */
export function ensureKcat(): string {
  const found = spawnSync('which', ['kcat']).stdout.toString().trim();
  if (found) return found;
  console.log('[bench] kcat missing: apt-get install -y kcat');
  execFileSync('apt-get', ['install', '-y', 'kcat'], { stdio: 'inherit' });
  return 'kcat';
}

export interface KcatResult {
  label: string;
  topic: string;
  rows: number;
  bytes: number;
  seconds: number;
  rowsPerSecond: number;
  mbPerSecond: number;
}

/**
 * Produces every line of `path` to a fresh topic (`createTopic` first, when given) and times it.
 * `rows` is what the rate is counted in (the caller's data rows; the header line goes too).
 */
export async function runKcat(opts: {
  kcat: string;
  brokers: string;
  rows: number;
  path: string;
  size: number;
  createTopic?: (topic: string) => Promise<void>;
  topicPrefix?: string;
}): Promise<KcatResult> {
  const topic = `${opts.topicPrefix ?? 'bench-kcat'}-${randomBytes(3).toString('hex')}`;
  await opts.createTopic?.(topic);
  const t0 = Date.now();
  execFileSync(
    opts.kcat,
    [
      '-P',
      '-b',
      opts.brokers,
      '-t',
      topic,
      '-X',
      'acks=all',
      '-X',
      'enable.idempotence=true',
      '-l',
      opts.path,
    ],
    { stdio: 'inherit' },
  );
  const seconds = (Date.now() - t0) / 1000;
  return {
    label: `kcat-${opts.rows}`,
    topic,
    rows: opts.rows,
    bytes: opts.size,
    seconds,
    rowsPerSecond: Math.round(opts.rows / seconds),
    mbPerSecond: Math.round((opts.size / 1e6 / seconds) * 10) / 10,
  };
}
