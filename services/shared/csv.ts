/**
 * The one CSV grammar of rowstream: the planner counts rows and reads the header with it, the producer
 * splits and decodes rows with it, so `totalRows == rowsDelivered + rowsRejected` for every object.
 * It is Python's `csv` module (default dialect, `strict=False`) and csv-parse with
 * `relax_quotes: true, record_delimiter: ['\r\n', '\n', '\r'], skip_empty_lines: true` on every
 * well-formed input, and frames malformed input the way they do (docs/planner.md, "Rows"):
 *
 * - a record ends at `\n`, `\r\n` or a bare `\r` outside a quoted field;
 * - a `"` opens a quoted field only at the start of a field (after a delimiter or a record start);
 *   inside, `""` is a quote and a lone `"` closes the field. A `"` anywhere else (`1,a"b`) is a
 *   literal character of an unquoted field;
 * - an empty record (a terminator right after the previous one, or at the start) is not a row;
 * - a file ending inside a quoted field ends with one unterminated (bad) record.
 *
 * Decoding a record ({@link splitRecord}) is stricter than framing: a closing quote followed by
 * anything but the delimiter or the record end is malformed (Python would glue the text on), so such a
 * record is framed like everywhere else and then rejected as one bad row.
 */

export const LF = 0x0a;
export const CR = 0x0d;
export const QUOTE = 0x22;

/**
 * The supported delimiters: one ASCII byte each, so a byte-level splitter and the SIMD counter can
 * compare single bytes. Anything else is rejected as BAD_OPTIONS (docs/planner.md).
 */
export const SUPPORTED_DELIMITERS = [',', ';', '\t', '|', ':'] as const;
export type Delimiter = (typeof SUPPORTED_DELIMITERS)[number];

export function isSupportedDelimiter(d: string): d is Delimiter {
  return (SUPPORTED_DELIMITERS as readonly string[]).includes(d);
}

/** Human-readable list for messages and docs. */
export const SUPPORTED_DELIMITERS_TEXT = "',' ';' '|' ':' and tab";

/**
 * Called for each record found. `start`/`end` bound its content (without the line ending), `next` is
 * where the next record starts, all absolute byte offsets. Empty records are not reported.
 */
export type RecordSink = (
  start: number,
  end: number,
  next: number,
  hasQuote: boolean,
  unterminated: boolean,
) => void;

/**
 * Incremental record framer: feed byte chunks in order with {@link CsvFramer.push}, then
 * {@link CsvFramer.finish}. Keeps only a few flags between chunks (a record spanning chunks costs
 * nothing extra); positions are absolute, counted from `startOffset`.
 */
export class CsvFramer {
  private pos: number;
  private recStart: number;
  private inQuotes = false;
  private atFieldStart = true;
  private hasQuote = false;
  // A byte whose meaning depends on the next one, seen as the last byte of a chunk.
  private pendingQuote = false; // a `"` inside a quoted field: closing, or the first of `""`?
  private pendingCR = false; // a `\r` outside quotes: `\r\n` or a bare `\r`?
  private readonly delim: number;

  constructor(delimiter: string, startOffset = 0) {
    this.delim = delimiter.charCodeAt(0);
    this.pos = startOffset;
    this.recStart = startOffset;
  }

  /** Absolute offset of the next byte to push. */
  get offset(): number {
    return this.pos;
  }

  /** Absolute offset where the record being read started. */
  get recordStart(): number {
    return this.recStart;
  }

