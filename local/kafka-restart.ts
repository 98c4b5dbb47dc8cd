import { setTimeout as sleep } from 'node:timers/promises';
import { type LocalPaths, localPaths } from './config.ts';
import { KAFKA_PROCESS_MARKER, probeKafka, startKafka } from './kafka.ts';
import { isAlive, isOurs, readPid, writePid } from './processes.ts';

/**
 * The broker fault of the fault chaos run: SIGKILL the local stack's Kafka (ours: pid file checked
 * against the process marker), then start it again on the same data and wait until a real produce is
 * acknowledged. Only the local stack of this checkout is touched.
 */
export async function killKafka(paths: LocalPaths = localPaths()): Promise<void> {
  const pid = readPid(paths.kafka.pid);
  if (pid === null || !isAlive(pid) || !isOurs(pid, KAFKA_PROCESS_MARKER)) {
    throw new Error(`no local Kafka to kill (pid file ${paths.kafka.pid})`);
  }
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    process.kill(pid, 'SIGKILL');
  }
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(100);
}

/** Starts the broker again and waits for readiness; returns how long it was down from this call. */
export async function startKafkaAgain(
  brokers: readonly string[],
  paths: LocalPaths = localPaths(),
  timeoutMs = 120_000,
): Promise<number> {
  const t0 = Date.now();
  const pid = startKafka(paths);
  writePid(paths.kafka.pid, pid);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await probeKafka(brokers);
      return Date.now() - t0;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await sleep(500);
    }
  }
}
