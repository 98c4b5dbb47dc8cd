import { describe, expect, it } from 'vitest';
import {
  followReplay,
  formatProgress,
  planReplay,
  type ReplayPort,
  type ReplayStatus,
  replayName,
  ruleArn,
} from '../../../cli/replay/core.ts';
import { ReplayFailedError, ReplayFilterError, ReplayWindowError } from '../../../cli/replay/errors.ts';
import { RULES } from '../../../topology/topology.ts';

const BUS = 'arn:aws:events:eu-west-1:123456789012:event-bus/rowstream-prod-bus';
const ARCHIVE = 'arn:aws:events:eu-west-1:123456789012:archive/rowstream-prod-archive';
const now = new Date('2026-11-25T12:00:00.000Z');
const base = {
  stage: 'prod',
  archiveArn: ARCHIVE,
  busArn: BUS,
  from: new Date('2026-11-24T00:00:00Z'),
  to: new Date('2026-11-25T00:00:00Z'),
};

describe('planReplay', () => {
  it('replays the whole window to every rule of the bus when no type is asked for', () => {
    // Prepare / Act
    const plan = planReplay(base, { now, suffix: 'ab12' });
    // Assess
    expect(plan.input).toMatchObject({
      name: 'rowstream-prod-r20261125120000-ab12',
      archiveArn: ARCHIVE,
      destinationBusArn: BUS,
      from: base.from,
      to: base.to,
    });
    expect(plan.input.filterArns).toBeUndefined();
    expect(plan.rules).toEqual(
      RULES.filter((r) => r.bus === 'custom').map((r) => `rowstream-prod-${r.name}`),
    );
    expect(plan.alsoReplayed).toEqual([]);
  });

  it('narrows --event JobStarted to the rules that route it, by ARN', () => {
    const plan = planReplay({ ...base, detailTypes: ['JobStarted.v1'] }, { now, suffix: 'x' });
    expect(plan.input.filterArns).toEqual([
      'arn:aws:events:eu-west-1:123456789012:rule/rowstream-prod-bus/rowstream-prod-job-started',
    ]);
    expect(plan.alsoReplayed).toEqual([]);
  });

  it('says which other types the chosen rules also receive', () => {
    const plan = planReplay({ ...base, detailTypes: ['JobFailed.v1'] }, { now, suffix: 'x' });
    expect(plan.rules).toEqual(['rowstream-prod-ops-events']);
    expect(plan.alsoReplayed).toEqual(['BudgetThresholdCrossed.v1', 'JobCompleted.v1', 'JobRejected.v1']);
  });

  it('rejects a type no rule routes, naming the replayable ones', () => {
    expect(() => planReplay({ ...base, detailTypes: ['JobProgress.v1'] }, { now, suffix: 'x' })).toThrow(
      ReplayFilterError,
    );
    expect(() => planReplay({ ...base, detailTypes: ['JobProgress.v1'] }, { now, suffix: 'x' })).toThrow(
      /JobProgress\.v1.*replayable types: .*JobStarted\.v1/,
    );
  });

  it('rejects an empty, inverted or future window and clamps the end to now', () => {
    expect(() => planReplay({ ...base, to: base.from }, { now, suffix: 'x' })).toThrow(ReplayWindowError);
    expect(() => planReplay({ ...base, from: new Date('bad') }, { now, suffix: 'x' })).toThrow(
      ReplayWindowError,
    );
    expect(() =>
      planReplay(
        { ...base, from: new Date('2026-12-01T00:00:00Z'), to: new Date('2026-12-02T00:00:00Z') },
        { now, suffix: 'x' },
      ),
    ).toThrow(/in the future/);
    const plan = planReplay({ ...base, to: new Date('2027-01-01T00:00:00Z') }, { now, suffix: 'x' });
    expect(plan.input.to).toEqual(now);
  });

  it('builds names EventBridge accepts and rule ARNs from the bus ARN', () => {
    const n = replayName('a-very-long-stage-name-that-goes-on-and-on-and-on', now, 'ffff');
    expect(n.length).toBeLessThanOrEqual(64);
    expect(n).toMatch(/^[.\-_A-Za-z0-9]+$/);
    expect(() => ruleArn('arn:aws:sqs:eu-west-1:1:q', 'r')).toThrow(ReplayFilterError);
  });
});

describe('followReplay', () => {
  const plan = { name: 'r1', from: new Date('2026-11-24T00:00:00Z'), to: new Date('2026-11-25T00:00:00Z') };
  const status = (
    state: ReplayStatus['state'],
    last: string | null,
    reason: string | null = null,
  ): ReplayStatus => ({
    name: 'r1',
    state,
    reason,
    lastReplayedTime: last ? new Date(last) : null,
    startTime: null,
    endTime: null,
  });
  const port = (seq: ReplayStatus[]): ReplayPort => ({
    start: async () => ({ arn: null, state: 'STARTING' }),
    describe: async () => seq.shift() ?? status('COMPLETED', null),
  });

  it('polls until COMPLETED and reports progress through the window', async () => {
    // Prepare
    const seen: string[] = [];
    let t = 0;
    const deps = {
      replays: port([
        status('STARTING', null),
        status('RUNNING', '2026-11-24T12:00:00Z'),
        status('COMPLETED', '2026-11-24T23:59:00Z'),
      ]),
      sleep: async (ms: number) => {
        t += ms;
      },
      now: () => t,
    };
    // Act
    const final = await followReplay(deps, plan, {
      pollMs: 1000,
      onProgress: (p) => seen.push(formatProgress(p)),
    });
    // Assess
    expect(final.state).toBe('COMPLETED');
    expect(seen).toEqual([
      'replay r1: STARTING (0 s)',
      'replay r1: RUNNING 50% (last event 2026-11-24T12:00:00.000Z, 1 s)',
      'replay r1: COMPLETED 100% (last event 2026-11-24T23:59:00.000Z, 2 s)',
    ]);
  });

  it('fails with the reason when EventBridge fails the replay, and on timeout', async () => {
    const deps = {
      replays: port([status('FAILED', null, 'archive gone')]),
      sleep: async () => {},
      now: () => 0,
    };
    await expect(followReplay(deps, plan)).rejects.toThrow(
      new ReplayFailedError('r1', 'FAILED', 'archive gone'),
    );
    let t = 0;
    const slow = {
      replays: { ...port([]), describe: async () => status('RUNNING', null) },
      sleep: async (ms: number) => {
        t += ms;
      },
      now: () => t,
    };
    await expect(followReplay(slow, plan, { pollMs: 1000, timeoutMs: 5000 })).rejects.toThrow(
      /still RUNNING/,
    );
  });
});
