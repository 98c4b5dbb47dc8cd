import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type StackOutputs, serviceEnvironment } from '../../topology/topology.ts';

export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));

/**
 * The processes the local runner keeps alive, one per service so a crash of one never takes the others:
 * the SQS-triggered Lambdas run through runSqsLambda, the producer is its own long-running main, and one
 * scheduler process fires the scheduled services (moto never fires scheduled rules itself).
 */
export const RUNNER_SERVICES = ['planner', 'producer', 'alarm-router', 'scheduler'] as const;
export type RunnerService = (typeof RUNNER_SERVICES)[number];

export interface ServiceSpec {
  readonly name: RunnerService;
  /** Script relative to the repo root. */
  readonly entry: string;
  readonly args: readonly string[];
  readonly description: string;
  /**
   * Run from a bundle built from `entry` right before the start, as the image runs it, in
   * `.local/build/<bundle>-<state dir hash>/main.mjs` (see {@link bundleDirPrefix}); absent: the
   * sources through tsx.
   */
  readonly bundle?: string;
}

export const SERVICE_SPECS: Record<RunnerService, ServiceSpec> = {
  planner: {
    name: 'planner',
    entry: 'local/runner/service.ts',
    args: ['planner'],
    description: 'planner handler on the planner queue (runSqsLambda)',
  },
  producer: {
    name: 'producer',
    entry: 'services/producer/main.ts',
    args: [],
    description: 'producer main (long-running, polls the producer queue), from its bundle as in the image',
    // The image's bundle and node flags (scripts/build-producer.ts): ~13% more rows/s than the sources
    // through tsx (bench:producer --runtime tsx,bundle), and what runs locally is what ships.
    bundle: 'producer-runner',
  },
  'alarm-router': {
    name: 'alarm-router',
    entry: 'local/runner/service.ts',
    args: ['alarm-router'],
    description: 'alarm-router handler on the alarm-router queue (runSqsLambda)',
  },
  scheduler: {
    name: 'scheduler',
    entry: 'local/runner/service.ts',
    args: ['scheduler'],
    description: 'fires cost-tracker and dims-publisher on their schedules',
  },
};

export function isRunnerService(name: string): name is RunnerService {
  return (RUNNER_SERVICES as readonly string[]).includes(name);
}

/** Text that the process's command line contains, to tell our process from a recycled pid. */
export function markerOf(spec: ServiceSpec): string {
  return [spec.bundle ? bundleDirPrefix(spec.bundle) : spec.entry, ...spec.args].join(' ');
}

/** Where a runner's bundles are built, repo-relative: this prefix and a hash of the state dir. */
export function bundleDirPrefix(bundle: string): string {
  return `.local/build/${bundle}-`;
}

/** Where the runner keeps each service's log, pid file and EMF metrics file. */
export function runnerPaths(stateDir: string) {
  const logs = join(stateDir, 'logs');
  const run = join(stateDir, 'run');
  const metrics = join(stateDir, 'metrics');
  return {
    stateDir,
    logs,
    run,
    metrics,
    of(name: RunnerService) {
      return {
        log: join(logs, `${name}.log`),
        pid: join(run, `${name}.pid`),
        metrics: join(metrics, `${name}.emf.jsonl`),
      };
    },
    /** The scheduler process writes each scheduled service's EMF into its own file. */
    metricsOf(service: string) {
      return join(metrics, `${service}.emf.jsonl`);
    },
  };
}
export type RunnerPaths = ReturnType<typeof runnerPaths>;

/** How long the local runner waits between schedule firings: the topology's interval / speed-up. */
export function scheduleSpeedup(env: NodeJS.ProcessEnv): number {
  const raw = env.ROWSTREAM_SCHEDULE_SPEEDUP;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`ROWSTREAM_SCHEDULE_SPEEDUP=${raw} must be a positive number`);
  return n;
}

/**
 * The environment a service process gets: the caller's (PATH, credentials), then where its resources
 * are (the same variables the SST stacks set in the cloud), then where its EMF goes.
 */
export function serviceEnv(
  outputs: StackOutputs,
  name: RunnerService,
  paths: RunnerPaths,
  base: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  return {
    ...base,
    ...serviceEnvironment(outputs),
    ROWSTREAM_METRICS_SINK: `file:${paths.of(name).metrics}`,
    ROWSTREAM_STATE_DIR: paths.stateDir,
    ROWSTREAM_SCHEDULE_SPEEDUP: base.ROWSTREAM_SCHEDULE_SPEEDUP ?? '1',
    // The local stage may write to any topic (the demo and `rowstream drop --topic`), never `__*`.
    ROWSTREAM_ALLOWED_TOPICS: base.ROWSTREAM_ALLOWED_TOPICS ?? '*',
    LOG_LEVEL: base.LOG_LEVEL ?? 'INFO',
    // The local dashboard is live (polls every 1.5 s): the producer's default 10 s EMF flush would make
    // its throughput chart step. Only a default: an explicit setting wins.
    ROWSTREAM_PRODUCER_METRICS_FLUSH_MS: base.ROWSTREAM_PRODUCER_METRICS_FLUSH_MS ?? '2000',
    // The local stage creates a job's topic on first use (the demo drops into any topic); in the cloud
    // topics are declared and created by the deploy or an operator, and the producer's default is off.
    ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS: base.ROWSTREAM_PRODUCER_AUTOCREATE_TOPICS ?? 'true',
    // As in the cloud: finished sources are tagged and stay in inbound/ unless the caller sets `move`.
    ROWSTREAM_SOURCE_FATE: base.ROWSTREAM_SOURCE_FATE ?? 'tag',
  };
}
