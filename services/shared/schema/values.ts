/**
 * How a CSV field's text is read as a typed value. Inference ({@link ./infer.ts}) and conversion
 * ({@link ./typed.ts}) use these same functions, so whatever inference accepted for a column the
 * producer accepts too.
 */

/** Column types rowstream writes: the Avro types of a flat record (logical types for the last three). */
export const COLUMN_TYPES = ['boolean', 'long', 'double', 'decimal', 'date', 'timestamp', 'string'] as const;
export type ColumnKind = (typeof COLUMN_TYPES)[number];

export type ColumnType =
  | { readonly kind: 'boolean' | 'long' | 'double' | 'date' | 'timestamp' | 'string' }
  | { readonly kind: 'decimal'; readonly precision: number; readonly scale: number };

/** Avro decimals are at most 38 digits in every registry-backed ecosystem (Java BigDecimal, Spark, Glue). */
export const MAX_DECIMAL_PRECISION = 38;

const INTEGER = /^[+-]?[0-9]+$/;
const DECIMAL = /^([+-]?)([0-9]*)\.?([0-9]*)$/;
const DOUBLE = /^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$/;
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const TIMESTAMP =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$/;

export function parseBoolean(text: string): boolean | null {
  if (text.length !== 4 && text.length !== 5) return null;
  const t = text.toLowerCase();
  return t === 'true' ? true : t === 'false' ? false : null;
}

/**
 * An integer that a JS number holds exactly (|n| <= 2^53-1): rowstream hands longs to the Avro
 * encoder and JSON as numbers, and a larger value would change silently. Larger integers are
 * inferred as decimal(p, 0).
 */
export function parseLong(text: string): number | null {
  if (!INTEGER.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : null;
}

export function parseDouble(text: string): number | null {
  if (!DOUBLE.test(text)) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : null;
}

export interface DecimalValue {
  readonly negative: boolean;
  /** Integer digits without leading zeros ('' for 0). */
  readonly int: string;
  /** Fraction digits as written (trailing zeros kept). */
  readonly frac: string;
}

/** A plain decimal number (no exponent): `-12.50`, `.5`, `7`. */
export function parseDecimal(text: string): DecimalValue | null {
  const m = DECIMAL.exec(text);
  if (!m) return null;
  const int = m[2]!.replace(/^0+/, '');
  const frac = m[3]!;
  if (m[2]!.length === 0 && frac.length === 0) return null;
  return { negative: m[1] === '-', int, frac };
}

/** Precision and scale a decimal needs to hold the value exactly. */
export function decimalShape(d: DecimalValue): { intDigits: number; scale: number } {
  return { intDigits: d.int.length, scale: d.frac.length };
}

export function fitsDecimal(d: DecimalValue, precision: number, scale: number): boolean {
  const frac = d.frac.replace(/0+$/, '');
  return frac.length <= scale && d.int.length <= precision - scale;
}

/** The unscaled integer of `d` at `scale` (caller checked {@link fitsDecimal}). */
export function unscaled(d: DecimalValue, scale: number): bigint {
  const frac = d.frac.slice(0, scale).padEnd(scale, '0');
  const digits = `${d.int}${frac}`.replace(/^0+/, '') || '0';
  const v = BigInt(digits);
  return d.negative ? -v : v;
}

/** Avro's decimal bytes: the unscaled value in two's complement, big-endian, fewest bytes. */
export function decimalBytes(v: bigint): Buffer {
  let n = 1;
  while (v < -(1n << BigInt(8 * n - 1)) || v >= 1n << BigInt(8 * n - 1)) n++;
  const out = Buffer.alloc(n);
  let x = v < 0n ? (1n << BigInt(8 * n)) + v : v;
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** The inverse of {@link decimalBytes}, as decimal text with `scale` fraction digits. */
export function decimalText(bytes: Uint8Array, scale: number): string {
  if (bytes.length === 0) return '0';
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  if ((bytes[0]! & 0x80) !== 0) v -= 1n << BigInt(8 * bytes.length);
  const neg = v < 0n;
  const digits = (neg ? -v : v).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale);
  return `${neg ? '-' : ''}${int}${scale > 0 ? `.${frac}` : ''}`;
}

const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of a valid calendar date `YYYY-MM-DD`. */
export function parseDate(text: string): number | null {
  const m = DATE.exec(text);
  if (!m) return null;
  const ms = calendarMs(Number(m[1]), Number(m[2]), Number(m[3]));
  return ms === null ? null : ms / DAY_MS;
}

function calendarMs(y: number, mo: number, d: number): number | null {
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return null;
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  // Date.UTC maps years 0-99 to 1900-1999; reject those rather than shift them.
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return null;
  return ms;
}

/**
 * Microseconds since the epoch of an ISO 8601 timestamp: `YYYY-MM-DD[(T| )hh:mm[:ss[.ffffff]]][Z|±hh:mm]`.
 * Without an offset the time is taken as UTC (documented in docs/producer.md). A date alone is
 * midnight UTC, so a column mixing dates and timestamps is a timestamp column.
 */
export function parseTimestamp(text: string): number | null {
  const m = TIMESTAMP.exec(text);
  if (!m) return null;
  const day = calendarMs(Number(m[1]), Number(m[2]), Number(m[3]));
  if (day === null) return null;
  const h = m[4] === undefined ? 0 : Number(m[4]);
  const mi = m[5] === undefined ? 0 : Number(m[5]);
  const s = m[6] === undefined ? 0 : Number(m[6]);
  if (h > 23 || mi > 59 || s > 59) return null;
  const micros = m[7] === undefined ? 0 : Number(m[7].padEnd(6, '0'));
  let offsetMin = 0;
  const z = m[8];
  if (z !== undefined && z !== 'Z') {
    const digits = z.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2));
    if (oh > 23 || om > 59) return null;
    offsetMin = (z[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const ms = day + ((h * 60 + mi - offsetMin) * 60 + s) * 1000;
  const us = ms * 1000 + micros;
  return Number.isSafeInteger(us) ? us : null;
}

/** ISO 8601 UTC text of a timestamp in microseconds, with the microseconds when there are any. */
export function timestampText(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const rest = micros - ms * 1000;
  const iso = new Date(ms).toISOString();
  return rest === 0 ? iso : `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

export function dateText(days: number): string {
  return new Date(days * DAY_MS).toISOString().slice(0, 10);
}

/** Short description of a column type, e.g. `decimal(10,2)`, for messages and `topic read`. */
export function typeLabel(t: ColumnType): string {
  return t.kind === 'decimal' ? `decimal(${t.precision},${t.scale})` : t.kind;
}
