import { isUtf8 } from 'node:buffer';

/**
 * Row framing and decoding for the producer.
 *
 * Why a byte-level splitter instead of csv-parse's stream: resume needs, for every row, the exact byte
 * offset where the next row starts, and bad rows (invalid UTF-8, unterminated quotes) must not stop the
 * stream. csv-parse's stream API aborts the whole stream at an unterminated quote at EOF (dropping
 * records already parsed in the same chunk) and decodes before we can check UTF-8 per row. So this
 * splitter finds record boundaries (RFC 4180 quote-aware, LF and CRLF, empty lines skipped as with
 * csv-parse `skip_empty_lines`) and keeps absolute byte offsets; quote-free records are split on the
 * delimiter, records with quotes by {@link splitQuoted}, which the unit tests hold to csv-parse's
 * results (and to Python's csv module) on thousands of random records.
 */

export interface RawRow {
  /** 1-based data row number. */
  readonly row: number;
  /** Byte offset of the row's first byte in the object. */
  readonly offset: number;
  /** Byte offset where the next row starts (after the line ending). */
  readonly nextOffset: number;
  /** The record's bytes without its line ending (truncated when `oversized`). */
  readonly bytes: Buffer;
  readonly hasQuote: boolean;
  /** The record ran to EOF inside a quoted field. */
  readonly unterminated: boolean;
  /** The record was larger than the splitter's limit; `bytes` holds only its beginning. */
  readonly oversized: boolean;
}

const LF = 0x0a;
const CR = 0x0d;
const QUOTE = 0x22;

export interface SplitterOptions {
  /** Row number of the first row this splitter will see minus one (resume: the last done row). */
  readonly rowsBefore: number;
  /** Absolute byte offset of the first byte fed in. */
  readonly startOffset: number;
  readonly delimiter: string;
  /** A record longer than this is not buffered: it becomes an `oversized` bad row (bounded memory). */
  readonly maxRecordBytes: number;
}

/** Splits a byte stream into CSV records with absolute byte offsets. Feed chunks, then `end()`. */
export class RowSplitter {
  private carry: Buffer = Buffer.alloc(0);
  /** Absolute offset of carry[0]. */
  private carryOffset: number;
  private row: number;
  // Scan state for the record being assembled, so a chunk boundary never restarts the scan.
  private scanPos = 0;
  private inQuotes = false;
  private atFieldStart = true;
  private hasQuote = false;
  // Oversized record being skipped: how many bytes were dropped, and its first bytes.
  private skipping: { offset: number; head: Buffer } | null = null;
  private readonly delim: number;

  constructor(private readonly options: SplitterOptions) {
    this.carryOffset = options.startOffset;
    this.row = options.rowsBefore;
    this.delim = options.delimiter.charCodeAt(0);
  }

  /** Rows completed by this chunk. */
  push(chunk: Buffer): RawRow[] {
    const out: RawRow[] = [];
    const buf = this.carry.length === 0 ? chunk : Buffer.concat([this.carry, chunk]);
    let recStart = 0;
    let i = this.scanPos;
    const n = buf.length;
    const delim = this.delim;
    while (i < n) {
      const b = buf[i]!;
      if (this.inQuotes) {
        if (b === QUOTE) {
          // "" inside quotes is an escaped quote; a lone quote closes the field.
          if (i + 1 >= n) break; // need the next byte to decide
          if (buf[i + 1] === QUOTE) {
            i += 2;
            continue;
          }
          this.inQuotes = false;
        }
        i++;
        continue;
      }
      if (b === LF) {
        this.emit(out, buf, recStart, i, i + 1);
        recStart = i + 1;
        this.atFieldStart = true;
        i++;
        continue;
      }
      if (b === QUOTE) {
        this.hasQuote = true;
        if (this.atFieldStart) this.inQuotes = true;
        this.atFieldStart = false;
      } else {
        this.atFieldStart = b === delim;
      }
      i++;
    }
    // Keep the unfinished record; if it grew beyond the limit, stop buffering it.
    this.carryOffset += recStart;
    let rest = buf.subarray(recStart);
    let scanPos = i - recStart;
    if (rest.length > this.options.maxRecordBytes) {
      if (!this.skipping) {
        this.skipping = { offset: this.carryOffset, head: Buffer.from(rest.subarray(0, 1024)) };
      }
      // Drop what was scanned already; keep only an unscanned tail (at most one byte, a pending quote).
      this.carryOffset += scanPos;
      rest = rest.subarray(scanPos);
      scanPos = 0;
    }
    this.carry = rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest);
    this.scanPos = scanPos;
    return out;
  }

  /** Rows left at EOF: a last row without line ending, or an unterminated quoted record. */
  end(): RawRow[] {
    const out: RawRow[] = [];
    const buf = this.carry;
    if (buf.length > 0 || this.skipping) {
      // A quote as the very last byte was left undecided by push(): at EOF it closes the field.
      const pendingClose = this.inQuotes && this.scanPos === buf.length - 1 && buf[this.scanPos] === QUOTE;
      const unterminated = this.inQuotes && !pendingClose;
      this.emit(out, buf, 0, buf.length, buf.length, unterminated);
    }
    this.carry = Buffer.alloc(0);
    return out;
  }

  private emit(out: RawRow[], buf: Buffer, start: number, lf: number, next: number, unterminated = false) {
    let end = lf;
    if (end > start && buf[end - 1] === CR && lf < buf.length && buf[lf] === LF) end--;
    const skipping = this.skipping;
    this.skipping = null;
    const hasQuote = this.hasQuote;
    this.hasQuote = false;
    this.inQuotes = false;
    if (skipping) {
      this.row++;
      out.push({
        row: this.row,
        offset: skipping.offset,
        nextOffset: this.carryOffset + next,
        bytes: skipping.head,
        hasQuote,
        unterminated,
        oversized: true,
      });
      return;
    }
    if (end === start && !unterminated) return; // empty line: not a row
    this.row++;
    out.push({
      row: this.row,
      offset: this.carryOffset + start,
      nextOffset: this.carryOffset + next,
      bytes: buf.subarray(start, end),
      hasQuote,
      unterminated,
      oversized: false,
    });
  }
}

