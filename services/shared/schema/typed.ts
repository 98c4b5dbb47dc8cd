import type { RowField, RowSchema } from './definition.ts';
import {
  dateText,
  decimalBytes,
  fitsDecimal,
  parseBoolean,
  parseDate,
  parseDecimal,
  parseDouble,
  parseLong,
  parseTimestamp,
  timestampText,
  typeLabel,
  unscaled,
} from './values.ts';

/** One field's value: the Avro value (for avsc) and its JSON text, or what was expected. */
export type FieldValue =
  | { readonly ok: true; readonly avro: unknown; readonly json: string }
  | { readonly ok: false; readonly expected: string };

const NULL: FieldValue = { ok: true, avro: null, json: 'null' };
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** A converter from a field's CSV text to its typed value, built once per field. */
export function fieldConverter(f: RowField): (text: string) => FieldValue {
  const t = f.type;
  const expected = `${typeLabel(t)}${f.nullable ? ' or empty' : ''}`;
  const miss: FieldValue = { ok: false, expected };
  let conv: (text: string) => FieldValue;
  switch (t.kind) {
    case 'boolean':
      conv = (s) => {
        const b = parseBoolean(s);
        return b === null ? miss : { ok: true, avro: b, json: b ? 'true' : 'false' };
      };
      break;
    case 'long':
      conv = (s) => {
        const n = parseLong(s);
        if (n === null || (f.int32 && (n < INT32_MIN || n > INT32_MAX))) return miss;
        return { ok: true, avro: n, json: String(n) };
      };
      break;
    case 'double':
      conv = (s) => {
        const n = parseDouble(s);
        return n === null ? miss : { ok: true, avro: n, json: String(n) };
      };
      break;
    case 'decimal':
      conv = (s) => {
        const d = parseDecimal(s);
        if (d === null || !fitsDecimal(d, t.precision, t.scale)) return miss;
        const v = unscaled(d, t.scale);
        return { ok: true, avro: decimalBytes(v), json: decimalJson(v, t.scale) };
      };
      break;
    case 'date':
      conv = (s) => {
        const days = parseDate(s);
        return days === null ? miss : { ok: true, avro: days, json: `"${dateText(days)}"` };
      };
      break;
    case 'timestamp':
      conv = (s) => {
        const us = parseTimestamp(s);
        if (us === null) return miss;
        if (f.millis && us % 1000 !== 0) return miss;
        return { ok: true, avro: f.millis ? us / 1000 : us, json: `"${timestampText(us)}"` };
      };
      break;
    case 'string':
      conv = (s) => ({ ok: true, avro: s, json: JSON.stringify(s) });
      break;
  }
  if (f.nullable) return (s) => (s.length === 0 ? NULL : conv(s));
  return conv;
}

/** A decimal as a JSON number with exactly `scale` fraction digits (`0.10`, `-3.00`, `12`). */
function decimalJson(v: bigint, scale: number): string {
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  return `${neg ? '-' : ''}${int}${scale > 0 ? `.${digits.slice(digits.length - scale)}` : ''}`;
}

/** Why a row does not fit its schema: the first column whose value does not convert. */
export interface TypeMismatch {
  readonly ok: false;
  /** Index of the CSV column. */
  readonly column: number;
  readonly columnName: string;
  readonly expected: string;
  readonly text: string;
}

export type Encoded<V> = { readonly ok: true; readonly value: V } | TypeMismatch;

/** Builds a record value (JSON text, Avro bytes…) from a row's fields, or says which value does not fit. */
export type RowEncoder<V> = (fields: readonly string[]) => Encoded<V>;

/**
 * Typed JSON: the object header -> value with numbers as numbers, booleans as booleans, empty
 * nullable values as null, dates and timestamps as ISO 8601 strings, decimals as JSON numbers with
 * their scale's digits. Keys are the CSV's column names, in the file's order (as untyped JSON).
 */
export function typedJsonEncoder(schema: RowSchema, header: readonly string[]): RowEncoder<string> {
  const byColumn = header.map((h, i) => {
    const f = schema.fields.find((x) => x.column === i);
    if (!f) throw new Error(`column "${h}" has no field`);
    return { conv: fieldConverter(f), prefix: `${i === 0 ? '{' : ','}${JSON.stringify(h)}:` };
  });
  const n = byColumn.length;
  return (fields) => {
    let out = '';
    for (let i = 0; i < n; i++) {
      const c = byColumn[i]!;
      const text = fields[i]!;
      const v = c.conv(text);
      if (!v.ok) return { ok: false, column: i, columnName: header[i]!, expected: v.expected, text };
      out += c.prefix + v.json;
    }
    return { ok: true, value: n === 0 ? '{}' : `${out}}` };
  };
}

/** The Avro record object (field name -> avsc value) of a row; missing columns are null. */
export function avroRecordBuilder(
  schema: RowSchema,
  header: readonly string[],
): RowEncoder<Record<string, unknown>> {
  const plan = schema.fields.map((f) => ({ name: f.name, column: f.column, conv: fieldConverter(f) }));
  return (fields) => {
    const rec: Record<string, unknown> = {};
    for (const p of plan) {
      if (p.column < 0) {
        rec[p.name] = null;
        continue;
      }
      const text = fields[p.column]!;
      const v = p.conv(text);
      if (!v.ok) {
        return { ok: false, column: p.column, columnName: header[p.column]!, expected: v.expected, text };
      }
      rec[p.name] = v.avro;
    }
    return { ok: true, value: rec };
  };
}
