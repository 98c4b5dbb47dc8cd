import { z } from 'zod';
import { PREFIXES } from '../../topology/topology.ts';
import { boolFromEnv, CommonEnv, intFromEnv, loadConfig, SourceFateEnvShape } from '../shared/config.ts';
import { isSupportedDelimiter, SUPPORTED_DELIMITERS_TEXT } from '../shared/csv.ts';
import { PlannerSchemaEnvShape } from '../shared/schema/settings.ts';
import { parseTopicPolicy } from '../shared/topics.ts';
import type { PlannerSettings } from './core.ts';

/** Every planner setting (documented in docs/planner.md). */
export const PlannerEnv = CommonEnv.extend({
  ROWSTREAM_BUS_NAME: z.string().min(1),
  ROWSTREAM_JOBS_TABLE: z.string().min(1),
  ROWSTREAM_COUNTS_TABLE: z.string().min(1),
  ROWSTREAM_INBOUND_PREFIX: z.string().min(1).default(PREFIXES.inbound),
  ROWSTREAM_DEFAULT_TOPIC: z.string().min(1).default('rowstream.rows'),
  /** `*` = any topic but Kafka's internal ones; else a comma-separated allow-list; unset = the default only. */
  ROWSTREAM_ALLOWED_TOPICS: z.string().optional(),
  ROWSTREAM_DEFAULT_FORMAT: z.enum(['json', 'csv', 'avro']).default('json'),
  ROWSTREAM_DEFAULT_KEY_COLUMN: z.string().optional(),
  ROWSTREAM_DEFAULT_FAIL_ON_BAD_ROW: boolFromEnv(false),
  ROWSTREAM_DEFAULT_DELIMITER: z
    .string()
    .refine(isSupportedDelimiter, `one of ${SUPPORTED_DELIMITERS_TEXT}`)
    .default(','),
  /** Range size for counting; objects up to this size are read in one stream. */
  ROWSTREAM_PLANNER_PART_MB: intFromEnv(64),
  ROWSTREAM_PLANNER_CONCURRENCY: intFromEnv(4),
  ROWSTREAM_PLANNER_READ_TAGS: boolFromEnv(true),
  // ROWSTREAM_SOURCE_FATE: tag | move (docs/planner.md, "The source object's fate").
  ...SourceFateEnvShape,
  // ROWSTREAM_DEFAULT_SCHEMA, ROWSTREAM_SCHEMA_* (docs/schemas.md).
  ...PlannerSchemaEnvShape,
});
export type PlannerConfig = z.infer<typeof PlannerEnv>;

/** Parses the planner's settings (fails fast naming a missing or wrong one). */
export function loadPlannerConfig(env: NodeJS.ProcessEnv): PlannerConfig {
  return loadConfig(PlannerEnv, env);
}

/** What the core reads of the settings. */
export function plannerSettings(config: PlannerConfig): PlannerSettings {
  return {
    inboundPrefix: config.ROWSTREAM_INBOUND_PREFIX,
    partSize: config.ROWSTREAM_PLANNER_PART_MB * 1024 * 1024,
    concurrency: config.ROWSTREAM_PLANNER_CONCURRENCY,
    defaults: {
      topic: config.ROWSTREAM_DEFAULT_TOPIC,
      format: config.ROWSTREAM_DEFAULT_FORMAT,
      keyColumn: config.ROWSTREAM_DEFAULT_KEY_COLUMN || null,
      failOnBadRow: config.ROWSTREAM_DEFAULT_FAIL_ON_BAD_ROW,
      delimiter: config.ROWSTREAM_DEFAULT_DELIMITER,
      allowedTopics: parseTopicPolicy(config.ROWSTREAM_ALLOWED_TOPICS, config.ROWSTREAM_DEFAULT_TOPIC),
    },
  };
}
