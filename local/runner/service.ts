/**
 * One local service process: `tsx local/runner/service.ts <planner|alarm-router|scheduler>`.
 * Started by `rowstream local up|run` with the stage's environment (services.ts serviceEnv). It wires
 * only: the services' own handlers do the work, exactly as in Lambda.
 */

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { awsClients, awsSettingsFromEnv } from '../../services/shared/aws.ts';
import { createLogger } from '../../services/shared/logger.ts';
import { SCHEDULES } from '../../topology/topology.ts';
import { createAlarmEvaluator } from './alarms.ts';
import { scheduledEvent, startScheduler } from './scheduler.ts';
import { REPO_ROOT, scheduleSpeedup } from './services.ts';
import { runSqsLambda, type SqsLambdaHandler } from './sqs-lambda.ts';

type Handler = SqsLambdaHandler;

// Imported by path at run time: each service lands on its own schedule, and a missing one must fail
// this one process with a clear message, not the type check of the whole CLI.
async function load<T>(relative: string): Promise<T> {
  return (await import(pathToFileURL(join(REPO_ROOT, relative)).href)) as T;
}

function required(name: string): string {
  const v = process.env[name];
  if (!v)
    throw new Error(
      `${name} is not set: this process is started by \`rowstream local up\` with the stage's environment`,
    );
  return v;
}

const name = process.argv[2];
const log = createLogger(`runner-${name ?? 'unknown'}`, {
  stage: process.env.ROWSTREAM_STAGE,
  level: process.env.LOG_LEVEL,
});
const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    log.info(`${sig}: stopping after the current batch`);
    controller.abort();
  });
}

async function runQueue(queueEnv: string, handlerModule: string) {
  const queueUrl = required(queueEnv);
  const { handler } = await load<{ handler: Handler }>(handlerModule);
  const { sqs } = awsClients(awsSettingsFromEnv());
  log.info(`polling ${queueUrl} for ${handlerModule}`);
  await runSqsLambda({ queueUrl, handler, sqs, signal: controller.signal, batchSize: 10, waitSeconds: 10 });
}

async function runSchedules() {
  const speedup = scheduleSpeedup(process.env);
  const metricsDir = process.env.ROWSTREAM_STATE_DIR
    ? join(process.env.ROWSTREAM_STATE_DIR, 'metrics')
    : null;
  const targets = SCHEDULES.map((s) => {
    const ruleArn = `arn:aws:events:${process.env.AWS_REGION ?? 'us-east-1'}:000000000000:rule/rowstream-${process.env.ROWSTREAM_STAGE ?? 'local'}-schedule-${s.name}`;
    let handler: ((event: unknown) => Promise<unknown>) | null = null;
    // Each scheduled service writes its EMF to its own file: its environment says so, the process's stays.
    const env = metricsDir
      ? { ...process.env, ROWSTREAM_METRICS_SINK: `file:${join(metricsDir, `${s.service}.emf.jsonl`)}` }
      : process.env;
    return {
      schedule: s,
      fire: async (at: Date) => {
        // Loaded at the first firing and retried at each one until it loads: a service that is not
        // there yet (or fails to import) costs one error line per tick, not the whole scheduler.
        if (!handler) {
          const mod = await load<{
            handlerFor(env: NodeJS.ProcessEnv): (event: unknown) => Promise<unknown>;
          }>(`services/${s.service}/handler.ts`);
          handler = mod.handlerFor(env);
        }
        await handler(scheduledEvent(ruleArn, process.env.AWS_REGION ?? 'us-east-1', at));
      },
    };
  });
  // moto never evaluates alarms: the runner does, every minute (divided by the speed-up), like CloudWatch.
  const evaluator = createAlarmEvaluator({
    stage: process.env.ROWSTREAM_STAGE ?? 'local',
    region: process.env.AWS_REGION ?? 'us-east-1',
    endpoint: required('AWS_ENDPOINT_URL'),
    metricsDir: metricsDir ?? join(REPO_ROOT, '.local', 'metrics'),
    cloudwatch: awsClients(awsSettingsFromEnv()).cloudwatch,
    speedup,
    log: (level, message, extra) => log[level](message, extra ?? {}),
  });
  const alarmTarget = {
    schedule: {
      name: 'alarm-evaluation',
      everySeconds: 60,
      expression: 'rate(1 minute) (CloudWatch alarm evaluation, done by the local runner)',
    },
    fire: async (at: Date) => {
      await evaluator.tick(at);
    },
  };
  await startScheduler(
    [...targets, alarmTarget],
    speedup,
    {
      log: (level, message, extra) => log[level](message, extra ?? {}),
      now: () => new Date(),
    },
    controller.signal,
  );
}

try {
  switch (name) {
    case 'planner':
      await runQueue('ROWSTREAM_PLANNER_QUEUE_URL', 'services/planner/handler.ts');
      break;
    case 'alarm-router':
      await runQueue('ROWSTREAM_ALARM_ROUTER_QUEUE_URL', 'services/alarm-router/handler.ts');
      break;
    case 'scheduler':
      await runSchedules();
      break;
    default:
      throw new Error(`unknown service "${name}"; expected planner, alarm-router or scheduler`);
  }
  log.info('stopped');
  process.exit(0);
} catch (error) {
  log.error('service crashed', { error: error instanceof Error ? error.stack : String(error) });
  process.exit(1);
}
