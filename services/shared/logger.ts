import { Logger } from '@aws-lambda-powertools/logger';

export type { Logger };

/**
 * Structured JSON logs (Powertools Logger), one logger per service. Add the job with
 * `logger.appendKeys({ jobId })` or `logger.createChild({ persistentKeys: { jobId } })`.
 */
export function createLogger(service: string, options: { stage?: string; level?: string } = {}): Logger {
  return new Logger({
    serviceName: `rowstream-${service}`,
    logLevel: (options.level ?? 'INFO').toUpperCase() as 'INFO',
    persistentKeys: options.stage ? { stage: options.stage } : {},
  });
}
