import { z } from 'zod';
import { CommonEnv, loadConfig } from '../shared/config.ts';
import { type RoutingConfig, routingConfig } from './routing.ts';

/** Every alarm-router setting (documented in docs/operations.md). */
export const AlarmRouterEnv = CommonEnv.extend({
  ROWSTREAM_STATE_TABLE: z.string().min(1),
  ROWSTREAM_BUS_NAME: z.string().min(1),
  ROWSTREAM_TOPIC_CRITICAL_ARN: z.string().min(1),
  ROWSTREAM_TOPIC_WARNING_ARN: z.string().min(1),
  ROWSTREAM_TOPIC_INFO_ARN: z.string().min(1),
  /** The stage's bucket: runbook links point to the copy shipped there unless ROWSTREAM_RUNBOOK_URL is set. */
  ROWSTREAM_BUCKET: z.string().min(1),
  /** The router's own queue: a flapping ALARM's recheck is a delayed message to it. */
  ROWSTREAM_ALARM_ROUTER_QUEUE_URL: z.string().min(1),
  /** The runbooks page (a wiki, the repository's docs/runbooks.md at the deployed tag); links are `<url>#<anchor>`. */
  ROWSTREAM_RUNBOOK_URL: z.url().optional(),
  /** JSON overrides of the routing configuration (routing.ts). */
  ROWSTREAM_ALERT_ROUTING: z.string().optional(),
});
export type AlarmRouterConfig = z.infer<typeof AlarmRouterEnv>;

/** Parses the router's settings (fails fast naming a missing or wrong one). */
export function loadAlarmRouterConfig(env: NodeJS.ProcessEnv): AlarmRouterConfig {
  return loadConfig(AlarmRouterEnv, env);
}

/** What the core reads of the settings: the routing configuration with its overrides applied. */
export function alarmRouterSettings(config: AlarmRouterConfig): RoutingConfig {
  return routingConfig({
    stage: config.ROWSTREAM_STAGE,
    region: config.AWS_REGION,
    topics: {
      critical: config.ROWSTREAM_TOPIC_CRITICAL_ARN,
      warning: config.ROWSTREAM_TOPIC_WARNING_ARN,
      info: config.ROWSTREAM_TOPIC_INFO_ARN,
    },
    bucket: config.ROWSTREAM_BUCKET,
    endpoint: config.AWS_ENDPOINT_URL ?? null,
    ...(config.ROWSTREAM_RUNBOOK_URL ? { runbookUrl: config.ROWSTREAM_RUNBOOK_URL } : {}),
    overrides: config.ROWSTREAM_ALERT_ROUTING,
  });
}
