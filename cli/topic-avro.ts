import type { GlueClient } from '@aws-sdk/client-glue';
import { decodeGlueAvro, humanize } from '../services/shared/schema/avro.ts';
import { rowSchema } from '../services/shared/schema/definition.ts';
import { registryNameFor } from '../services/shared/schema/registry.ts';
import { glueSchemaReader } from '../services/shared/schema/registry-glue-reader.ts';

/**
 * `topic read`'s decoder for Avro records in the Glue Schema Registry wire format: the schema comes
 * from the registry by the version id in each record (any registry: the id is global), values are
 * made readable (decimals as text, dates and timestamps as ISO 8601). Other values print as text.
 */
export function avroDecoder(
  glue: GlueClient,
  stage: string,
): (value: Buffer) => Promise<Record<string, unknown> | null> {
  const reader = glueSchemaReader(glue, process.env.ROWSTREAM_SCHEMA_REGISTRY ?? registryNameFor(stage));
  return async (value) => {
    const d = await decodeGlueAvro(value, async (id) => (await reader.byId(id)).definition).catch(
      (e: unknown) => ({ error: (e as Error).message }),
    );
    if (!d) return null;
    if ('error' in d) return { value: value.toString('base64'), encoding: 'base64', error: d.error };
    // Columns are not needed to read: every field is listed, by field name.
    const schema = rowSchema(
      d.definition,
      (JSON.parse(d.definition) as { fields: { name: string }[] }).fields.map((f) => f.name),
    );
    return { value: humanize(schema, d.record), schemaVersionId: d.versionId };
  };
}
