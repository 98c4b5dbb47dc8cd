import { isUtf8 } from 'node:buffer';

/**
 * The producer's per-row output: the Kafka value of a good row and the rejects file's lines. Framing
 * and decoding live in services/shared/rows.ts (the planner samples rows with them too).
 */

/**
 * The Kafka value of a good row: a JSON object header -> field, in header order, or the raw CSV record
 * text. Written as text, not through a JS object: every column name survives as it is (`__proto__`,
 * `constructor`, `0`, ...), where an object would drop or reorder some.
 */
export function recordValue(
  format: 'json' | 'csv',
  header: readonly string[],
  decoded: { fields: string[]; text: string },
): string {
  return valueEncoder(format, header)(decoded);
}

// Characters JSON.stringify escapes in a string (quote, backslash, C0 controls). Valid UTF-8 never
// decodes to a lone surrogate, the only other case it escapes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching C0 controls is the point here.
const NEEDS_JSON_ESCAPE = /["\\\u0000-\u001f]/;

/**
 * A function that builds the Kafka value of a good row: it concatenates precomputed `{"name":"` /
 * `","name":"` pieces with the fields, escaping only a field that needs it: no object and no
 * JSON.stringify per row (7% of the producer's CPU). Column names are unique (the planner rejects
 * duplicates), so the text is a JSON object with exactly the header's keys, in order.
 */
export function valueEncoder(
  format: 'json' | 'csv',
  header: readonly string[],
): (decoded: { fields: string[]; text: string }) => string {
  if (format === 'csv') return (d) => d.text;
  if (header.length === 0) return () => '{}';
  const pieces = header.map((h, i) => `${i === 0 ? '{' : '",'}${JSON.stringify(h)}:"`);
  const n = header.length;
  return ({ fields }) => {
    let out = '';
    for (let i = 0; i < n; i++) {
      const f = fields[i]!;
      out += pieces[i]! + (NEEDS_JSON_ESCAPE.test(f) ? JSON.stringify(f).slice(1, -1) : f);
    }
    return `${out}"}`;
  };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Copies src[from, to) into dst at pos (a loop: cheaper than Buffer#copy's call for a field's few bytes). */
function put(dst: Buffer, pos: number, src: Uint8Array, from: number, to: number): number {
  for (let k = from; k < to; k++) dst[pos++] = src[k]!;
  return pos;
}

/** A row's value from its bytes; see {@link rowBytesEncoder}. */
export interface RowBytesEncoder {
  (bytes: Buffer): Buffer | null;
  /**
   * Field `index` of the row the last call encoded (it returned a value), as the general path decodes
   * it: the key of a keyed job without decoding the row.
   */
  field(bytes: Buffer, index: number): string;
}

/**
 * The value of a row built straight from its bytes, for the common row, with no string in between:
 * the row is not decoded, split, concatenated, measured and encoded again (that path was ~40% of the
 * producer's CPU per row: the value's UTF-8 length was computed twice over a string of ~13
 * concatenated pieces, then written). `json`: the JSON object; `csv`: the record's own bytes, once
 * its field count and UTF-8 are checked. The output is byte-for-byte what {@link valueEncoder} gives
 * (a property test checks it).
 *
 * Returns null, and the general path decides, for any row that is not plain: a byte JSON escapes
 * (C0 control, backslash, a quote inside an unquoted field or a doubled quote inside a quoted one),
 * text after a closing quote, a field count other than the header's, or invalid UTF-8. null for the
 * whole job when the header is empty.
 */
export function rowBytesEncoder(
  format: 'json' | 'csv',
  header: readonly string[],
  delimiter: string,
): RowBytesEncoder | null {
  const n = header.length;
  if (n === 0 || delimiter.length !== 1 || delimiter.charCodeAt(0) >= 0x80) return null;
  const delim = delimiter.charCodeAt(0);
  const pieces = header.map((h, i) => Buffer.from(`${i === 0 ? '{' : '",'}${JSON.stringify(h)}:"`, 'utf8'));
  const fixedBytes = pieces.reduce((a, p) => a + p.length, 0) + 2;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const encode = (bytes: Buffer): Buffer | null => {
    const len = bytes.length;
    let field = 0;
    let content = 0;
    let high = false;
    let i = 0;
    for (;;) {
      if (field >= n) return null;
      let start = i;
      if (i < len && bytes[i] === QUOTE) {
        start = ++i;
        for (;;) {
          if (i >= len) return null;
          const c = bytes[i]!;
          if (c === QUOTE) break;
          if (c < 0x20 || c === BACKSLASH) return null;
          if (c >= 0x80) high = true;
          i++;
        }
        ends[field] = i;
        i++;
        if (i < len && bytes[i] !== delim) return null;
      } else {
        while (i < len) {
          const c = bytes[i]!;
          if (c === delim) break;
          if (c < 0x20 || c === BACKSLASH || c === QUOTE) return null;
          if (c >= 0x80) high = true;
          i++;
        }
        ends[field] = i;
      }
      starts[field] = start;
      content += ends[field]! - start;
      field++;
      if (i >= len) break;
      i++;
    }
    if (field !== n || (high && !isUtf8(bytes))) return null;
    // The csv format's value is the record's text: its bytes as they are.
    if (format === 'csv') return bytes;
    const out = Buffer.allocUnsafe(fixedBytes + content);
    let pos = 0;
    for (let f = 0; f < n; f++) {
      const p = pieces[f]!;
      pos = put(out, pos, p, 0, p.length);
      pos = put(out, pos, bytes, starts[f]!, ends[f]!);
    }
    out[pos++] = QUOTE;
    out[pos] = 0x7d; // }
    return out;
  };
  return Object.assign(encode, {
    field: (bytes: Buffer, index: number) => bytes.toString('utf8', starts[index], ends[index]),
  });
}

/** One line of the rejects CSV (columns row,byte_offset,reason,raw,detail). */
export function rejectLine(row: number, byte: number, reason: string, raw: Buffer, detail = ''): string {
  // Invalid UTF-8 is kept visible (U+FFFD) rather than dropped: the byte offset points at the original.
  const text = raw.toString('utf8');
  return `${row},${byte},${reason},"${text.replaceAll('"', '""')}","${detail.replaceAll('"', '""')}"\n`;
}

export const REJECTS_HEADER = 'row,byte_offset,reason,raw,detail\n';
