import { type AwsClients, awsClients } from './aws.ts';
import type { CommonConfig } from './config.ts';
import { emfSink } from './emf.ts';
import { createLogger, type Log, type LogAttributes } from './logger.ts';
import { BufferedMetrics, type MetricsPort, NO_METRICS } from './metrics.ts';

/** What every service's wiring needs besides its own adapters: built once, from the loaded settings. */
export interface ServiceRuntime {
  readonly log: Log;
  readonly metrics: MetricsPort;
  readonly clients: AwsClients;
  /** Stops the metrics interval and flushes what is left (SIGTERM, end of a run). */
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Replace a part (tests: a quiet log, an in-memory metrics sink, clients of their own). */
  readonly log?: Log;
  readonly metrics?: MetricsPort;
  readonly clients?: AwsClients;
  /** Keys on every log line (e.g. the producer's owner id). */
  readonly logKeys?: LogAttributes;
  /** false: metrics go nowhere (the producer's ROWSTREAM_PRODUCER_METRICS switch). Default true. */
  readonly metricsEnabled?: boolean;
  /**
   * Long-running services flush metrics on this interval; without it metrics are flushed when the
   * caller asks (Lambda handlers flush after each invocation, before the process is frozen).
   */
  readonly metricsFlushMs?: number;
}

/**
 * The logger, metrics and AWS clients of one service, from its loaded settings (never process.env).
 *
 * @example const rt = serviceRuntime('planner', loadConfig(PlannerEnv, env)); rt.log.info('ready');
 */
export function serviceRuntime(
  service: string,
  config: CommonConfig,
  options: RuntimeOptions = {},
): ServiceRuntime {
  const log =
    options.log ??
    createLogger(service, {
      stage: config.ROWSTREAM_STAGE,
      level: config.LOG_LEVEL,
      ...(options.logKeys ? { keys: options.logKeys } : {}),
    });
  let buffered: BufferedMetrics | null = null;
  let metrics: MetricsPort = options.metrics ?? NO_METRICS;
  if (!options.metrics && options.metricsEnabled !== false) {
    buffered = new BufferedMetrics({
      sink: emfSink(config.ROWSTREAM_METRICS_SINK),
      defaultDimensions: { Service: service, Stage: config.ROWSTREAM_STAGE },
      ...(options.metricsFlushMs ? { flushIntervalMs: options.metricsFlushMs } : {}),
      onSinkError: (error) => log.warn('metrics sink failed', { error }),
    });
    if (options.metricsFlushMs) buffered.start();
    metrics = buffered;
  }
  return {
    log,
    metrics,
    clients: options.clients ?? awsClients({ region: config.AWS_REGION, endpoint: config.AWS_ENDPOINT_URL }),
    close: async () => {
      await (buffered ? buffered.close() : metrics.flush());
    },
  };
}
