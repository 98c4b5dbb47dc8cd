import type { JobSchema, JobStarted } from '../../events/catalog.ts';
import type { JobRecord } from '../shared/jobs.ts';
import { glueAvroWriter } from '../shared/schema/avro.ts';
import { rowSchema, SchemaMismatchError } from '../shared/schema/definition.ts';
import type { SchemaReaderPort } from '../shared/schema/registry.ts';
import { avroRecordBuilder, type TypeMismatch, typedJsonEncoder } from '../shared/schema/typed.ts';
import { ProducerError } from './errors.ts';

/** A good row's Kafka value under the job's schema, or why a value does not fit it. */
export type TypedValueEncoder = (
  fields: readonly string[],
) => { readonly ok: true; readonly value: string | Buffer } | TypeMismatch;

export const TYPE_MISMATCH = 'TYPE_MISMATCH';

/** The job's schema cannot be used (missing definition, unsupported type): the job fails. */
export class BadSchemaError extends ProducerError {
  override readonly name = 'BadSchemaError';
  constructor(message: string) {
    super('BAD_SCHEMA', message);
  }
}

/** The schema's definition: in the event, else in the job record, else in the registry by version id. */
async function definitionOf(
  schema: JobSchema,
  record: JobRecord | null,
  registry: SchemaReaderPort | null,
): Promise<string> {
  if (schema.definition !== undefined) return schema.definition;
  if (record?.schema?.definition !== undefined) return record.schema.definition;
  if (schema.versionId && registry) return (await registry.byId(schema.versionId)).definition;
  throw new BadSchemaError(
    'the job has a schema but neither the event, the job record nor the registry gives its definition',
  );
}

/**
 * The value encoder of a job with a schema: typed JSON, or Avro in the Glue Schema Registry wire
 * format; null when the job has no schema (or is `csv`), so the untyped encoders keep their path.
 */
export async function typedEncoderFor(
  job: JobStarted,
  record: JobRecord | null,
  registry: SchemaReaderPort | null,
): Promise<TypedValueEncoder | null> {
  const schema = job.schema ?? record?.schema;
  const format = job.options.format;
  if (format === 'csv') return null;
  if (!schema) {
    if (format === 'avro') throw new BadSchemaError('format avro needs a schema and the job has none');
    return null;
  }
  const definition = await definitionOf(schema, record, registry);
  let row: ReturnType<typeof rowSchema>;
  try {
    row = rowSchema(definition, job.header);
  } catch (e) {
    if (e instanceof SchemaMismatchError) throw new BadSchemaError(e.message);
    throw e;
  }
  if (format === 'json') return typedJsonEncoder(row, job.header);
  if (!schema.versionId) throw new BadSchemaError('format avro needs a registered schema version id');
  const build = avroRecordBuilder(row, job.header);
  const write = glueAvroWriter(definition, schema.versionId);
  return (fields) => {
    const r = build(fields);
    return r.ok ? { ok: true, value: write(r.value) } : r;
  };
}

/**
 * Byte offset, inside the record's bytes, of field `index` (quote-aware: a delimiter inside quotes
 * does not count), so a reject can point at the value itself.
 */
export function fieldByteOffset(bytes: Uint8Array, index: number, delimiter: string): number {
  const d = delimiter.charCodeAt(0);
  let field = 0;
  let quoted = false;
  for (let i = 0; i < bytes.length; i++) {
    if (field === index) return i;
    const b = bytes[i]!;
    if (b === 0x22) quoted = !quoted;
    else if (b === d && !quoted) field++;
  }
  return bytes.length;
}

const ordinal = (n: number) => {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${s}`;
};

/** The reject's detail: the column, the value's position, what was expected. */
export function mismatchDetail(
  m: TypeMismatch,
  raw: { offset: number; bytes: Uint8Array },
  delimiter: string,
): string {
  const byte = raw.offset + fieldByteOffset(raw.bytes, m.column, delimiter);
  const shown = m.text.length > 80 ? `${m.text.slice(0, 80)}…` : m.text;
  return `column "${m.columnName}" (${ordinal(m.column + 1)} field, byte ${byte}): ${JSON.stringify(shown)} is not ${m.expected}`;
}
