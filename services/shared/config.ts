import { z } from 'zod';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses settings from the environment once, at start. A missing or wrong setting fails here with
 * its name and the reason, never later in the middle of a job.
 *
 * @example const cfg = loadConfig(z.object({ ROWSTREAM_BUCKET: z.string().min(1) }));
 */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Settings every service shares. */
export const CommonEnv = z.object({
  ROWSTREAM_STAGE: z.string().min(1).default('local'),
  AWS_REGION: z.string().min(1).default('us-east-1'),
  AWS_ENDPOINT_URL: z.url().optional(),
  LOG_LEVEL: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR', 'debug', 'info', 'warn', 'error']).default('INFO'),
  ROWSTREAM_METRICS_SINK: z
    .string()
    .regex(/^(auto|stdout|file:.+)$/, 'auto, stdout or file:<path>')
    .default('auto') as z.ZodType<'auto' | 'stdout' | `file:${string}`>,
});
export type CommonConfig = z.infer<typeof CommonEnv>;

/**
 * ROWSTREAM_SOURCE_FATE, read by the planner and the producer (the services that end jobs): `tag` (the
 * default) tags a finished source object with its job id and outcome; `move` also moves it to
 * processed/ or failed/ (docs/planner.md, "The source object's fate").
 */
export const SourceFateEnvShape = {
  ROWSTREAM_SOURCE_FATE: z.enum(['tag', 'move']).default('tag'),
} as const;

/** A positive integer from an env string, with a default. */
export const intFromEnv = (def: number) => z.coerce.number().int().positive().default(def);
/** A boolean from an env string ("true"/"1"/"false"/"0"). */
export const boolFromEnv = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');
