/**
 * The planner in process, wired as its Lambda entry wires it (createPlanner + serviceRuntime) from a
 * stage's environment, and `drain()`: its SQS queue run through the local runner's Lambda loop until
 * the queue stays empty for a second. For integration tests that drive a real notification through it.
 */
import { runSqsLambda } from '../local/runner/sqs-lambda.ts';
import { createPlanner, type Planner } from '../services/planner/handler.ts';
import { PlannerEnv } from '../services/planner/settings.ts';
import type { AwsClients } from '../services/shared/aws.ts';
import { loadConfig } from '../services/shared/config.ts';
import { createLogger } from '../services/shared/logger.ts';
import { BufferedMetrics, MemorySink, type MetricsPort } from '../services/shared/metrics.ts';
import { serviceRuntime } from '../services/shared/runtime.ts';

export interface InProcessPlanner {
  readonly planner: Planner;
  /** Runs the planner over its queue until it is idle; the runner's totals. */
  drain(): ReturnType<typeof runSqsLambda>;
}

export function inProcessPlanner(
  env: Record<string, string>,
  aws: AwsClients,
  opts: { env?: Record<string, string>; metrics?: MetricsPort } = {},
): InProcessPlanner {
  const config = loadConfig(PlannerEnv, { ...env, LOG_LEVEL: 'ERROR', ...opts.env });
  const planner = createPlanner(
    config,
    serviceRuntime('planner', config, {
      clients: aws,
      log: createLogger('planner', { stage: config.ROWSTREAM_STAGE, level: 'ERROR' }),
      metrics:
        opts.metrics ??
        new BufferedMetrics({ sink: new MemorySink(), defaultDimensions: { Service: 'planner' } }),
    }),
  );
  // The planner queue's URL is the runner's, not the planner's (serviceEnvironment sets it).
  const queueUrl = env.ROWSTREAM_PLANNER_QUEUE_URL;
  if (!queueUrl) throw new Error('inProcessPlanner: ROWSTREAM_PLANNER_QUEUE_URL is not in the environment');
  return {
    planner,
    drain: () =>
      runSqsLambda({
        queueUrl,
        handler: planner.handler,
        sqs: aws.sqs,
        signal: new AbortController().signal,
        waitSeconds: 1,
        stopWhenIdle: 1,
        functionName: 'planner',
      }),
  };
}
