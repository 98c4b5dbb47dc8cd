import type { JobStarted, RecordHeaders } from '../../../events/catalog.ts';
import { decodeRow, type RawRow } from '../../shared/rows.ts';
import type { OutRecord } from '../ports.ts';
import { rowBytesEncoder, valueEncoder } from '../rows.ts';
import { mismatchDetail, TYPE_MISMATCH, type TypedValueEncoder } from '../typed.ts';

export const HEADERS = {
  job: 'rowstream-job',
  source: 'rowstream-source',
  row: 'rowstream-row',
  offset: 'rowstream-offset',
} as const;

/**
 * Which headers each record carries (ROWSTREAM_PRODUCER_RECORD_HEADERS, docs/producer.md "Record format"):
 * - `compact` (default): every record has `rowstream-job` and `rowstream-row` (whose record it is, for
 *   consumers, `topic read --job` and checks); `rowstream-source` and `rowstream-offset` ride on the
 *   last record of each record batch only, which is the record the resume scan reads (kafka-scan.ts).
 * - `full`: all four headers on every record.
 * - `batch`: all four on the last record of each record batch only, none on the others: the least for
 *   the producer to write and the broker to validate, resume exactly as strong (the scan reads the
 *   batch's last record in every format), but a consumer cannot tell a record's job or row from it.
 */
export type { RecordHeaders };
/** Headers the `compact` format writes on a batch's last record only. */
export const BATCH_ONLY_HEADERS: ReadonlySet<string> = new Set([HEADERS.source, HEADERS.offset]);
const ALL_HEADERS: ReadonlySet<string> = new Set(Object.values(HEADERS));
const NO_HEADERS: ReadonlySet<string> = new Set();

/** The headers a record format writes on the last record of each batch only (the rest: on every record). */
export function lastRecordOnlyHeaders(format: RecordHeaders): ReadonlySet<string> {
  return format === 'compact' ? BATCH_ONLY_HEADERS : format === 'batch' ? ALL_HEADERS : NO_HEADERS;
}

// Per-record overhead of a Kafka record batch entry with our four headers, rounded up (varints,
// header keys, attributes); a batch must stay below the broker's message.max.bytes.
export const RECORD_OVERHEAD = 96;
// Record batch header (61 bytes) and the produce request around it, rounded up.
export const BATCH_OVERHEAD = 512;

/** Decimal digits of a non-negative integer (row numbers and byte offsets): String(n).length, no string. */
export function decimalDigits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/** A job's constant header values (job id, source URI), shared by all of its records. */
export class JobHeaderValues {
  constructor(
    readonly jobId: string,
    readonly sourceUri: string,
  ) {}
}

/**
 * A job's record: its four headers are derived from the row number and next byte offset, so a row
 * costs no header object and no number-to-string conversion; the batch encoder writes them straight
 * from these fields (kafka-batch.ts). `headers` builds the object for everything else (the library's
 * produce path, tests), in the order records have always carried them. It is a getter: copy a record
 * field by field, not with a spread (which drops it).
 */
export class RowRecord implements OutRecord {
  /** Decimal digits of `row` and `nextOffset`, counted once (the size check and the encoder use them). */
  readonly rowDigits: number;
  readonly offsetDigits: number;

  constructor(
    readonly key: string | null,
    readonly value: string | Buffer,
    readonly job: JobHeaderValues,
    readonly row: number,
    readonly nextOffset: number,
  ) {
    this.rowDigits = decimalDigits(row);
    this.offsetDigits = decimalDigits(nextOffset);
  }

  get headers(): Record<string, string> {
    return {
      [HEADERS.job]: this.job.jobId,
      [HEADERS.source]: this.job.sourceUri,
      [HEADERS.row]: String(this.row),
      [HEADERS.offset]: String(this.nextOffset),
    };
  }
}

export type BuiltRecord =
  | { readonly ok: true; readonly record: OutRecord; readonly size: number }
  | { readonly ok: false; readonly reason: string; readonly detail: string };

/** Turns a framed row into the Kafka record of the job (value, key, headers) or a reject reason. */
export class RecordBuilder {
  private readonly encodeValue: ReturnType<typeof valueEncoder>;
  /** The value (and key) from the row's bytes (untyped JSON and CSV jobs); null: the general path only. */
  private readonly fast: ReturnType<typeof rowBytesEncoder>;
  private readonly keyIndex: number;
  private readonly headerBytes: number;
  private readonly values: JobHeaderValues;

  constructor(
    private readonly job: JobStarted,
    /** The largest record the topic takes (min of the setting and the topic's max.message.bytes). */
    private readonly maxRecordBytes: number,
    /**
     * Reject reason when a record is over the limit: `TOO_LARGE` for the producer's own setting,
     * `MESSAGE_TOO_LARGE` (the broker's error) when the topic's max.message.bytes is the binding limit.
     */
    private readonly tooLargeReason: string,
    private readonly limitSource: string,
    /** The job's schema encoder (typed JSON, Avro); null: the untyped encoders. */
    private readonly typed: TypedValueEncoder | null = null,
  ) {
    this.encodeValue = valueEncoder(job.options.format === 'csv' ? 'csv' : 'json', job.header);
    this.keyIndex = job.options.keyColumn === null ? -1 : job.header.indexOf(job.options.keyColumn);
    const format = job.options.format;
    this.fast =
      (format === 'json' || format === 'csv') && typed === null
        ? rowBytesEncoder(format, job.header, job.options.delimiter)
        : null;
    this.headerBytes = HEADERS.job.length + job.jobId.length + HEADERS.source.length + job.sourceUri.length;
    this.values = new JobHeaderValues(job.jobId, job.sourceUri);
  }

  build(raw: RawRow): BuiltRecord {
    const enc = this.fast;
    const fast = enc && !raw.oversized && !raw.unterminated ? enc(raw.bytes) : null;
    if (enc && fast)
      return this.sized(raw, fast, this.keyIndex >= 0 ? enc.field(raw.bytes, this.keyIndex) : null);
    const decoded = decodeRow(raw, this.job.header, this.job.options.delimiter);
    if (!decoded.ok) return { ok: false, reason: decoded.reason, detail: decoded.detail };
    let value: string | Buffer;
    if (this.typed) {
      const t = this.typed(decoded.fields);
      if (!t.ok) {
        return {
          ok: false,
          reason: TYPE_MISMATCH,
          detail: mismatchDetail(t, raw, this.job.options.delimiter),
        };
      }
      value = t.value;
    } else {
      value = this.encodeValue(decoded);
    }
    const key = this.keyIndex >= 0 ? (decoded.fields[this.keyIndex] ?? null) : null;
    return this.sized(raw, value, key);
  }

  private sized(raw: RawRow, value: string | Buffer, key: string | null): BuiltRecord {
    const record = new RowRecord(key, value, this.values, raw.row, raw.nextOffset);
    const size =
      (typeof value === 'string' ? Buffer.byteLength(value) : value.length) +
      (key === null ? 0 : Buffer.byteLength(key)) +
      this.headerBytes +
      record.rowDigits +
      record.offsetDigits +
      RECORD_OVERHEAD;
    if (size > this.maxRecordBytes) {
      return {
        ok: false,
        reason: this.tooLargeReason,
        detail: `record of ${size} bytes exceeds ${this.maxRecordBytes} (${this.limitSource})`,
      };
    }
    return { ok: true, size, record };
  }
}
