import { beforeAll, describe, expect, it } from 'vitest';
import { runFaultChaos } from '../../testkit/fault-chaos.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

/**
 * The CI-sized fault run on the real local stack (testkit/fault-chaos.ts): two jobs on one topic
 * while DynamoDB, S3 and EventBridge calls fail through the fault proxy in front of moto (5xx,
 * throttles, resets), one S3 body stalls and one DynamoDB request is never answered (the
 * progress-aware lease gives the job up, it is taken over and fenced), the Kafka broker is SIGKILLed
 * and restarted, and the producer is SIGKILLed. The topic is read back row by row per job.
 */

let outputs: StackOutputs;
let env: Record<string, string>;

beforeAll(async () => {
  ({ outputs, env } = await freshStack('pfault'));
});

describe('producer under production faults', () => {
  it('AWS 5xx/throttles/stalls, a broker SIGKILL and a producer SIGKILL: every row once, in order, no job FAILED', async () => {
    // Prepare + Act
    const report = await runFaultChaos({
      outputs,
      env,
      jobs: 2,
      rows: 60_000,
      faults: ['aws', 'stall', 'broker', 'kill'],
      awsRate: 0.1,
    });
    // Assess: the faults really happened...
    expect(report.injected.injected['5xx'] + report.injected.injected.throttle).toBeGreaterThan(0);
    expect(report.injected.injected['stall-body'] + report.injected.injected.timeout).toBeGreaterThan(0);
    expect(report.events.some((e) => e.includes('Kafka broker SIGKILLed'))).toBe(true);
    expect(report.events.some((e) => e.includes('producer SIGKILLed'))).toBe(true);
    // ...and nothing was lost, doubled or reordered, and no job failed.
    expect(report.jobs.map((j) => [j.status, j.failure])).toEqual(report.jobs.map(() => ['COMPLETED', null]));
    expect({
      delivered: report.rowsDelivered,
      duplicated: report.duplicated,
      missing: report.missing,
      outOfOrder: report.outOfOrder,
    }).toEqual({ delivered: 120_000, duplicated: 0, missing: 0, outOfOrder: 0 });
  }, 600_000);
});