/**
 * Fields of one record that contains quotes, by RFC 4180 (as csv-parse with relax_quotes does it for
 * well-formed input): a field starting with a quote runs to the closing quote, `""` inside is a quote;
 * a quote inside an unquoted field is literal. A closing quote followed by anything but the delimiter
 * or the end is malformed. Hand-written because calling csv-parse once per record cost ~3/4 of the
 * producer's CPU in the benchmark; it is checked against Python's csv module in the unit tests.
 */
export function splitQuoted(text: string, delimiter: string): string[] | string {
  const fields: string[] = [];
  const n = text.length;
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = text.indexOf('"', j);
        if (q < 0) return `quoted field at character ${i} not closed`;
        value += text.slice(j, q);
        if (text[q + 1] === '"') {
          value += '"';
          j = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      fields.push(value);
      if (i >= n) return fields;
      if (text[i] !== delimiter) return `unexpected character after closing quote at ${i}`;
      i++;
      if (i === n) {
        fields.push('');
        return fields;
      }
    } else {
      const d = text.indexOf(delimiter, i);
      if (d < 0) {
        fields.push(text.slice(i));
        return fields;
      }
      fields.push(text.slice(i, d));
      i = d + 1;
      if (i === n) {
        fields.push('');
        return fields;
      }
    }
  }
}

export const BAD_ROW_REASONS = {
  wrongFieldCount: 'WRONG_FIELD_COUNT',
  unterminatedQuote: 'UNTERMINATED_QUOTE',
  malformedQuotes: 'MALFORMED_QUOTES',
  invalidUtf8: 'INVALID_UTF8',
  tooLarge: 'TOO_LARGE',
} as const;
export type BadRowReason = (typeof BAD_ROW_REASONS)[keyof typeof BAD_ROW_REASONS];

export type DecodedRow =
  | { readonly ok: true; readonly fields: string[]; readonly text: string }
  | { readonly ok: false; readonly reason: BadRowReason; readonly detail: string };

/** Decodes one record into fields, or says why it is a bad row. */
export function decodeRow(raw: RawRow, header: readonly string[], delimiter: string): DecodedRow {
  if (raw.oversized) return { ok: false, reason: 'TOO_LARGE', detail: 'record larger than the limit' };
  if (raw.unterminated)
    return { ok: false, reason: 'UNTERMINATED_QUOTE', detail: 'quoted field not closed at end of file' };
  if (!isUtf8(raw.bytes)) return { ok: false, reason: 'INVALID_UTF8', detail: 'bytes are not valid UTF-8' };
  const text = raw.bytes.toString('utf8');
  let fields: string[];
  if (!raw.hasQuote) {
    fields = text.split(delimiter);
  } else {
    const parsed = splitQuoted(text, delimiter);
    if (typeof parsed === 'string') return { ok: false, reason: 'MALFORMED_QUOTES', detail: parsed };
    fields = parsed;
  }
  if (fields.length !== header.length) {
    return {
      ok: false,
      reason: 'WRONG_FIELD_COUNT',
      detail: `${fields.length} fields, header has ${header.length}`,
    };
  }
  return { ok: true, fields, text };
}

/** The Kafka value of a good row: JSON object header -> field, or the raw CSV record text. */
export function recordValue(
  format: 'json' | 'csv',
  header: readonly string[],
  decoded: { fields: string[]; text: string },
) {
  if (format === 'csv') return decoded.text;
  const obj: Record<string, string> = {};
  for (let i = 0; i < header.length; i++) obj[header[i]!] = decoded.fields[i]!;
  return JSON.stringify(obj);
}

// Characters JSON.stringify escapes in a string (quote, backslash, C0 controls). Valid UTF-8 never
// decodes to a lone surrogate, the only other case it escapes.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching C0 controls is the point here.
const NEEDS_JSON_ESCAPE = /["\\\u0000-\u001f]/;

/**
 * A function that builds the Kafka value of a good row, equal to {@link recordValue} byte for byte.
 * For JSON it concatenates precomputed `{"name":"` / `","name":"` pieces with the fields, escaping
 * only a field that needs it: no object and no JSON.stringify per row (7% of the producer's CPU).
 * Header names that a JS object would reorder or merge (array indexes, duplicates, `__proto__`)
 * keep the object + JSON.stringify path, so the output never differs.
 */
export function valueEncoder(
  format: 'json' | 'csv',
  header: readonly string[],
): (decoded: { fields: string[]; text: string }) => string {
  if (format === 'csv') return (d) => d.text;
  const plain =
    header.length > 0 &&
    new Set(header).size === header.length &&
    header.every((h) => h !== '__proto__' && !/^(0|[1-9][0-9]*)$/.test(h));
  if (!plain) return (d) => recordValue(format, header, d);
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

/** One line of the rejects CSV (columns row,byte_offset,reason,raw). */
export function rejectLine(row: number, byte: number, reason: string, raw: Buffer): string {
  // Invalid UTF-8 is kept visible (U+FFFD) rather than dropped: the byte offset points at the original.
  const text = raw.toString('utf8');
  return `${row},${byte},${reason},"${text.replaceAll('"', '""')}"\n`;
}

export const REJECTS_HEADER = 'row,byte_offset,reason,raw\n';
