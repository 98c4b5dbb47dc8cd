import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { avroType } from '../../../services/shared/schema/avro.ts';
import { avroDefinition, rowSchema } from '../../../services/shared/schema/definition.ts';
import { inferColumns } from '../../../services/shared/schema/infer.ts';
import {
  avroRecordBuilder,
  fieldConverter,
  typedJsonEncoder,
} from '../../../services/shared/schema/typed.ts';
import {
  decimalBytes,
  decimalText,
  parseTimestamp,
  timestampText,
} from '../../../services/shared/schema/values.ts';

const kinds = (header: string[], rows: string[][]) =>
  inferColumns(header, rows).map((c) => ({
    kind: c.type.kind === 'decimal' ? `decimal(${c.type.precision},${c.type.scale})` : c.type.kind,
    nullable: c.nullable,
  }));

describe('inferColumns', () => {
  it('finds the narrowest type per column and nullability from empty values', () => {
    // Prepare
    const header = ['id', 'amount', 'ratio', 'ok', 'day', 'at', 'name', 'zip', 'blank', 'big'];
    const rows = [
      [
        '1',
        '0.01',
        '1e3',
        'true',
        '2026-11-30',
        '2026-11-30T10:00:00Z',
        'a',
        '02134',
        '',
        '123456789012345678901',
      ],
      ['-22', '12.5', '-0.5', 'FALSE', '2026-02-28', '2026-11-30 10:00:01.123456', '', '10001', '', '1'],
      ['', '3', '7', 'true', '', '2026-11-30', 'c', '94105', '', '2'],
    ];
    // Act
    const got = kinds(header, rows);
    // Assess
    expect(got).toEqual([
      { kind: 'long', nullable: true },
      { kind: 'decimal(4,2)', nullable: false },
      { kind: 'double', nullable: false },
      { kind: 'boolean', nullable: false },
      { kind: 'date', nullable: true },
      { kind: 'timestamp', nullable: false },
      { kind: 'string', nullable: true },
      { kind: 'string', nullable: false },
      { kind: 'string', nullable: true },
      { kind: 'decimal(21,0)', nullable: false },
    ]);
  });

  it('keeps what a number would change as strings: leading zeros, unsafe integers beyond 38 digits, NaN', () => {
    expect(kinds(['a', 'b', 'c'], [['007', '1'.repeat(40), 'NaN']])).toEqual([
      { kind: 'string', nullable: false },
      { kind: 'double', nullable: false },
      { kind: 'string', nullable: false },
    ]);
  });

  it('rejects impossible dates and times', () => {
    expect(kinds(['d'], [['2026-02-30']])).toEqual([{ kind: 'string', nullable: false }]);
    expect(parseTimestamp('2026-11-30T24:00:00Z')).toBeNull();
    expect(parseTimestamp('2026-11-30T10:00:00+01:00')).toBe(Date.UTC(2026, 10, 30, 9) * 1000);
    expect(timestampText(parseTimestamp('2026-11-30 10:00:01.000123')!)).toBe('2026-11-30T10:00:01.000123Z');
  });
});

// Values a CSV column of one kind may hold, plus empties.
const value = fc.oneof(
  fc.constant(''),
  fc.integer({ min: -1e9, max: 1e9 }).map(String),
  fc.maxSafeInteger().map(String),
  fc
    .tuple(
      fc.integer({ min: -99999, max: 99999 }),
      fc.integer({ min: 0, max: 9999 }),
      fc.integer({ min: 1, max: 4 }),
    )
    .map(([i, f, d]) => `${i}.${String(f).padStart(4, '0').slice(0, d)}`),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
  fc.constantFrom('true', 'false', 'TRUE', 'False'),
  fc
    .date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString().slice(0, 10)),
  fc
    .date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
    .map((d) => d.toISOString()),
  fc.string({ maxLength: 12 }),
);
// A column draws mostly from one generator so that typed columns actually occur.
const column = fc.oneof(
  fc.array(value, { minLength: 1, maxLength: 30 }),
  fc.integer({ min: 1, max: 8 }).chain((k) =>
    fc.array(
      fc.oneof(
        fc.constant(''),
        value.filter((v) => v.length % k === 0),
      ),
      { minLength: 1, maxLength: 30 },
    ),
  ),
);

describe('inference, property', () => {
  it('every sampled value is accepted by the inferred type, as JSON and as Avro', () => {
    fc.assert(
      fc.property(fc.array(column, { minLength: 1, maxLength: 5 }), (cols) => {
        // Prepare: columns of equal length
        const n = Math.max(...cols.map((c) => c.length));
        const header = cols.map((_, i) => `c ${i}`);
        const rows = Array.from({ length: n }, (_, r) => cols.map((c) => c[r] ?? ''));
        // Act
        const inferred = inferColumns(header, rows);
        const definition = avroDefinition(inferred);
        const schema = rowSchema(definition, header);
        const json = typedJsonEncoder(schema, header);
        const avro = avroRecordBuilder(schema, header);
        const type = avroType(definition);
        // Assess
        for (const row of rows) {
          const j = json(row);
          expect(j.ok, JSON.stringify({ row, definition })).toBe(true);
          if (j.ok) expect(() => JSON.parse(j.value)).not.toThrow();
          const a = avro(row);
          expect(a.ok).toBe(true);
          if (a.ok) expect(type.isValid(a.value), JSON.stringify({ row, definition })).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('decimal bytes round-trip (two’s complement, big-endian)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 38n), max: 10n ** 38n }),
        fc.integer({ min: 0, max: 10 }),
        (v, scale) => {
          const text = decimalText(decimalBytes(v), scale);
          const digits = text.replace('-', '').replace('.', '');
          expect(BigInt(digits) * (text.startsWith('-') ? -1n : 1n)).toBe(v);
          expect(text.split('.')[1]?.length ?? 0).toBe(scale);
        },
      ),
    );
  });
});

describe('typed values', () => {
  it('typed JSON: numbers as numbers, decimals with their scale, null for empty nullable', () => {
    // Prepare
    const header = ['id', 'amount', 'ok', 'day', 'name', 'note'];
    const inferred = inferColumns(header, [
      ['1', '0.01', 'true', '2026-11-30', 'x', ''],
      ['2', '', 'false', '2026-12-01', 'y', 'n'],
    ]);
    const schema = rowSchema(avroDefinition(inferred), header);
    const enc = typedJsonEncoder(schema, header);
    // Act
    const a = enc(['1', '0.1', 'TRUE', '2026-11-30', 'x "q"', '']);
    const b = enc(['x', '0.1', 'true', '2026-11-30', 'x', '']);
    // Assess
    expect(a).toEqual({
      ok: true,
      value: '{"id":1,"amount":0.10,"ok":true,"day":"2026-11-30","name":"x \\"q\\"","note":null}',
    });
    expect(b).toEqual({ ok: false, column: 0, columnName: 'id', expected: 'long', text: 'x' });
  });

  it('a value outside the decimal’s precision or scale does not fit', () => {
    const conv = fieldConverter({
      name: 'a',
      column: 0,
      type: { kind: 'decimal', precision: 4, scale: 2 },
      nullable: false,
      int32: false,
      float32: false,
      millis: false,
    });
    expect(conv('12.34').ok).toBe(true);
    expect(conv('12.340').ok).toBe(true);
    expect(conv('12.345').ok).toBe(false);
    expect(conv('123.4').ok).toBe(false);
    expect(conv('').ok).toBe(false);
  });
});
