import { crc32c, Reader, readRecordsBatch } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import { BatchEncoder, sealBatch } from '../../../services/producer/adapters/kafka-batch.ts';
import {
  BATCH_ONLY_HEADERS,
  JobHeaderValues,
  lastRecordOnlyHeaders,
  RowRecord,
} from '../../../services/producer/job/records.ts';
import type { OutRecord } from '../../../services/producer/ports.ts';

const seal = {
  producerId: 4242n,
  producerEpoch: 7,
  baseSequence: 1000,
  transactional: true,
  timestamp: 1_790_000_000_000n,
};

function record(i: number, value: string, key: string | null = null): OutRecord {
  return {
    key,
    value,
    headers: {
      'rowstream-job': 'job-1',
      'rowstream-source': 's3://b/inbound/é.csv',
      'rowstream-row': String(i),
      'rowstream-offset': String(i * 100),
    },
  };
}

describe('BatchEncoder', () => {
  it("writes a record batch the library's own reader decodes, with a valid CRC-32C", () => {
    // Prepare: short and long values (1-, 2- and 3-byte varint lengths), UTF-8, null and set keys,
    // and more than 64 records so offset deltas need 2-byte varints.
    const records: OutRecord[] = [];
    for (let i = 1; i <= 150; i++) {
      const value = i % 50 === 0 ? 'x'.repeat(70_000) : `{"id":"${i}","city":"Zürich ✓"}`.repeat(i % 7);
      const r = record(i, value, i % 3 === 0 ? `k-${i}` : null);
      // Values as bytes too (the fast JSON path), and per-record header values that are not short
      // ASCII (non-ASCII, longer than the encoder's copy loop).
      records.push({
        ...r,
        value: i % 4 === 0 ? Buffer.from(value) : value,
        headers: { ...r.headers, 'x-note': i % 2 ? `é✓-${i}` : 'y'.repeat(30 + (i % 10)) },
      });
    }
    const encoder = new BatchEncoder(new Set(['rowstream-job', 'rowstream-source']));
    // Act
    const { buffer, count } = encoder.encode(records, null);
    sealBatch(buffer, seal, crc32c);
    const batch = readRecordsBatch(Reader.from(buffer));
    // Assess
    expect(count).toBe(150);
    expect(batch.length).toBe(buffer.length - 12);
    expect(batch.magic).toBe(2);
    expect(batch.crc).toBe(crc32c(buffer.subarray(21)) >>> 0);
    expect(batch.attributes).toBe(16);
    expect(batch.lastOffsetDelta).toBe(149);
    expect([batch.producerId, batch.producerEpoch, batch.firstSequence]).toEqual([4242n, 7, 1000]);
    expect([batch.firstTimestamp, batch.maxTimestamp]).toEqual([seal.timestamp, seal.timestamp]);
    expect(batch.records).toHaveLength(150);
    batch.records.forEach((r, i) => {
      const want = records[i]!;
      expect(r.offsetDelta).toBe(i);
      expect(r.timestampDelta).toBe(0n);
      expect(r.key === null || r.key.length === 0 ? null : r.key.toString()).toBe(want.key);
      expect(r.value?.toString('utf8')).toBe(want.value.toString());
      expect(r.headers.map(([k, v]) => [k?.toString(), v?.toString()])).toEqual(Object.entries(want.headers));
    });
  });

  it('encodes only the selected records, in the given order, with offset deltas from 0', () => {
    // Prepare
    const records = [1, 2, 3, 4, 5].map((i) => record(i, `v${i}`));
    const encoder = new BatchEncoder(new Set(['rowstream-job']));
    // Act
    const { buffer, count } = encoder.encode(records, [1, 3, 4]);
    sealBatch(buffer, { ...seal, transactional: false }, crc32c);
    const batch = readRecordsBatch(Reader.from(buffer));
    // Assess
    expect(count).toBe(3);
    expect(batch.attributes).toBe(0);
    expect(batch.records.map((r) => [r.offsetDelta, r.value?.toString()])).toEqual([
      [0, 'v2'],
      [1, 'v4'],
      [2, 'v5'],
    ]);
  });

  it("record format compact: source and offset on the batch's last record only, job and row on every record", () => {
    // Prepare
    const records = [1, 2, 3, 4].map((i) => record(i, `v${i}`));
    const compact = new BatchEncoder(new Set(['rowstream-job', 'rowstream-source']), BATCH_ONLY_HEADERS);
    const full = new BatchEncoder(new Set(['rowstream-job', 'rowstream-source']));
    // Act
    const small = compact.encode(records, [0, 1, 2]);
    const big = full.encode(records, [0, 1, 2]);
    sealBatch(small.buffer, seal, crc32c);
    const batch = readRecordsBatch(Reader.from(small.buffer));
    const headers = batch.records.map((r) =>
      Object.fromEntries(r.headers.map(([k, v]) => [k?.toString(), v?.toString()])),
    );
    // Assess
    expect(batch.crc).toBe(crc32c(small.buffer.subarray(21)) >>> 0);
    expect(headers).toEqual([
      { 'rowstream-job': 'job-1', 'rowstream-row': '1' },
      { 'rowstream-job': 'job-1', 'rowstream-row': '2' },
      records[2]!.headers,
    ]);
    expect(big.buffer.length - small.buffer.length).toBeGreaterThan(2 * 40);
  });

  it("record format batch: all four headers on the batch's last record, none on the others, RowRecords too", () => {
    // Prepare: plain records and RowRecords (the producer's), a selection as one partition's batch.
    const job = new JobHeaderValues('job-1', 's3://b/inbound/é.csv');
    const rows = [1, 2, 3, 4].map((i) => new RowRecord(null, `v${i}`, job, i, i * 100));
    const plain = [1, 2, 3, 4].map((i) => record(i, `v${i}`));
    const encoder = new BatchEncoder(
      new Set(['rowstream-job', 'rowstream-source']),
      lastRecordOnlyHeaders('batch'),
    );
    for (const records of [rows, plain]) {
      // Act
      const { buffer } = encoder.encode(records, [0, 2, 3]);
      sealBatch(buffer, seal, crc32c);
      const batch = readRecordsBatch(Reader.from(buffer));
      // Assess: the library's reader decodes it; the resume scan's record (the last) has job, row and offset.
      expect(batch.records.map((r) => r.value?.toString())).toEqual(['v1', 'v3', 'v4']);
      expect(batch.records.map((r) => r.headers.length)).toEqual([0, 0, 4]);
      const last = Object.fromEntries(
        batch.records[2]!.headers.map(([k, v]) => [k?.toString(), v?.toString()]),
      );
      expect(last).toEqual(records[3]!.headers);
    }
    expect(lastRecordOnlyHeaders('compact')).toBe(BATCH_ONLY_HEADERS);
    expect(lastRecordOnlyHeaders('full').size).toBe(0);
  });

  it('writes a RowRecord (headers from its row and offset) byte for byte as the same record with a headers object', () => {
    // Prepare: row numbers and offsets of 1 to 16 digits (safe integers), string and byte values, keys and none,
    // a UTF-8 source URI, in both record formats, whole batches and selections.
    const job = new JobHeaderValues('2f0c-job', 's3://b/inbound/é ✓.csv');
    const rows: RowRecord[] = [];
    for (let i = 0; i < 60; i++) {
      const row = i < 16 ? 10 ** i : 1 + i * 7919;
      const value = `{"id":"${i}","v":"${'x'.repeat(i * 3)}"}`;
      rows.push(
        new RowRecord(i % 3 ? null : `k-${i}`, i % 2 ? Buffer.from(value) : value, job, row, row * 7 + i),
      );
    }
    const plain: OutRecord[] = rows.map((r) => ({ key: r.key, value: r.value, headers: { ...r.headers } }));
    for (const lastOnly of [BATCH_ONLY_HEADERS, new Set<string>()]) {
      for (const indices of [null, [3, 7, 8, 59], [0]]) {
        const shared = new Set(['rowstream-job', 'rowstream-source']);
        // Act
        const fast = new BatchEncoder(shared, lastOnly).encode(rows, indices);
        const generic = new BatchEncoder(shared, lastOnly).encode(plain, indices);
        // Assess
        expect(fast.count).toBe(generic.count);
        expect(fast.buffer.subarray(61).equals(generic.buffer.subarray(61))).toBe(true);
        expect(fast.buffer.readInt32BE(57)).toBe(generic.buffer.readInt32BE(57));
      }
    }
    expect(rows[15]!.headers['rowstream-row']).toBe('1000000000000000');
  });
});
