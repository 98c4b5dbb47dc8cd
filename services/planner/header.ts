import { CsvFramer, type RecordSink, splitRecord } from '../shared/csv.ts';
import { BadHeaderError, EmptyObjectError, NoHeaderError, NotTextError } from './errors.ts';

/** What the planner reads before counting: the header and where the data rows start. */
export interface HeaderInfo {
  readonly header: string[];
  /** Byte offset of the first data row: after BOM, leading blank lines, the header record and its line end. */
  readonly dataOffset: number;
  /** Byte offset where the header record starts (after BOM and blank lines). */
  readonly headerStart: number;
  readonly bom: boolean;
}

/** How much of the object the header may span; also how much is read before counting starts. */
export const MAX_HEADER_BYTES = 1024 * 1024;
/** Binary detection looks for NUL bytes here (text formats never contain NUL). */
export const BINARY_SNIFF_BYTES = 8 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the header from the first bytes of an object (`prefix`: its first min(size, MAX_HEADER_BYTES)
 * bytes). The header is the first non-empty record, as csv-parse with `skip_empty_lines` sees it.
 * Throws a {@link RejectedObjectError} subclass with the position when the object cannot be a job.
 */
export function readHeader(
  prefix: Uint8Array,
  size: number,
  delimiter = ',',
  options: { readonly checkNames?: boolean } = {},
): HeaderInfo {
  if (size === 0) throw new EmptyObjectError();
  const sniff = prefix.subarray(0, BINARY_SNIFF_BYTES);
  const nul = sniff.indexOf(0);
  if (nul !== -1) {
    throw new NotTextError(`not a text file: NUL byte at byte ${nul} (binary data? upload plain CSV)`, nul);
  }
  if (prefix[0] === 0x1f && prefix[1] === 0x8b) {
    throw new NotTextError('gzip data: upload plain CSV (compressed files are not supported)', 0);
  }
  const bom = prefix[0] === 0xef && prefix[1] === 0xbb && prefix[2] === 0xbf;
  const from = bom ? 3 : 0;
  // The header is the first record of the one grammar (services/shared/csv.ts): blank lines (LF,
  // CRLF or CR) before it are skipped exactly like empty lines between rows.
  const whole = prefix.length >= size;
  type Rec = { start: number; end: number; next: number; hasQuote: boolean; unterminated: boolean };
  const found: Rec[] = [];
  const framer = new CsvFramer(delimiter, from);
  const sink: RecordSink = (start, end, next, hasQuote, unterminated) => {
    if (found.length === 0) found.push({ start, end, next, hasQuote, unterminated });
  };
  // One record is enough: feed in slices so a 1 MiB prefix is not scanned past the header.
  for (let at = from; at < prefix.length && found.length === 0; at += 64 * 1024) {
    framer.push(prefix.subarray(at, Math.min(prefix.length, at + 64 * 1024)), sink);
  }
  if (found.length === 0 && whole) framer.finish(sink);
  const rec = found[0];
  if (!rec) {
    if (!framer.inRecord || framer.recordStart >= prefix.length) {
      if (whole) throw new NoHeaderError(size);
      throw new BadHeaderError(`no header in the first ${prefix.length} bytes (only blank lines)`, from);
    }
    throw new BadHeaderError(
      `the header row does not end within ${prefix.length} bytes (an unclosed quote, or not CSV)`,
      framer.recordStart,
    );
  }
  const headerStart = rec.start;
  // A header that runs to the end of the object (no line ending) leaves no data: dataOffset = size.
  const dataOffset = rec.next >= prefix.length && whole ? size : rec.next;
  if (rec.unterminated) {
    throw new BadHeaderError('the header row has a quoted field that is never closed', headerStart);
  }
  const bytes = prefix.subarray(headerStart, rec.end);
  const bad = firstInvalidUtf8(bytes);
  if (bad !== -1) {
    throw new NotTextError(
      `the header is not valid UTF-8 at byte ${headerStart + bad} (save the file as UTF-8)`,
      headerStart + bad,
    );
  }
  const text = utf8.decode(bytes);
  const parsed = splitRecord(text, delimiter);
  if (typeof parsed === 'string') {
    throw new BadHeaderError(`the header row is not valid CSV: ${parsed}`, headerStart);
  }
  const header = parsed;
  if (options.checkNames === false) return { header, dataOffset, headerStart, bom };
  if (header.length === 0) throw new NoHeaderError(size);
  const seen = new Map<string, number>();
  for (const [i, name] of header.entries()) {
    if (name.trim() === '') {
      throw new BadHeaderError(
        `header column ${i + 1} has no name (every column needs a non-empty, unique name)`,
        headerStart,
      );
    }
    const first = seen.get(name);
    if (first !== undefined) {
      throw new BadHeaderError(
        `header column ${i + 1} repeats the name of column ${first + 1} (names must be unique)`,
        headerStart,
      );
    }
    seen.set(name, i);
  }
  return { header, dataOffset, headerStart, bom };
}

/**
 * Above this many bytes as JSON the header is rejected (BAD_HEADER). Events and job records no longer
 * bound it (a large plan is kept in S3 and referenced: services/shared/plan.ts); what does is Kafka: a
 * JSON record repeats every column name, so with a header above 1 MiB no row of the job could fit in a
 * record under Kafka's default max.message.bytes (1 MiB) or the producer's default 1,000,000. The
 * header must also end within the first {@link MAX_HEADER_BYTES} of the object, read in one piece.
 */
export const MAX_HEADER_JSON_BYTES = 1024 * 1024;

const DATA_LIKE: readonly [RegExp, string][] = [
  [/^[-+]?(\d+([.,]\d+)*|\d*\.\d+)([eE][-+]?\d+)?%?$/, 'a number'],
  [/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?$/, 'a date'],
  [/^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$/, 'a date'],
  [/^\d{1,2}:\d{2}(:\d{2})?$/, 'a time'],
  [/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'a UUID'],
  [/^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'an e-mail address'],
  [/^(true|false)$/i, 'a boolean'],
];

/** Longer column names than this are taken for data (a text field), not a name. */
export const MAX_NAME_CHARS = 200;

/**
 * Why a header looks like a data row (a file without a header row), or null. Says which column and
 * what kind of value, never the value: the reason goes into events and logs.
 */
export function dataLikeHeader(header: readonly string[]): string | null {
  for (const [i, name] of header.entries()) {
    const v = name.trim();
    for (const [re, what] of DATA_LIKE) {
      if (re.test(v)) return `column ${i + 1} is ${what}`;
    }
    if (v.length > MAX_NAME_CHARS) return `column ${i + 1} is ${v.length} characters long`;
  }
  return null;
}

/** Offset of the first byte that breaks UTF-8 (overlongs, surrogates, > U+10FFFF included), or -1. */
export function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    let cp: number;
    if (c >= 0xc2 && c <= 0xdf) {
      need = 1;
      min = 0x80;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      need = 2;
      min = 0x800;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3;
      min = 0x10000;
      cp = c & 0x07;
    } else return i;
    for (let k = 1; k <= need; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}
