/**
 * Alerting as a user tries it on the local stack: a fresh stage with the services started by
 * `rowstream local up --services-only` (periods and schedules 60x faster), an SQS queue subscribed to
 * each alert topic, and real causes: a CSV with bad rows, a producer frozen mid-job (SIGSTOP), seeded
 * Cost Explorer data. The runner evaluates the provisioned alarms from the services' EMF, SetAlarmState
 * puts AWS's state-change event on the default bus, and the alarm-router publishes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { SubscribeCommand } from '@aws-sdk/client-sns';
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyClients, type LocalClients, localClients } from '../../local/clients.ts';
import { seedCostExplorer } from '../../local/cost-explorer.ts';
import { alarmDefinitions } from '../../monitoring/alarms.ts';
import { writeSample } from '../../testkit/sample.ts';
import { createTestQueue } from '../../testkit/sqs.ts';
import { cliStage } from './cli-harness.ts';

interface Alert {
  readonly topic: 'critical' | 'warning' | 'info';
  readonly subject: string;
  readonly message: string;
  readonly kind: string;
  readonly alarmName: string | undefined;
}

let stage: Awaited<ReturnType<typeof cliStage>>;
let aws: LocalClients;
const alerts: Alert[] = [];
let collecting = true;
let collector: Promise<void> | null = null;

const def = (id: string) => alarmDefinitions(stage.outputs.stage).find((a) => a.id === id)!;

/** Drains the three subscription queues into `alerts` until the file ends. */
async function collect(queues: Record<Alert['topic'], string>) {
  while (collecting) {
    for (const [topic, url] of Object.entries(queues) as [Alert['topic'], string][]) {
      const got = await aws.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      for (const m of got.Messages ?? []) {
        const body = JSON.parse(m.Body!) as {
          Subject: string;
          Message: string;
          MessageAttributes?: Record<string, { Value: string }>;
        };
        alerts.push({
          topic,
          subject: body.Subject,
          message: body.Message,
          kind: body.MessageAttributes?.kind?.Value ?? '',
          alarmName: body.MessageAttributes?.alarmName?.Value,
        });
        await aws.sqs.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
      }
    }
    await sleep(500);
  }
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = probe();
    if (v) return v;
    await sleep(500);
  }
  throw new Error(
    `timed out waiting for ${what}; alerts so far:\n${JSON.stringify(alerts, null, 2)}\n${stage.logs(15)}`,
  );
}

const of = (alarm: string, kind: string) => alerts.filter((a) => a.alarmName === alarm && a.kind === kind);

async function alarmStates(): Promise<Map<string, string>> {
  const out = await aws.cloudwatch.send(
    new DescribeAlarmsCommand({ AlarmNamePrefix: `rowstream-${stage.outputs.stage}-` }),
  );
  return new Map((out.MetricAlarms ?? []).map((a) => [a.AlarmName!, a.StateValue!]));
}

beforeAll(async () => {
  stage = await cliStage('al');
  aws = localClients({ endpoint: stage.outputs.endpoint! });
  const queues = {} as Record<Alert['topic'], string>;
  for (const topic of ['critical', 'warning', 'info'] as const) {
    const q = await createTestQueue(aws.sqs, `${stage.outputs.stage}-sub-${topic}`);
    await aws.sns.send(
      new SubscribeCommand({ TopicArn: stage.outputs.topics[topic].arn, Protocol: 'sqs', Endpoint: q.arn }),
    );
    queues[topic] = q.url;
  }
  collector = collect(queues);
  // Month to date 425 USD of a 500 USD budget (85%), answered to the cost-tracker's first query.
  const now = new Date();
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString().slice(0, 10);
  await seedCostExplorer(stage.outputs.endpoint!, [
    {
      ResultsByTime: [
        {
          TimePeriod: { Start: start, End: now.toISOString().slice(0, 10) },
          Total: { UnblendedCost: { Amount: '425.00', Unit: 'USD' } },
          Groups: [],
          Estimated: true,
        },
      ],
    },
  ]);
  Object.assign(stage.env, {
    ROWSTREAM_MONTHLY_BUDGET_USD: '500',
    // A RUNNING job without progress for 5 s is stalled (the cost-tracker runs every 5 s at 60x).
    ROWSTREAM_STALL_SECONDS: '5',
    ROWSTREAM_PRODUCER_CHECKPOINT_MS: '500',
  });
  await stage.up();
}, 240_000);

