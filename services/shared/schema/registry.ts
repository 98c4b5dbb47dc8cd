/** The schema registry as the planner, the producer and the CLI need it (Glue Schema Registry on AWS). */

export const COMPATIBILITIES = [
  'NONE',
  'DISABLED',
  'BACKWARD',
  'BACKWARD_ALL',
  'FORWARD',
  'FORWARD_ALL',
  'FULL',
  'FULL_ALL',
] as const;
export type Compatibility = (typeof COMPATIBILITIES)[number];

export interface RegisteredSchema {
  readonly registry: string;
  readonly schemaName: string;
  /** The schema version id (UUID) written in every record's header. */
  readonly versionId: string;
  readonly version: number;
  /** The Avro schema, JSON text. */
  readonly definition: string;
}

/** Reading only (the producer, consumers): versions are immutable, so lookups by id are cached. */
export interface SchemaReaderPort {
  readonly registryName: string;
  /** A version by its id. */
  byId(versionId: string): Promise<RegisteredSchema>;
}

export interface SchemaRegistryPort extends SchemaReaderPort {
  /** Newest version of a schema; null when the schema does not exist. */
  latest(schemaName: string): Promise<RegisteredSchema | null>;
  /** One version by number; null when it does not exist. */
  version(schemaName: string, version: number): Promise<RegisteredSchema | null>;
  /** The schema's compatibility mode; null when the schema does not exist. */
  compatibility(schemaName: string): Promise<Compatibility | null>;
  /**
   * Registers `definition` as the schema's next version (creating the schema with `compatibility`
   * when it does not exist); an identical definition returns the existing version.
   */
  register(schemaName: string, definition: string, compatibility: Compatibility): Promise<RegisteredSchema>;
}

/** The registry's name for a stage: `rowstream-<stage>-schemas`. */
export function registryNameFor(stage: string): string {
  return `rowstream-${stage}-schemas`;
}

/** The schema of a topic's record values, as Kafka tooling names it. */
export function subjectFor(topic: string): string {
  return `${topic}-value`;
}

/** The registry refused or failed an operation (other than "not found"). */
export class SchemaRegistryError extends Error {
  override readonly name = 'SchemaRegistryError';
}
