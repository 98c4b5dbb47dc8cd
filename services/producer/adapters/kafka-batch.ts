import { HEADERS, type JobHeaderValues, RowRecord } from '../job/records.ts';
import type { OutRecord } from '../ports.ts';

/**
 * Kafka RecordBatch (magic v2, uncompressed) encoding for the producer's hot path.
 *
 * Why our own encoder: @platformatic/kafka builds every record from ~20 small Buffers (one per varint
 * and field) that are collected in arrays and concatenated twice; on this 2-core machine that was
 * ~60% of the producer's CPU (a third of it GC). Here a whole batch is written into one pre-sized
 * Buffer in two passes (sizes, then bytes): no per-record allocation beyond what the strings need.
 * The header fields that belong to the producer session (producer id, epoch, base sequence,
 * transactional flag) and the CRC are filled in by {@link sealBatch} when the request is built.
 *
 * Layout (https://kafka.apache.org/documentation/#recordbatch): baseOffset int64, batchLength int32,
 * partitionLeaderEpoch int32, magic int8, crc uint32 (CRC-32C of attributes..end), attributes int16,
 * lastOffsetDelta int32, baseTimestamp int64, maxTimestamp int64, producerId int64, producerEpoch int16,
 * baseSequence int32, records count int32, records. A record: length varint, attributes int8,
 * timestampDelta varlong, offsetDelta varint, key (varint length, -1 = null), value, headers count
 * varint, then per header key and value with varint lengths. All varints are zig-zag encoded.
 */

export const BATCH_HEADER_BYTES = 61;
const TRANSACTIONAL = 1 << 4;

/** Bytes of a zig-zag varint for a non-negative int below 2^30 (lengths, deltas). */
function varintSize(v: number): number {
  const z = v * 2;
  return z < 0x80 ? 1 : z < 0x4000 ? 2 : z < 0x200000 ? 3 : z < 0x10000000 ? 4 : 5;
}

function writeVarint(buf: Buffer, pos: number, v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 0x80) {
    buf[pos++] = (z & 0x7f) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[pos++] = z;
  return pos;
}

/** A header's key, length-prefixed as a record writes it: varint(key length) key. */
function keySegment(key: string): Buffer {
  const k = Buffer.from(key, 'utf8');
  const out = Buffer.allocUnsafe(varintSize(k.length) + k.length);
  const pos = writeVarint(out, 0, k.length);
  k.copy(out, pos);
  return out;
}

/** A whole header as a record writes it: varint(key length) key varint(value length) value. */
function headerSegment(key: string, value: string): Buffer {
  const k = keySegment(key);
  const v = Buffer.from(value, 'utf8');
  const out = Buffer.allocUnsafe(k.length + varintSize(v.length) + v.length);
  k.copy(out, 0);
  v.copy(out, writeVarint(out, k.length, v.length));
  return out;
}

/**
 * Copies a header segment: a loop for a key's few bytes, `set` (a memcpy, ~40 ns a call) for the
 * longer job and source segments, where the loop cost ~1 ns a byte more.
 */
function putSegment(buf: Buffer, pos: number, seg: Buffer): number {
  if (seg.length > 24) {
    buf.set(seg, pos);
    return pos + seg.length;
  }
  for (let k = 0; k < seg.length; k++) buf[pos++] = seg[k]!;
  return pos;
}