afterAll(async () => {
  collecting = false;
  await collector;
  await stage?.down();
  if (aws) destroyClients(aws);
});

describe('alerting on the local stack', () => {
  it('provisions every alarm of the definitions, and the runner evaluates them (no INSUFFICIENT_DATA left)', async () => {
    const names = alarmDefinitions(stage.outputs.stage).map((d) => d.name);
    // Budget alarms keep their state through gaps (TreatMissingData ignore): they may still be unknown.
    const waiting = (states: Map<string, string>) =>
      names.some((n) => states.get(n) === 'INSUFFICIENT_DATA' && !n.includes('-budget-'));
    let current = await alarmStates();
    for (let i = 0; i < 30 && waiting(current); i++) {
      await sleep(1000);
      current = await alarmStates();
    }
    expect([...current.keys()].sort()).toEqual([...names].sort());
    for (const n of names.filter((x) => !x.includes('-budget-'))) expect(current.get(n), n).toBe('OK');
  });

  it('a budget threshold fires from seeded Cost Explorer data: one warning message, budget-80 in ALARM', async () => {
    const warning = await until('the 80% budget message', () =>
      alerts.find((a) => a.topic === 'warning' && a.subject.includes('cost reached 80% of budget')),
    );
    expect(warning.message).toContain('425 USD, 85% of the monthly budget of 500 USD (threshold 80%)');
    let states = await alarmStates();
    // The figure's period lasts 60 s at 60x: the alarm moves once a complete period holds it.
    for (let i = 0; i < 90 && states.get(def('budget-80').name) !== 'ALARM'; i++) {
      await sleep(1000);
      states = await alarmStates();
    }
    expect(states.get(def('budget-80').name)).toBe('ALARM');
    expect(states.get(def('budget-100').name)).not.toBe('ALARM');
    // Silent alarms page nobody themselves: the event did.
    expect(alerts.filter((a) => a.alarmName?.includes('-budget-'))).toEqual([]);
    expect(alerts.filter((a) => a.subject.includes('cost reached 80%'))).toHaveLength(1);
  });

  it('a job with rejected rows pages the warning topic once, and says resolved when the alarm returns to OK', async () => {
    // Prepare
    const file = join(stage.dir, 'with-rejects.csv');
    await writeSample(file, { rows: 20_000, badRows: 3 });
    const rejected = def('rows-rejected').name;
    // Act
    const drop = await stage.run(['drop', file, '--topic', `al-${stage.outputs.stage}`, '--timeout', '120']);
    expect(drop.code, `${drop.stdout}\n${drop.stderr}`).toBe(3);
    const alert = await until('the rows-rejected alert', () => of(rejected, 'ALERT')[0]);
    await until('the rows-rejected resolved message', () => of(rejected, 'RESOLVED')[0]);
    await sleep(5000);
    // Assess
    expect(alert.topic).toBe('warning');
    expect(alert.subject).toBe(`[WARNING] rowstream ${stage.outputs.stage}: Rows were rejected`);
    expect(alert.message).toMatch(/Value vs threshold: 3 > 0 rows\./);
    const link = /Runbook: +(\S+)/.exec(alert.message)?.[1] ?? '';
    expect(link).toBe(`${stage.outputs.endpoint}/${stage.outputs.bucket}/runbooks/runbooks.md#rows-rejected`);
    expect(of(rejected, 'ALERT')).toHaveLength(1);
    expect(of(rejected, 'RESOLVED')).toHaveLength(1);
    expect(of(rejected, 'RESOLVED')[0]?.topic).toBe('warning');
  });

  it('a stalled job pages critical once, and resolved once it moves again', async () => {
    // Prepare: a job long enough to freeze in the middle
    const file = join(stage.dir, 'long.csv');
    await writeSample(file, { rows: 600_000 });
    const stalled = def('job-stalled').name;
    const drop = await stage.run(['drop', file, '--no-wait', '--topic', `al2-${stage.outputs.stage}`]);
    expect(drop.code, drop.stderr).toBe(0);
    const jobId = /^job (j-[0-9a-f]{24})$/m.exec(drop.stdout)?.[1];
    expect(jobId).toBeDefined();
    const producerPid = Number(readFileSync(join(stage.stateDir, 'run', 'producer.pid'), 'utf8').trim());
    for (let i = 0; i < 60; i++) {
      const st = await stage.run(['status', jobId!, '--json']);
      const rowsDone = Number(JSON.parse(st.stdout || '{}').job?.rowsDone ?? 0);
      if (rowsDone > 0) break;
      await sleep(500);
    }
    // Act: freeze the producer (its checkpoint stops moving), then let it go on
    process.kill(producerPid, 'SIGSTOP');
    let alert: Alert;
    try {
      alert = await until('the job-stalled alert', () => of(stalled, 'ALERT')[0], 60_000);
    } finally {
      process.kill(producerPid, 'SIGCONT');
    }
    await until('the job-stalled resolved message', () => of(stalled, 'RESOLVED')[0], 90_000);
    // Assess
    expect(alert.topic).toBe('critical');
    expect(alert.subject).toBe(`[CRITICAL] rowstream ${stage.outputs.stage}: A RUNNING job made no progress`);
    expect(alert.message).toMatch(/Value vs threshold: 1 > 0 jobs\./);
    expect(of(stalled, 'ALERT')).toHaveLength(1);
  });

  it('`rowstream alarms` lists every alarm; `alarms test` fires one through the real path and the runner puts it back', async () => {
    // Prepare
    const failures = def('planner-failures');
    const ruleTargets = def('dlq-rule-targets');
    // Act
    const routed = await stage.run(['alarms', 'test', 'planner-failures']);
    const direct = await stage.run(['alarms', 'test', ruleTargets.name]);
    const list = await stage.run(['alarms', '--json']);
    // Assess: the routed alarm pages its topic and resolves at the next evaluation
    expect(routed.code, routed.stderr).toBe(0);
    expect(routed.stdout).toContain(`set ${failures.name} to ALARM`);
    const alert = await until('the test alert', () => of(failures.name, 'ALERT')[0]);
    expect(alert.topic).toBe('warning');
    expect(alert.message).toContain(
      'Value vs threshold: no datapoint (state set without one, e.g. by SetAlarmState) > 0 failures.',
    );
    expect(alert.message).toContain('Test by rowstream alarms test');
    await until('the test alert resolved', () => of(failures.name, 'RESOLVED')[0]);
    // The direct alarm's own action published CloudWatch's message to the critical topic.
    expect(direct.code, direct.stderr).toBe(0);
    const cw = await until('the direct alarm action', () =>
      alerts.find((a) => a.topic === 'critical' && a.subject === `ALARM: "${ruleTargets.name}" in us-east-1`),
    );
    expect(JSON.parse(cw.message)).toMatchObject({ AlarmName: ruleTargets.name, NewStateValue: 'ALARM' });
    const views = JSON.parse(list.stdout).alarms as { name: string; state: string; runbook: string }[];
    expect(views.map((v) => v.name).sort()).toEqual(
      alarmDefinitions(stage.outputs.stage)
        .map((d) => d.name)
        .sort(),
    );
    expect(
      views.every((v) => v.runbook.startsWith(`${stage.outputs.endpoint}/${stage.outputs.bucket}/runbooks/`)),
    ).toBe(true);
  });
});