  /** Scans `chunk` (the bytes at {@link offset}); calls `sink` for each record it completes. */
  push(chunk: Uint8Array, sink: RecordSink): void {
    const base = this.pos;
    const n = chunk.length;
    const delim = this.delim;
    let i = 0;
    let inQuotes = this.inQuotes;
    let atFieldStart = this.atFieldStart;
    if (n === 0) return;
    if (this.pendingQuote) {
      this.pendingQuote = false;
      if (chunk[0] === QUOTE)
        i = 1; // `""`: still inside
      else inQuotes = false;
    } else if (this.pendingCR) {
      this.pendingCR = false;
      const crAt = base - 1;
      if (chunk[0] === LF) {
        this.record(crAt, base + 1, sink);
        i = 1;
      } else this.record(crAt, base, sink);
      atFieldStart = true;
    }
    // Only LF, CR and the quote change the state outside quotes, only the quote inside: the bytes
    // between are skipped with Buffer#indexOf (memchr) instead of a JS loop per byte (~3x fewer ns per
    // row on typical lines). The next quote, CR and LF positions are cached until passed (n: none left):
    // each is the first at or after `i` while it is not behind it.
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, n);
    let nextQuote = -1;
    let nextCR = -1;
    let nextLF = -1;
    while (i < n) {
      if (nextQuote < i) {
        nextQuote = buf.indexOf(QUOTE, i);
        if (nextQuote < 0) nextQuote = n;
      }
      if (inQuotes) {
        // Inside a quoted field only a quote matters.
        if (nextQuote >= n) {
          i = n;
          break;
        }
        i = nextQuote;
        if (i + 1 >= n) {
          this.pendingQuote = true;
          i++;
          break;
        }
        if (chunk[i + 1] === QUOTE) {
          i += 2;
          continue;
        }
        inQuotes = false;
        i++;
        continue;
      }
      if (nextCR < i) {
        nextCR = buf.indexOf(CR, i);
        if (nextCR < 0) nextCR = n;
      }
      if (nextLF < i) {
        nextLF = buf.indexOf(LF, i);
        if (nextLF < 0) nextLF = n;
      }
      const stop = Math.min(nextQuote, nextCR, nextLF);
      // Bytes i..stop-1 are ordinary: only the last of them decides whether a field starts at `stop`.
      if (stop > i) atFieldStart = chunk[stop - 1] === delim;
      i = stop;
      if (i >= n) break;
      const b = chunk[i]!;
      if (b === LF) {
        this.record(base + i, base + i + 1, sink);
        atFieldStart = true;
        i++;
        continue;
      }
      if (b === CR) {
        if (i + 1 >= n) {
          this.pendingCR = true;
          i++;
          break;
        }
        if (chunk[i + 1] === LF) {
          this.record(base + i, base + i + 2, sink);
          i += 2;
        } else {
          this.record(base + i, base + i + 1, sink);
          i++;
        }
        atFieldStart = true;
        continue;
      }
      // A quote: opens a quoted field at a field's start, is literal elsewhere.
      this.hasQuote = true;
      if (atFieldStart) inQuotes = true;
      atFieldStart = false;
      i++;
    }
    this.inQuotes = inQuotes;
    this.atFieldStart = atFieldStart;
    this.pos = base + n;
  }

  /** End of data: reports the last record (no line ending, or unterminated quote). */
  finish(sink: RecordSink): void {
    const end = this.pos;
    if (this.pendingCR) {
      this.pendingCR = false;
      this.record(end - 1, end, sink);
      return;
    }
    // A quote as the very last byte closes the field.
    const unterminated = this.inQuotes && !this.pendingQuote;
    this.pendingQuote = false;
    if (end > this.recStart || unterminated) {
      const hasQuote = this.hasQuote;
      this.hasQuote = false;
      this.inQuotes = false;
      sink(this.recStart, end, end, hasQuote, unterminated);
      this.recStart = end;
    }
  }

  /** Record boundaries right now, between chunks: is a record open (bytes since the last end)? */
  get inRecord(): boolean {
    return this.pos > this.recStart || this.pendingCR || this.pendingQuote;
  }

  private record(end: number, next: number, sink: RecordSink): void {
    const start = this.recStart;
    const hasQuote = this.hasQuote;
    this.recStart = next;
    this.hasQuote = false;
    if (end === start) return; // empty line: not a row
    sink(start, end, next, hasQuote, false);
  }
}

/** Counts the records of a whole byte region starting at a record start (the exact, scalar path). */
export function countRecords(
  chunks: Iterable<Uint8Array>,
  delimiter: string,
): { rows: number; unterminated: boolean } {
  const f = new CsvFramer(delimiter);
  let rows = 0;
  let unterminated = false;
  const sink: RecordSink = (_s, _e, _n, _q, u) => {
    rows++;
    if (u) unterminated = true;
  };
  for (const c of chunks) f.push(c, sink);
  f.finish(sink);
  return { rows, unterminated };
}

/**
 * Fields of one record (decoded text, line ending removed), or a string saying why it is malformed.
 * A field starting with a quote runs to the closing quote, `""` inside is a quote; a quote inside an
 * unquoted field is literal. A closing quote followed by anything but the delimiter or the end is
 * malformed. Checked against csv-parse and Python's csv module in the unit tests.
 */
export function splitRecord(text: string, delimiter: string): string[] | string {
  if (!text.includes('"')) return text.split(delimiter);
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
