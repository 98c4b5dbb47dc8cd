import { Logger } from '@aws-lambda-powertools/logger';

/** What a log line carries besides its message (an `error` key may hold an Error: its stack is kept). */
export type LogAttributes = Readonly<Record<string, unknown>>;

/**
 * The one log type every core and adapter takes. Production passes {@link createLogger}'s JSON logger,
 * tests pass {@link NO_LOG} or a recording fake.
 */
export interface Log {
  debug(message: string, attributes?: LogAttributes): void;
  info(message: string, attributes?: LogAttributes): void;
  warn(message: string, attributes?: LogAttributes): void;
  error(message: string, attributes?: LogAttributes): void;
  /** A log whose every line also carries `keys` (e.g. `{ jobId }`). */
  child(keys: LogAttributes): Log;
}

/**
 * Structured JSON logs (Powertools Logger), one logger per service.
 *
 * @example const log = createLogger('planner', { stage: 'prod', level: 'INFO' }); log.child({ jobId }).info('planned');
 */
export function createLogger(
  service: string,
  options: { stage?: string | undefined; level?: string | undefined; keys?: LogAttributes } = {},
): Log {
  return powertoolsLog(
    new Logger({
      serviceName: `rowstream-${service}`,
      logLevel: (options.level ?? 'INFO').toUpperCase() as 'INFO',
      persistentKeys: { ...(options.stage ? { stage: options.stage } : {}), ...options.keys },
    }),
  );
}

function powertoolsLog(logger: Logger): Log {
  return {
    debug: (m, a) => logger.debug(m, { ...a }),
    info: (m, a) => logger.info(m, { ...a }),
    warn: (m, a) => logger.warn(m, { ...a }),
    error: (m, a) => logger.error(m, { ...a }),
    child: (keys) => powertoolsLog(logger.createChild({ persistentKeys: { ...keys } })),
  };
}

/** A log that writes nothing (unit tests, benchmarks). */
export const NO_LOG: Log = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => NO_LOG,
};
