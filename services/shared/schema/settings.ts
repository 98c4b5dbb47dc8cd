import { z } from 'zod';
import { COMPATIBILITIES, registryNameFor } from './registry.ts';

/** Schema settings shared by the planner and the producer (docs/producer.md, "Typed records"). */
export const SchemaEnvShape = {
  /** Glue Schema Registry name; unset: `rowstream-<stage>-schemas`; `none`: no registry (no avro). */
  ROWSTREAM_SCHEMA_REGISTRY: z.string().min(1).optional(),
};

/** The planner's schema choices. */
export const PlannerSchemaEnvShape = {
  ...SchemaEnvShape,
  /** auto | none | infer | registry | <schema name>[@<version>] (see services/planner/schema.ts). */
  ROWSTREAM_DEFAULT_SCHEMA: z.string().min(1).default('auto'),
  /** Compatibility of the schemas rowstream creates in the registry. */
  ROWSTREAM_SCHEMA_COMPATIBILITY: z.enum(COMPATIBILITIES).default('BACKWARD'),
  /** Data bytes read from the start of the file to infer a schema. */
  ROWSTREAM_SCHEMA_SAMPLE_KB: z.coerce.number().int().positive().default(1024),
  ROWSTREAM_SCHEMA_SAMPLE_ROWS: z.coerce.number().int().positive().default(10_000),
};

/** The stage's registry name, or null when turned off. */
export function registryNameFrom(config: {
  readonly ROWSTREAM_STAGE: string;
  readonly ROWSTREAM_SCHEMA_REGISTRY?: string | undefined;
}): string | null {
  const name = config.ROWSTREAM_SCHEMA_REGISTRY ?? registryNameFor(config.ROWSTREAM_STAGE);
  return name === 'none' ? null : name;
}
