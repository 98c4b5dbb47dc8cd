import { parse } from 'csv-parse/sync';
import { CR, LF, QUOTE } from './count.ts';
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
export function readHeader(prefix: Uint8Array, size: number, delimiter = ','): HeaderInfo {
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
  let pos = bom ? 3 : 0;
  // Leading blank lines are skipped, exactly like empty lines between rows.
  for (;;) {
    if (prefix[pos] === LF) pos += 1;
    else if (prefix[pos] === CR && prefix[pos + 1] === LF) pos += 2;
    else break;
  }
  const whole = prefix.length >= size;
  if (pos >= prefix.length) {
    if (whole) throw new NoHeaderError(size);
    throw new BadHeaderError(`no header in the first ${prefix.length} bytes (only blank lines)`, pos);
  }
  const headerStart = pos;
  let end = -1;
  let inside = false;
  for (let i = pos; i < prefix.length; i++) {
    const c = prefix[i];
    if (c === QUOTE) inside = !inside;
    else if (c === LF && !inside) {
      end = i;
      break;
    }
  }
  let dataOffset: number;
  if (end === -1) {
    if (!whole) {
      throw new BadHeaderError(
        `the header row does not end within ${prefix.length} bytes (an unclosed quote, or not CSV)`,
        headerStart,
      );
    }
    end = prefix.length;
    dataOffset = size;
  } else {
    dataOffset = end + 1;
  }
  let textEnd = end;
  if (textEnd > headerStart && prefix[textEnd - 1] === CR) textEnd--;
  const bytes = prefix.subarray(headerStart, textEnd);
  const bad = firstInvalidUtf8(bytes);
  if (bad !== -1) {
    throw new NotTextError(
      `the header is not valid UTF-8 at byte ${headerStart + bad} (save the file as UTF-8)`,
      headerStart + bad,
    );
  }
  const text = utf8.decode(bytes);
  let records: string[][];
  try {
    records = parse(text, { delimiter, bom: false, relax_column_count: true }) as string[][];
  } catch (e) {
    throw new BadHeaderError(`the header row is not valid CSV: ${(e as Error).message}`, headerStart);
  }
  const header = records[0] ?? [];
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
        `header column ${i + 1} repeats the name "${name}" of column ${first + 1} (names must be unique)`,
        headerStart,
      );
    }
    seen.set(name, i);
  }
  return { header, dataOffset, headerStart, bom };
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
