import { isUtf8 } from 'node:buffer';
import { CsvFramer, type RecordSink, splitRecord } from './csv.ts';

/**
 * Row framing and decoding by the one CSV grammar of services/shared/csv.ts, shared by the producer
 * (which reads every row) and the planner (which samples rows to infer a schema); the planner counts
 * with the same rules, so totalRows = delivered + rejected.
 *
 * Why a byte-level splitter instead of csv-parse's stream: resume needs, for every row, the exact byte
 * offset where the next row starts, and bad rows (invalid UTF-8, unterminated quotes) must not stop the
 * stream. csv-parse's stream API aborts the whole stream at an unterminated quote at EOF (dropping
 * records already parsed in the same chunk) and decodes before we can check UTF-8 per row.
 *
 * A record spanning chunks is kept as the list of its pieces and joined once when it ends, so
 * assembling it copies each byte once (linear in its size, whatever the chunk size).
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

export interface SplitterOptions {
  /** Row number of the first row this splitter will see minus one (resume: the last done row). */
  readonly rowsBefore: number;
  /** Absolute byte offset of the first byte fed in; must be a record start. */
  readonly startOffset: number;
  readonly delimiter: string;
  /** A record longer than this is not buffered: it becomes an `oversized` bad row (bounded memory). */
  readonly maxRecordBytes: number;
}

/** How many bytes of an oversized record are kept for the rejects file. */
const OVERSIZED_HEAD_BYTES = 1024;

/** Splits a byte stream into CSV records with absolute byte offsets. Feed chunks, then `end()`. */
export class RowSplitter {
  private readonly framer: CsvFramer;
  private row: number;
  // The open record's bytes from earlier chunks, starting at piecesStart (absolute).
  private pieces: Buffer[] = [];
  private piecesStart = 0;
  // Oversized record being skipped: where it started and its first bytes.
  private skipping: { offset: number; head: Buffer } | null = null;
  // The chunk being scanned and where it starts, for the sink.
  private chunk: Buffer = Buffer.alloc(0);
  private chunkStart = 0;
  private out: RawRow[] = [];
  /** Bytes copied while joining records that spanned chunks (tests check this stays linear). */
  bytesCopied = 0;
  private readonly sink: RecordSink = (start, end, next, hasQuote, unterminated) => {
    this.row++;
    const skipping = this.skipping;
    if (skipping) {
      this.skipping = null;
      this.out.push({
        row: this.row,
        offset: skipping.offset,
        nextOffset: next,
        bytes: skipping.head,
        hasQuote,
        unterminated,
        oversized: true,
      });
    } else {
      this.out.push({
        row: this.row,
        offset: start,
        nextOffset: next,
        bytes: this.gather(start, end),
        hasQuote,
        unterminated,
        oversized: false,
      });
    }
    this.pieces = [];
    this.piecesStart = next;
  };

  constructor(private readonly options: SplitterOptions) {
    this.framer = new CsvFramer(options.delimiter, options.startOffset);
    this.row = options.rowsBefore;
    this.piecesStart = options.startOffset;
  }

  /** Rows completed by this chunk. */
  push(chunk: Buffer): RawRow[] {
    this.out = [];
    this.chunk = chunk;
    this.chunkStart = this.framer.offset;
    this.framer.push(chunk, this.sink);
    this.keepOpenRecord();
    return this.out;
  }

  /** Rows left at EOF: a last row without line ending, or an unterminated quoted record. */
  end(): RawRow[] {
    this.out = [];
    this.chunk = Buffer.alloc(0);
    this.chunkStart = this.framer.offset;
    this.framer.finish(this.sink);
    this.pieces = [];
    this.skipping = null;
    return this.out;
  }

  // After a chunk: keep the open record's bytes (references, not copies), or only its head once it
  // is larger than the limit.
  private keepOpenRecord(): void {
    const chunkEnd = this.chunkStart + this.chunk.length;
    const recStart = this.framer.recordStart;
    if (recStart >= chunkEnd) {
      this.pieces = [];
      this.piecesStart = recStart;
      return;
    }
    if (this.skipping) return;
    if (recStart >= this.chunkStart) {
      this.pieces = [this.chunk.subarray(recStart - this.chunkStart)];
      this.piecesStart = recStart;
    } else {
      this.pieces.push(this.chunk);
    }
    if (chunkEnd - recStart > this.options.maxRecordBytes) {
      this.skipping = { offset: recStart, head: this.gather(recStart, recStart + OVERSIZED_HEAD_BYTES) };
      this.pieces = [];
    }
  }

  // Bytes [start, end) (absolute) from the kept pieces and the current chunk.
  private gather(start: number, end: number): Buffer {
    const cs = this.chunkStart;
    if (start >= cs && this.pieces.length === 0) {
      return this.chunk.subarray(start - cs, Math.min(end, cs + this.chunk.length) - cs);
    }
    const parts: Buffer[] = [];
    let at = this.piecesStart;
    for (const p of this.pieces) {
      const from = Math.max(start, at);
      const to = Math.min(end, at + p.length);
      if (to > from) parts.push(p.subarray(from - at, to - at));
      at += p.length;
    }
    if (at <= cs) {
      const from = Math.max(start, cs);
      const to = Math.min(end, cs + this.chunk.length);
      if (to > from) parts.push(this.chunk.subarray(from - cs, to - cs));
    }
    if (parts.length === 1) return parts[0]!;
    const joined = Buffer.concat(parts);
    this.bytesCopied += joined.length;
    return joined;
  }
}

/** @deprecated name kept for callers: {@link splitRecord}. */
export const splitQuoted = splitRecord;

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
    const parsed = splitRecord(text, delimiter);
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
