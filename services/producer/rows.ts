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

/** One line of the rejects CSV (columns row,byte_offset,reason,raw,detail). */
export function rejectLine(row: number, byte: number, reason: string, raw: Buffer, detail = ''): string {
  // Invalid UTF-8 is kept visible (U+FFFD) rather than dropped: the byte offset points at the original.
  const text = raw.toString('utf8');
  return `${row},${byte},${reason},"${text.replaceAll('"', '""')}","${detail.replaceAll('"', '""')}"\n`;
}

export const REJECTS_HEADER = 'row,byte_offset,reason,raw,detail\n';
