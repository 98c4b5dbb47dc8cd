import {
  type ColumnType,
  decimalShape,
  MAX_DECIMAL_PRECISION,
  parseBoolean,
  parseDate,
  parseDecimal,
  parseDouble,
  parseLong,
  parseTimestamp,
} from './values.ts';

export interface InferredColumn {
  readonly name: string;
  readonly type: ColumnType;
  /** An empty value occurred in the sample: empty becomes null. */
  readonly nullable: boolean;
}

/** What one column's sampled values allow; folded value by value. */
interface Evidence {
  values: number;
  empty: boolean;
  boolean: boolean;
  long: boolean;
  decimal: boolean;
  double: boolean;
  date: boolean;
  timestamp: boolean;
  intDigits: number;
  scale: number;
}

const fresh = (): Evidence => ({
  values: 0,
  empty: false,
  boolean: true,
  long: true,
  decimal: true,
  double: true,
  date: true,
  timestamp: true,
  intDigits: 0,
  scale: 0,
});

const LEADING_ZERO = /^[+-]?0[0-9]/;

function observe(e: Evidence, text: string): void {
  if (text.length === 0) {
    e.empty = true;
    return;
  }
  e.values++;
  // A leading zero marks an identifier (zip code, account number): a number would drop it.
  if (LEADING_ZERO.test(text)) {
    e.long = false;
    e.decimal = false;
    e.double = false;
  }
  if (e.boolean) e.boolean = parseBoolean(text) !== null;
  if (e.long) e.long = parseLong(text) !== null;
  if (e.decimal) {
    const d = parseDecimal(text);
    if (d === null) e.decimal = false;
    else {
      const s = decimalShape(d);
      e.intDigits = Math.max(e.intDigits, s.intDigits);
      e.scale = Math.max(e.scale, s.scale);
    }
  }
  if (e.double) e.double = parseDouble(text) !== null;
  if (e.date) e.date = parseDate(text) !== null;
  if (e.timestamp) e.timestamp = parseTimestamp(text) !== null;
}

function decide(e: Evidence): ColumnType {
  if (e.values === 0) return { kind: 'string' };
  if (e.boolean) return { kind: 'boolean' };
  if (e.long) return { kind: 'long' };
  if (e.decimal) {
    const precision = Math.max(1, e.intDigits + e.scale);
    if (precision <= MAX_DECIMAL_PRECISION) return { kind: 'decimal', precision, scale: e.scale };
  }
  if (e.double) return { kind: 'double' };
  if (e.date) return { kind: 'date' };
  if (e.timestamp) return { kind: 'timestamp' };
  return { kind: 'string' };
}

/**
 * The narrowest type per column that accepts every sampled value: boolean, long (exact in a JS
 * number), decimal(p,s) (no exponent, p <= 38), double, date, timestamp, else string. A column with
 * an empty value is nullable; a column with only empty values is a nullable string. Pure.
 *
 * @example inferColumns(['id','amount'], [['1','0.01'],['2','']])
 *   // [{name:'id', type:{kind:'long'}, nullable:false},
 *   //  {name:'amount', type:{kind:'decimal',precision:2,scale:2}, nullable:true}]
 */
export function inferColumns(header: readonly string[], rows: Iterable<readonly string[]>): InferredColumn[] {
  const ev = header.map(fresh);
  for (const row of rows) {
    for (let i = 0; i < ev.length; i++) observe(ev[i]!, row[i] ?? '');
  }
  return header.map((name, i) => {
    const e = ev[i]!;
    return { name, type: decide(e), nullable: e.empty || e.values === 0 };
  });
}
