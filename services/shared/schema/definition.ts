import type { InferredColumn } from './infer.ts';
import type { ColumnType } from './values.ts';

/**
 * A job's schema is an Avro record schema (the registry's language): a flat record, one field per CSV
 * column. This module builds one from inferred columns, and reads one (from the registry or the
 * uploader) into the per-field plan the producer follows.
 */

/** Property on a field naming its CSV column when the column name is not a legal Avro name. */
export const COLUMN_PROPERTY = 'rowstream.column';

export const DEFAULT_RECORD = { name: 'Row', namespace: 'rowstream' } as const;

/** One field of the record as the producer fills it. */
export interface RowField {
  /** Avro field name. */
  readonly name: string;
  /** Index of its CSV column; -1: not in the file, always null. */
  readonly column: number;
  readonly type: ColumnType;
  readonly nullable: boolean;
  /** Avro int (32 bits) rather than long. */
  readonly int32: boolean;
  /** float rather than double. */
  readonly float32: boolean;
  /** timestamp-millis rather than timestamp-micros. */
  readonly millis: boolean;
}

export interface RowSchema {
  /** The Avro schema, as JSON text. */
  readonly definition: string;
  readonly fields: readonly RowField[];
}

/** A schema rowstream cannot follow for this file: the reason a person should read. */
export class SchemaMismatchError extends Error {
  override readonly name = 'SchemaMismatchError';
}

const AVRO_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** An Avro field name for a CSV column: illegal characters become `_`, a leading digit gets `_`. */
export function avroName(column: string): string {
  let n = column.replace(/[^A-Za-z0-9_]/g, '_');
  if (!/^[A-Za-z_]/.test(n)) n = `_${n}`;
  return n;
}

function avroTypeOf(t: ColumnType): unknown {
  switch (t.kind) {
    case 'decimal':
      return { type: 'bytes', logicalType: 'decimal', precision: t.precision, scale: t.scale };
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-micros' };
    default:
      return t.kind;
  }
}

/**
 * The Avro record schema (JSON text, stable key order so the same columns always give the same text)
 * for inferred columns. Nullable columns are `["null", T]` with default null, which is what lets a
 * later version add a column without breaking BACKWARD compatibility.
 */
export function avroDefinition(
  columns: readonly InferredColumn[],
  record: { readonly name: string; readonly namespace?: string | undefined } = DEFAULT_RECORD,
): string {
  const used = new Set<string>();
  const fields = columns.map((c) => {
    const base = avroName(c.name);
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
    used.add(name);
    const type = avroTypeOf(c.type);
    return {
      name,
      type: c.nullable ? ['null', type] : type,
      ...(c.nullable ? { default: null } : {}),
      ...(name !== c.name ? { [COLUMN_PROPERTY]: c.name } : {}),
    };
  });
  return JSON.stringify({
    type: 'record',
    name: record.name,
    ...(record.namespace ? { namespace: record.namespace } : {}),
    fields,
  });
}

/** The record's name and namespace, to keep them when a new version is inferred. */
export function recordName(definition: string): { name: string; namespace?: string } {
  const s = JSON.parse(definition) as { name?: string; namespace?: string };
  const full = s.name ?? DEFAULT_RECORD.name;
  const dot = full.lastIndexOf('.');
  if (dot >= 0) return { name: full.slice(dot + 1), namespace: full.slice(0, dot) };
  return s.namespace ? { name: full, namespace: s.namespace } : { name: full };
}

interface FieldJson {
  name?: unknown;
  type?: unknown;
  default?: unknown;
  [COLUMN_PROPERTY]?: unknown;
}

