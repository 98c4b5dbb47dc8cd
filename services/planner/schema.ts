import type { JobSchema, RecordFormat } from '../../events/catalog.ts';
// The producer's row framing, so the sample is split exactly as the producer will split the file.
import { decodeRow, RowSplitter } from '../shared/rows.ts';
import { compatibilityProblem } from '../shared/schema/avro.ts';
import { avroDefinition, recordName, rowSchema, SchemaMismatchError } from '../shared/schema/definition.ts';
import { inferColumns } from '../shared/schema/infer.ts';
import {
  type Compatibility,
  type RegisteredSchema,
  SchemaRegistryError,
  type SchemaRegistryPort,
  subjectFor,
} from '../shared/schema/registry.ts';
import { BadOptionsError, RejectedObjectError } from './errors.ts';
import type { ObjectStorePort, ObjectVersionRef } from './ports.ts';

/** Per-object choice of schema: S3 metadata `x-amz-meta-rowstream-schema` (or the tag), else the stage's. */
export const SCHEMA_OPTION = 'rowstream-schema';

export type SchemaChoice =
  | { readonly kind: 'auto' | 'none' | 'infer' | 'registry' }
  | { readonly kind: 'named'; readonly name: string; readonly version: number | 'latest' };

const NAMED = /^([A-Za-z0-9_.$#-]{1,255}?)(?:@([1-9][0-9]*|latest))?$/;

/**
 * `auto` (avro: the topic's registered schema when the file fits it, else one inferred, registered as
 * the next version if compatible; json and csv: no schema), `none`, `infer`, `registry` (the topic's
 * `<topic>-value`, newest version), or a registered schema `<name>` / `<name>@<version>`.
 */
export function parseSchemaChoice(raw: string): SchemaChoice {
  const v = raw.trim();
  const lower = v.toLowerCase();
  if (lower === 'auto' || lower === 'none' || lower === 'infer' || lower === 'registry')
    return { kind: lower };
  const m = NAMED.exec(v);
  if (!m) {
    throw new BadOptionsError(
      `${SCHEMA_OPTION} must be auto, none, infer, registry or a registered schema name[@version] (got "${raw}")`,
    );
  }
  return {
    kind: 'named',
    name: m[1]!,
    version: m[2] === undefined || m[2] === 'latest' ? 'latest' : Number(m[2]),
  };
}

export interface SchemaSettings {
  /** The stage's choice (ROWSTREAM_DEFAULT_SCHEMA). */
  readonly defaultChoice: string;
  /** Compatibility of schemas rowstream creates (ROWSTREAM_SCHEMA_COMPATIBILITY). */
  readonly compatibility: Compatibility;
  /** Bytes of data rows read for inference. */
  readonly sampleBytes: number;
  readonly sampleRows: number;
}

export interface SchemaInput {
  readonly ref: ObjectVersionRef;
  readonly size: number;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tags: Readonly<Record<string, string>>;
  readonly header: readonly string[];
  readonly dataOffset: number;
  readonly delimiter: string;
  readonly topic: string;
  readonly format: RecordFormat;
}

/** The planner's schema step: the job's schema, null for none; throws RejectedObjectError. */
export interface JobSchemaPort {
  resolve(input: SchemaInput): Promise<JobSchema | null>;
}

export class BadSchemaError extends RejectedObjectError {
  override readonly name = 'BadSchemaError';
  constructor(message: string) {
    super('BAD_SCHEMA', message, { row: 0 });
  }
}

export class SchemaIncompatibleError extends RejectedObjectError {
  override readonly name = 'SchemaIncompatibleError';
  constructor(message: string) {
    super('SCHEMA_INCOMPATIBLE', message);
  }
}

const lowerKeys = (r: Readonly<Record<string, string>>) =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v]));

const fromRegistry = (source: JobSchema['source'], r: RegisteredSchema): JobSchema => ({
  source,
  registry: r.registry,
  schemaName: r.schemaName,
  version: r.version,
  versionId: r.versionId,
  definition: r.definition,
});

