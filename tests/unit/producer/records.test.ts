import { describe, expect, it } from 'vitest';
import { RecordBuilder } from '../../../services/producer/job/records.ts';
import type { RawRow } from '../../../services/shared/rows.ts';
import { jobFor } from './fakes.ts';

const csv = Buffer.from('id,name\n1,a\n');
const raw = (text: string): RawRow => {
  const bytes = Buffer.from(text);
  return {
    row: 7,
    offset: 100,
    nextOffset: 100 + bytes.length + 1,
    bytes,
    hasQuote: text.includes('"'),
    unterminated: false,
    oversized: false,
  };
};
const builder = (over: Parameters<typeof jobFor>[1] = {}) =>
  new RecordBuilder(jobFor(csv, over), 1_000_000, 'TOO_LARGE', 'test');

describe('RecordBuilder', () => {
  it('builds a plain row on the byte path (a Buffer value) and the same value as the general path', () => {
    // Act
    const plain = builder().build(raw('1,"Alice, B"'));
    const escaped = builder().build(raw('2,back\\slash'));
    // Assess: the plain row's value is bytes; a row JSON must escape goes the general path (text)
    if (!plain.ok || !escaped.ok) throw new Error('rows rejected');
    expect(Buffer.isBuffer(plain.record.value)).toBe(true);
    expect(plain.record.value.toString()).toBe('{"id":"1","name":"Alice, B"}');
    expect(typeof escaped.record.value).toBe('string');
    expect(escaped.record.value).toBe('{"id":"2","name":"back\\\\slash"}');
    expect(plain.record.headers['rowstream-row']).toBe('7');
    expect(plain.size).toBeGreaterThan(plain.record.value.length);
  });

  it('takes the key of a keyed job from the bytes, and the csv format value is the record itself', () => {
    // Act
    const keyed = builder({
      options: { format: 'json', keyColumn: 'name', delimiter: ',', failOnBadRow: false },
    }).build(raw('1,"Zürich, CH"'));
    const asCsv = builder({
      options: { format: 'csv', keyColumn: null, delimiter: ',', failOnBadRow: false },
    }).build(raw('1,"Zürich, CH"'));
    // Assess
    if (!keyed.ok || !asCsv.ok) throw new Error('rows rejected');
    expect(keyed.record.key).toBe('Zürich, CH');
    expect(Buffer.isBuffer(keyed.record.value)).toBe(true);
    expect(Buffer.isBuffer(asCsv.record.value)).toBe(true);
    expect(asCsv.record.value.toString()).toBe('1,"Zürich, CH"');
  });

  it('rejects a row with the wrong field count with the reason, on either path', () => {
    const built = builder().build(raw('1,a,b'));
    expect(built).toEqual({ ok: false, reason: 'WRONG_FIELD_COUNT', detail: '3 fields, header has 2' });
  });
});