function plainType(
  t: unknown,
  field: string,
): { type: ColumnType; int32: boolean; float32: boolean; millis: boolean } {
  const base = { int32: false, float32: false, millis: false };
  const name = typeof t === 'string' ? t : (t as { type?: unknown } | null)?.type;
  const logical =
    typeof t === 'object' && t !== null ? (t as { logicalType?: unknown }).logicalType : undefined;
  if (logical === 'decimal' && name === 'bytes') {
    const { precision, scale = 0 } = t as { precision?: unknown; scale?: unknown };
    if (
      typeof precision !== 'number' ||
      typeof scale !== 'number' ||
      !Number.isInteger(precision) ||
      !Number.isInteger(scale) ||
      precision < 1 ||
      scale < 0 ||
      scale > precision
    ) {
      throw new SchemaMismatchError(
        `field "${field}": decimal needs an integer precision >= 1 and 0 <= scale <= precision`,
      );
    }
    return { ...base, type: { kind: 'decimal', precision, scale } };
  }
  if (logical === 'date' && name === 'int') return { ...base, type: { kind: 'date' } };
  if ((logical === 'timestamp-micros' || logical === 'timestamp-millis') && name === 'long') {
    return { ...base, type: { kind: 'timestamp' }, millis: logical === 'timestamp-millis' };
  }
  switch (name) {
    case 'boolean':
    case 'string':
    case 'long':
    case 'double':
      return { ...base, type: { kind: name } };
    case 'int':
      return { ...base, type: { kind: 'long' }, int32: true };
    case 'float':
      return { ...base, type: { kind: 'double' }, float32: true };
    default:
      throw new SchemaMismatchError(
        `field "${field}" has type ${JSON.stringify(t)}: rowstream writes flat records of boolean, int, long, float, double, string, decimal (bytes), date, timestamp-millis/micros, each optionally nullable`,
      );
  }
}

/**
 * Reads an Avro record schema into the producer's per-field plan for a file with `header`. Columns
 * match fields by the field's `rowstream.column` property, else by name, else by {@link avroName}.
 * Throws {@link SchemaMismatchError} when a column has no field, a field is missing from the file
 * without being nullable, or a type is not one rowstream writes.
 */
export function rowSchema(definition: string, header: readonly string[]): RowSchema {
  let s: { type?: unknown; fields?: unknown };
  try {
    s = JSON.parse(definition) as typeof s;
  } catch (e) {
    throw new SchemaMismatchError(`the schema is not JSON: ${(e as Error).message}`);
  }
  if (s.type !== 'record' || !Array.isArray(s.fields)) {
    throw new SchemaMismatchError('the schema is not an Avro record');
  }
  const columnOf = new Map<string, number>();
  header.forEach((h, i) => {
    if (!columnOf.has(h)) columnOf.set(h, i);
  });
  const sanitized = new Map<string, number>();
  header.forEach((h, i) => {
    const n = avroName(h);
    if (!sanitized.has(n)) sanitized.set(n, i);
  });
  const taken = new Set<number>();
  const fields: RowField[] = (s.fields as FieldJson[]).map((f) => {
    if (typeof f.name !== 'string' || !AVRO_NAME.test(f.name)) {
      throw new SchemaMismatchError(`field name ${JSON.stringify(f.name)} is not a legal Avro name`);
    }
    const name = f.name;
    let t = f.type;
    let nullable = false;
    if (Array.isArray(t)) {
      const others = t.filter((b) => b !== 'null');
      if (others.length !== 1 || t.length > 2) {
        throw new SchemaMismatchError(`field "${name}": only unions of null and one type are supported`);
      }
      nullable = t.length === 2;
      t = others[0];
    }
    const plain = plainType(t, name);
    const declared = typeof f[COLUMN_PROPERTY] === 'string' ? (f[COLUMN_PROPERTY] as string) : null;
    let column =
      (declared !== null ? columnOf.get(declared) : undefined) ??
      columnOf.get(name) ??
      sanitized.get(name) ??
      -1;
    if (column >= 0 && taken.has(column)) column = -1;
    if (column >= 0) taken.add(column);
    if (column < 0 && !nullable) {
      throw new SchemaMismatchError(`field "${name}" is not a column of the file and is not nullable`);
    }
    return { name, column, nullable, ...plain };
  });
  const missing = header.filter((_, i) => !taken.has(i));
  if (missing.length > 0) {
    throw new SchemaMismatchError(
      `column${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} not in the schema`,
    );
  }
  return { definition, fields };
}

/** Column types of a schema, by CSV column (for people: `topic read`, docs, messages). */
export function describeSchema(schema: RowSchema): string {
  return schema.fields
    .map(
      (f) =>
        `${f.name}: ${f.type.kind === 'decimal' ? `decimal(${f.type.precision},${f.type.scale})` : f.type.kind}${f.nullable ? '?' : ''}`,
    )
    .join(', ');
}