/** Writes the `digits` decimal digits of a non-negative integer as ASCII ending at pos + digits. */
function writeDigits(buf: Buffer, pos: number, n: number, digits: number): number {
  let p = pos + digits;
  const end = p;
  do {
    buf[--p] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

/** A job's header bytes for {@link RowRecord}s, and which headers a record that is not last carries. */
interface RowHeaderBytes {
  readonly values: JobHeaderValues;
  readonly job: Buffer;
  readonly source: Buffer;
  readonly rowKey: Buffer;
  readonly offsetKey: Buffer;
  /** Whether job, source, row, offset are on every record (else on the batch's last only). */
  readonly every: readonly [boolean, boolean, boolean, boolean];
}

/**
 * Encodes records into one batch Buffer (header space left for {@link sealBatch}). Header keys and
 * the values listed in `shared` (constant for a job: job id, source URI) are encoded once per encoder.
 * Headers listed in `lastOnly` are written on the batch's last record only (the record format
 * `compact`, see records.ts): the others carry every header they have.
 */
export class BatchEncoder {
  private readonly keyBytes = new Map<string, Buffer>();
  private readonly sharedBytes = new Map<string, Buffer>();
  /** The header bytes of the last job seen (an encoder serves one job). */
  private rowHeaders: RowHeaderBytes | null = null;

  constructor(
    private readonly shared: ReadonlySet<string>,
    private readonly lastOnly: ReadonlySet<string> = new Set(),
  ) {}

  /** Whether header `k` is written on a record that is not the batch's last. */
  private inEvery(k: string): boolean {
    return !this.lastOnly.has(k);
  }

  private headerKey(k: string): Buffer {
    let b = this.keyBytes.get(k);
    if (!b) {
      b = Buffer.from(k, 'utf8');
      this.keyBytes.set(k, b);
    }
    return b;
  }

  private sharedValue(v: string): Buffer {
    let b = this.sharedBytes.get(v);
    if (!b) {
      b = Buffer.from(v, 'utf8');
      // Bounded: a job has one id and one source; anything else is a misuse, not a reason to grow.
      if (this.sharedBytes.size < 64) this.sharedBytes.set(v, b);
    }
    return b;
  }

  private rowHeaderBytes(values: JobHeaderValues): RowHeaderBytes {
    const known = this.rowHeaders;
    if (known && known.values === values) return known;
    const h: RowHeaderBytes = {
      values,
      job: headerSegment(HEADERS.job, values.jobId),
      source: headerSegment(HEADERS.source, values.sourceUri),
      rowKey: keySegment(HEADERS.row),
      offsetKey: keySegment(HEADERS.offset),
      every: [
        this.inEvery(HEADERS.job),
        this.inEvery(HEADERS.source),
        this.inEvery(HEADERS.row),
        this.inEvery(HEADERS.offset),
      ],
    };
    this.rowHeaders = h;
    return h;
  }

  /**
   * Header bytes of a {@link RowRecord} (count in `counts[i]`): the same headers, in the same order,
   * as the generic path writes from `headers` (job, source, row, offset), without building them.
   */
  private rowHeadersSize(h: RowHeaderBytes, r: RowRecord, last: boolean, counts: Int32Array, i: number) {
    let size = 0;
    let count = 0;
    if (last || h.every[0]) {
      size += h.job.length;
      count++;
    }
    if (last || h.every[1]) {
      size += h.source.length;
      count++;
    }
    if (last || h.every[2]) {
      size += h.rowKey.length + varintSize(r.rowDigits) + r.rowDigits;
      count++;
    }
    if (last || h.every[3]) {
      size += h.offsetKey.length + varintSize(r.offsetDigits) + r.offsetDigits;
      count++;
    }
    counts[i] = count;
    return size + varintSize(count);
  }

  private writeRowHeaders(
    buf: Buffer,
    pos: number,
    h: RowHeaderBytes,
    r: RowRecord,
    last: boolean,
    count: number,
  ) {
    pos = writeVarint(buf, pos, count);
    if (last || h.every[0]) pos = putSegment(buf, pos, h.job);
    if (last || h.every[1]) pos = putSegment(buf, pos, h.source);
    if (last || h.every[2]) {
      pos = putSegment(buf, pos, h.rowKey);
      pos = writeVarint(buf, pos, r.rowDigits);
      pos = writeDigits(buf, pos, r.row, r.rowDigits);
    }
    if (last || h.every[3]) {
      pos = putSegment(buf, pos, h.offsetKey);
      pos = writeVarint(buf, pos, r.offsetDigits);
      pos = writeDigits(buf, pos, r.nextOffset, r.offsetDigits);
    }
    return pos;
  }

  /** The records at `indices` (all when null), in that order, as one batch. */
  encode(
    records: readonly OutRecord[],
    indices: readonly number[] | null,
  ): { buffer: Buffer; count: number } {
    const n = indices ? indices.length : records.length;
    const bodies = new Int32Array(n);
    const valueLens = new Int32Array(n);
    const headerCounts = new Int32Array(n);
    let total = BATCH_HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      const r = records[indices ? indices[i]! : i]!;
      const keyLen = r.key === null ? -1 : Buffer.byteLength(r.key, 'utf8');
      const valueLen = typeof r.value === 'string' ? Buffer.byteLength(r.value, 'utf8') : r.value.length;
      valueLens[i] = valueLen;
      let body = 2 + varintSize(i) + (keyLen < 0 ? 1 : varintSize(keyLen) + keyLen);
      body += varintSize(valueLen) + valueLen;
      const last = i === n - 1;
      if (r instanceof RowRecord) {
        body += this.rowHeadersSize(this.rowHeaderBytes(r.job), r, last, headerCounts, i);
        bodies[i] = body;
        total += varintSize(body) + body;
        continue;
      }
      let count = 0;
      for (const k in r.headers) {
        if (!last && !this.inEvery(k)) continue;
        const kl = this.headerKey(k).length;
        const v = r.headers[k]!;
        const vl = this.shared.has(k) ? this.sharedValue(v).length : Buffer.byteLength(v, 'utf8');
        body += varintSize(kl) + kl + varintSize(vl) + vl;
        count++;
      }
      body += varintSize(count);
      bodies[i] = body;
      total += varintSize(body) + body;
    }
    const buf = Buffer.allocUnsafe(total);
    let pos = BATCH_HEADER_BYTES;
    for (let i = 0; i < n; i++) {
      const r = records[indices ? indices[i]! : i]!;
      pos = writeVarint(buf, pos, bodies[i]!);
      buf[pos++] = 0; // attributes
      buf[pos++] = 0; // timestampDelta: every record carries the batch's timestamp
      pos = writeVarint(buf, pos, i);
      if (r.key === null)
        buf[pos++] = 1; // zig-zag(-1)
      else {
        pos = writeVarint(buf, pos, Buffer.byteLength(r.key, 'utf8'));
        pos += buf.write(r.key, pos, 'utf8');
      }
      pos = writeVarint(buf, pos, valueLens[i]!);
      pos += typeof r.value === 'string' ? buf.write(r.value, pos, 'utf8') : r.value.copy(buf, pos);
      const last = i === n - 1;
      if (r instanceof RowRecord) {
        pos = this.writeRowHeaders(buf, pos, this.rowHeaderBytes(r.job), r, last, headerCounts[i]!);
        continue;
      }
      let count = 0;
      for (const k in r.headers) if (last || this.inEvery(k)) count++;
      pos = writeVarint(buf, pos, count);
      for (const k in r.headers) {
        if (!last && !this.inEvery(k)) continue;
        const kb = this.headerKey(k);
        pos = writeVarint(buf, pos, kb.length);
        pos += kb.copy(buf, pos);
        const v = r.headers[k]!;
        if (this.shared.has(k)) {
          const vb = this.sharedValue(v);
          pos = writeVarint(buf, pos, vb.length);
          pos += vb.copy(buf, pos);
        } else {
          pos = writeVarint(buf, pos, Buffer.byteLength(v, 'utf8'));
          pos += buf.write(v, pos, 'utf8');
        }
      }
    }
    if (pos !== total) throw new Error(`batch encoding size mismatch: ${pos} != ${total}`);
    buf.writeInt32BE(n, 57);
    buf.writeInt32BE(n - 1, 23);
    return { buffer: buf, count: n };
  }
}

/** Session fields of a batch, known only when the produce request is built. */
export interface BatchSeal {
  readonly producerId: bigint;
  readonly producerEpoch: number;
  readonly baseSequence: number;
  readonly transactional: boolean;
  readonly timestamp: bigint;
}

/** Fills the batch header and its CRC-32C. Idempotent: a retried request re-seals the same bytes. */
export function sealBatch(buf: Buffer, seal: BatchSeal, crc32c: (data: Buffer) => number): Buffer {
  buf.writeBigInt64BE(0n, 0);
  buf.writeInt32BE(buf.length - 12, 8);
  buf.writeInt32BE(-1, 12); // partitionLeaderEpoch: set by the broker
  buf.writeInt8(2, 16);
  buf.writeInt16BE(seal.transactional ? TRANSACTIONAL : 0, 21);
  buf.writeBigInt64BE(seal.timestamp, 27);
  buf.writeBigInt64BE(seal.timestamp, 35);
  buf.writeBigInt64BE(seal.producerId, 43);
  buf.writeInt16BE(seal.producerEpoch, 51);
  buf.writeInt32BE(seal.baseSequence, 53);
  buf.writeUInt32BE(crc32c(buf.subarray(21)) >>> 0, 17);
  return buf;
}