/** Data rows from the start of the file (at most `bytes`, `rows`), split as the producer does. */
export async function sampleRows(
  store: ObjectStorePort,
  input: Pick<SchemaInput, 'ref' | 'size' | 'header' | 'dataOffset' | 'delimiter'>,
  limits: { bytes: number; rows: number },
): Promise<string[][]> {
  const end = Math.min(input.size, input.dataOffset + limits.bytes);
  if (end <= input.dataOffset) return [];
  const splitter = new RowSplitter({
    rowsBefore: 0,
    startOffset: input.dataOffset,
    delimiter: input.delimiter,
    maxRecordBytes: limits.bytes,
  });
  const out: string[][] = [];
  const take = (rows: ReturnType<RowSplitter['push']>) => {
    for (const raw of rows) {
      if (out.length >= limits.rows) return;
      const d = decodeRow(raw, input.header, input.delimiter);
      // Bad rows are the producer's to reject; they say nothing about the columns' types.
      if (d.ok) out.push(d.fields);
    }
  };
  for await (const chunk of store.read(input.ref, input.dataOffset, end)) {
    take(splitter.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    if (out.length >= limits.rows) return out;
  }
  // A cut row at the end of a partial sample is not a row; at the end of the file it is.
  if (end === input.size) take(splitter.end());
  return out;
}

/**
 * Decides the job's schema. Registry work (lookups, compatibility check, registration) happens only
 * for `avro` and for the choices that name the registry; `json` with `infer` stays local.
 */
export function schemaResolver(deps: {
  readonly store: ObjectStorePort;
  readonly registry: SchemaRegistryPort | null;
  readonly settings: SchemaSettings;
}): JobSchemaPort {
  const { store, registry, settings } = deps;
  const needRegistry = (why: string): SchemaRegistryPort => {
    if (!registry)
      throw new BadOptionsError(`${why} needs a schema registry, and none is configured for this stage`);
    return registry;
  };
  const checkFits = (definition: string, header: readonly string[], what: string) => {
    try {
      rowSchema(definition, header);
    } catch (e) {
      if (e instanceof SchemaMismatchError)
        throw new BadSchemaError(`${what} does not fit the file: ${e.message}`);
      throw e;
    }
  };
  const infer = async (input: SchemaInput, like: string | null) => {
    const rows = await sampleRows(store, input, { bytes: settings.sampleBytes, rows: settings.sampleRows });
    return avroDefinition(inferColumns(input.header, rows), like ? recordName(like) : undefined);
  };

  return {
    async resolve(input) {
      const m = lowerKeys(input.metadata);
      const t = lowerKeys(input.tags);
      const choice = parseSchemaChoice(m[SCHEMA_OPTION] ?? t[SCHEMA_OPTION] ?? settings.defaultChoice);
      // csv records are the file's own text: a schema would change nothing in them.
      if (input.format === 'csv') return null;
      const avro = input.format === 'avro';
      if (choice.kind === 'none') {
        if (avro) throw new BadOptionsError(`format avro needs a schema (${SCHEMA_OPTION} is none)`);
        return null;
      }
      if (choice.kind === 'auto' && !avro) return null;
      const subject = subjectFor(input.topic);

      if (choice.kind === 'named') {
        const reg = needRegistry(`${SCHEMA_OPTION} "${choice.name}"`);
        const found =
          choice.version === 'latest'
            ? await reg.latest(choice.name)
            : await reg.version(choice.name, choice.version);
        if (!found) {
          throw new BadSchemaError(
            `schema ${choice.name}${choice.version === 'latest' ? '' : ` version ${choice.version}`} is not in registry ${reg.registryName}`,
          );
        }
        checkFits(found.definition, input.header, `schema ${found.schemaName} version ${found.version}`);
        return fromRegistry('given', found);
      }

      if (choice.kind === 'registry') {
        const reg = needRegistry(`${SCHEMA_OPTION} registry`);
        const found = await reg.latest(subject);
        if (!found) throw new BadSchemaError(`registry ${reg.registryName} has no schema ${subject}`);
        checkFits(found.definition, input.header, `schema ${subject} version ${found.version}`);
        return fromRegistry('registry', found);
      }

      // auto (avro) or infer
      if (!avro) {
        const definition = await infer(input, null);
        return {
          source: 'inferred',
          registry: null,
          schemaName: null,
          version: null,
          versionId: null,
          definition,
        };
      }
      const reg = needRegistry('format avro');
      const latest = await reg.latest(subject);
      if (latest && choice.kind === 'auto') {
        try {
          rowSchema(latest.definition, input.header);
          return fromRegistry('registry', latest);
        } catch (e) {
          if (!(e instanceof SchemaMismatchError)) throw e;
          // The file's columns changed: infer, then the new version must be compatible.
        }
      }
      const definition = await infer(input, latest?.definition ?? null);
      if (latest && latest.definition !== definition) {
        const mode = (await reg.compatibility(subject)) ?? settings.compatibility;
        const versions: { version: number; definition: string }[] = [];
        if (mode.endsWith('_ALL')) {
          for (let v = 1; v < latest.version; v++) {
            const old = await reg.version(subject, v);
            if (old) versions.push(old);
          }
        }
        versions.push(latest);
        const problem = compatibilityProblem(mode, definition, versions);
        if (problem) {
          throw new SchemaIncompatibleError(
            `the file's schema would break ${subject} in registry ${reg.registryName} (${problem}); nothing was produced`,
          );
        }
      }
      try {
        return fromRegistry('inferred', await reg.register(subject, definition, settings.compatibility));
      } catch (e) {
        if (e instanceof SchemaRegistryError) throw new SchemaIncompatibleError(e.message);
        throw e;
      }
    },
  };
}

/** JobStarted carries the definition up to this size; larger ones are read from the job record. */
export const INLINE_SCHEMA_BYTES = 8 * 1024;

/** The schema as JobStarted carries it: without the definition when large. */
export function schemaForEvent(schema: JobSchema): JobSchema {
  if (schema.definition === undefined || Buffer.byteLength(schema.definition) <= INLINE_SCHEMA_BYTES)
    return schema;
  const { definition: _large, ...ref } = schema;
  return ref;
}
