import { execFileSync } from 'node:child_process';
import { parse as parseSync } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordValue, rowBytesEncoder, valueEncoder } from '../../../services/producer/rows.ts';
import { decodeRow, type RawRow, RowSplitter, splitQuoted } from '../../../services/shared/rows.ts';
import { trickyCsv } from '../../../testkit/csv.ts';
import { describeCsv } from '../../../testkit/producer.ts';

function splitAll(buf: Buffer, startOffset: number, chunk: number, maxRecordBytes = 1 << 20): RawRow[] {
  const s = new RowSplitter({ rowsBefore: 0, startOffset, delimiter: ',', maxRecordBytes });
  const out: RawRow[] = [];
  for (let i = startOffset; i < buf.length; i += chunk) out.push(...s.push(buf.subarray(i, i + chunk)));
  out.push(...s.end());
  return out;
}

describe('RowSplitter', () => {
  it('numbers rows from 1, skips empty lines and gives the byte offset of the next row', () => {
    // Prepare
    const buf = Buffer.from('h1,h2\r\na,é\r\n\r\n"x\r\ny",z\nlast,row');
    // Act
    const rows = splitAll(buf, 7, 3);
    // Assess
    expect(rows.map((r) => [r.row, r.offset, r.nextOffset, r.bytes.toString()])).toEqual([
      [1, 7, 13, 'a,é'],
      [2, 15, 24, '"x\r\ny",z'],
      [3, 24, 32, 'last,row'],
    ]);
  });

  it("agrees with Python's csv module on 300 random tricky files, whatever the chunk size", () => {
    // Prepare: the independent reader, once for all files.
    const texts = Array.from({ length: 300 }, (_, i) => trickyCsv(i + 1).text);
    const py =
      'import csv,sys,json,io\n' +
      'out=[]\n' +
      'for t in json.load(sys.stdin):\n' +
      '    rows=[r for r in csv.reader(io.StringIO(t.lstrip("\\ufeff"), newline="")) if r]\n' +
      '    out.append(rows[1:])\n' +
      'print(json.dumps(out))';
    const all = JSON.parse(
      execFileSync('python3', ['-c', py], { input: JSON.stringify(texts) }).toString(),
    ) as string[][][];
    for (let seed = 1; seed <= 300; seed++) {
      const buf = Buffer.from(texts[seed - 1]!);
      const { header, dataOffset } = describeCsv(buf);
      const expected = all[seed - 1]!;
      // Act
      const rows = splitAll(buf, dataOffset, 1 + (seed % 17));
      const decoded = rows.map((r) => decodeRow(r, header, ','));
      // Assess
      expect(
        decoded.map((d) => (d.ok ? d.fields : d.reason)),
        `seed ${seed}`,
      ).toEqual(expected);
      // After the last row only empty lines may remain.
      if (rows.length > 0) expect(buf.subarray(rows.at(-1)!.nextOffset).toString()).toMatch(/^[\r\n]*$/);
    }
  });

  it('marks an unterminated quote at EOF and an oversized record without buffering it', () => {
    // Prepare
    const big = `1,"${'x'.repeat(5000)}"\n`;
    const buf = Buffer.from(`a,b\n${big}2,ok\n3,"open\nforever`);
    // Act
    const rows = splitAll(buf, 4, 64, 1000);
    // Assess
    expect(rows.map((r) => [r.row, r.oversized, r.unterminated])).toEqual([
      [1, true, false],
      [2, false, false],
      [3, false, true],
    ]);
    expect(rows[1]?.offset).toBe(4 + Buffer.byteLength(big));
    expect(rows[0]?.bytes.length).toBeLessThanOrEqual(1024);
  });

  it('a closing quote as the very last byte of the file closes the field', () => {
    const rows = splitAll(Buffer.from('a,b\n1,"x"'), 4, 1);
    expect(decodeRow(rows[0]!, ['a', 'b'], ',')).toMatchObject({ ok: true, fields: ['1', 'x'] });
  });
});

/** A framed row 1 of these bytes (text or bytes), as the splitter gives it. */
const row = (s: string | Buffer): RawRow => {
  const bytes = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return {
    row: 1,
    offset: 0,
    nextOffset: bytes.length,
    bytes,
    hasQuote: bytes.includes(0x22),
    unterminated: false,
    oversized: false,
  };
};

describe('decodeRow', () => {
  it('rejects wrong field counts, invalid UTF-8 and malformed quotes', () => {
    expect(decodeRow(row('1,2,3'), ['a', 'b'], ',')).toMatchObject({
      ok: false,
      reason: 'WRONG_FIELD_COUNT',
    });
    expect(decodeRow(row(Buffer.from([0x31, 0x2c, 0xc3])), ['a', 'b'], ',')).toMatchObject({
      ok: false,
      reason: 'INVALID_UTF8',
    });
    expect(decodeRow(row('"a"x,b'), ['a', 'b'], ',')).toMatchObject({
      ok: false,
      reason: 'MALFORMED_QUOTES',
    });
    expect(decodeRow(row('"a ""q""",b'), ['a', 'b'], ',')).toMatchObject({
      ok: true,
      fields: ['a "q"', 'b'],
    });
  });
});

describe('RowSplitter record assembly', () => {
  it('copies each byte of a record spanning many chunks once (linear, not quadratic)', () => {
    // Prepare: one 3.9 MB record (a quoted field with newlines) fed in 16 KiB chunks, then a short row
    const big = `1,"${'x\n'.repeat(1_950_000)}"`;
    const buf = Buffer.from(`${big}\n2,y\n`);
    const s = new RowSplitter({ rowsBefore: 0, startOffset: 0, delimiter: ',', maxRecordBytes: 8 << 20 });
    const rows: RawRow[] = [];
    // Act
    for (let i = 0; i < buf.length; i += 16 * 1024) rows.push(...s.push(buf.subarray(i, i + 16 * 1024)));
    rows.push(...s.end());
    // Assess: the record is whole, and joining it copied its bytes once (quadratic: ~240x its size)
    expect(rows.map((r) => r.bytes.length)).toEqual([big.length, 3]);
    expect(rows[0]!.bytes.toString()).toBe(big);
    expect(s.bytesCopied).toBe(big.length);
  });

  it('keeps only the head of an oversized record and copies nothing more while skipping it', () => {
    // Prepare
    const buf = Buffer.from(`a,${'z'.repeat(100_000)}\r2,y\r`);
    const s = new RowSplitter({ rowsBefore: 0, startOffset: 0, delimiter: ',', maxRecordBytes: 10_000 });
    const rows: RawRow[] = [];
    // Act
    for (let i = 0; i < buf.length; i += 4096) rows.push(...s.push(buf.subarray(i, i + 4096)));
    rows.push(...s.end());
    // Assess: bare CR line ends; the big row is oversized with its first 1 KiB
    expect(rows.map((r) => [r.row, r.offset, r.nextOffset, r.oversized, r.bytes.length])).toEqual([
      [1, 0, 100_003, true, 1024],
      [2, 100_003, 100_007, false, 3],
    ]);
    expect(s.bytesCopied).toBeLessThanOrEqual(1024);
  });
});

describe('valueEncoder', () => {
  it('builds valid JSON with every column, in header order, whatever the names (__proto__, constructor, 0)', () => {
    // Prepare: fields with quotes, backslashes, control characters, non-ASCII and U+2028; headers
    // that need escaping, and headers a JS object would reorder or drop.
    const fields = ['plain', 'a "q" \\ b', 'tab\there\nnl\u0001\u001f', 'Zürich ✓ \u2028 😀', ''];
    const headers = [
      ['id', 'name', 'note', 'city', 'empty'],
      ['i"d', 'n\\ame', 'no\nte', 'cïty', ''],
      ['b', '2', 'a', '1', 'c'],
      ['x', 'y', 'constructor', '__proto__', 'toString'],
    ];
    for (const header of headers) {
      const decoded = { fields, text: fields.join(',') };
      // Act
      const value = valueEncoder('json', header)(decoded);
      // Assess: the same text as pieces stringified one by one, and JSON.parse sees every key as its own
      const expected = `{${header.map((h, i) => `${JSON.stringify(h)}:${JSON.stringify(fields[i])}`).join(',')}}`;
      expect(value).toBe(expected);
      expect(recordValue('json', header, decoded)).toBe(expected);
      const parsed = JSON.parse(value) as Record<string, string>;
      expect(Object.getOwnPropertyNames(parsed).sort()).toEqual([...header].sort());
      for (const [i, h] of header.entries())
        expect(Object.getOwnPropertyDescriptor(parsed, h)?.value).toBe(fields[i]);
      expect(valueEncoder('csv', header)(decoded)).toBe(decoded.text);
    }
  });
});

describe('rowBytesEncoder (the value straight from the row bytes)', () => {
  // Field pieces: plain, quoted, with what JSON escapes, non-ASCII, invalid UTF-8, delimiters in quotes.
  const pieces = (d: string): Buffer[] =>
    [
      'a',
      'id-7',
      '',
      ' x y ',
      '0.01',
      'Zürich',
      '✓😀',
      '\u2028',
      '"q"',
      `"a${d}b"`,
      '""',
      '"é"',
      '"x\ny"',
      '"he said ""hi"""',
      'a"b',
      '"x"y',
      'back\\slash',
      'tab\there',
      '\u0001',
      '"multi\r\nline"',
      '"a',
    ]
      .map((t) => Buffer.from(t))
      .concat([Buffer.from([0xff, 0xfe]), Buffer.from([0x22, 0xc3, 0x22])]);

  it('gives byte for byte the general path value, or null where the general path must decide', () => {
    let fast = 0;
    let total = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(',', ';', '\t', '|', ':'),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 7 }),
        (d, columns, picks) => {
          const header = Array.from({ length: columns }, (_, i) => (i === 1 ? 'n"a\\me' : `c${i}`));
          const all = pieces(d);
          // Mostly plain pieces, so rows with the header's field count are common.
          const chosen = picks.map((p) => all[p % 4 === 0 ? p % all.length : p % 8]!);
          const bytes = Buffer.concat(chosen.flatMap((b, i) => (i === 0 ? [b] : [Buffer.from(d), b])));
          const out = rowBytesEncoder('json', header, d)?.(bytes) ?? null;
          const csvOut = rowBytesEncoder('csv', header, d)?.(bytes) ?? null;
          const decoded = decodeRow(row(bytes), header, d);
          // The csv format takes the same rows, its value the record's own bytes.
          expect(csvOut === null).toBe(out === null);
          total++;
          if (out === null) return;
          fast++;
          // Assess: the general path accepts the row and its value has exactly these bytes
          expect(decoded.ok).toBe(true);
          if (!decoded.ok) return;
          expect(out.equals(Buffer.from(valueEncoder('json', header)(decoded)))).toBe(true);
          expect(csvOut?.equals(Buffer.from(valueEncoder('csv', header)(decoded)))).toBe(true);
          // and each field (a keyed job's key) as the general path decodes it
          const enc = rowBytesEncoder('json', header, d)!;
          enc(bytes);
          expect(header.map((_, i) => enc.field(bytes, i))).toEqual(decoded.fields);
        },
      ),
      { numRuns: 20_000 },
    );
    // The fast path is taken for a real share of the rows (else this test would prove nothing).
    expect(fast).toBeGreaterThan(total * 0.05);
  });

  it('takes plain and simply quoted rows, and leaves escapes, doubled quotes and bad rows to the general path', () => {
    const enc = rowBytesEncoder('json', ['id', 'name', 'note'], ',')!;
    expect(enc(Buffer.from('1,"Alice, B",x'))?.toString()).toBe('{"id":"1","name":"Alice, B","note":"x"}');
    expect(enc(Buffer.from('1,,'))?.toString()).toBe('{"id":"1","name":"","note":""}');
    expect(enc(Buffer.from('1,"",Zürich'))?.toString()).toBe('{"id":"1","name":"","note":"Zürich"}');
    for (const general of [
      '1,"a ""b""",x',
      '1,a"b,x',
      '1,a\\b,x',
      '1,a\tb,x',
      '1,"x"y,z',
      '1,2',
      '1,2,3,4',
      '1,"a,b',
    ])
      expect(enc(Buffer.from(general))).toBeNull();
    expect(enc(Buffer.from([0x31, 0x2c, 0xff, 0x2c, 0x33]))).toBeNull();
    expect(rowBytesEncoder('json', [], ',')).toBeNull();
    const csv = rowBytesEncoder('csv', ['id', 'name', 'note'], ',')!;
    const row = Buffer.from('1,"Alice, B",Zürich');
    expect(csv(row)).toBe(row);
    expect(csv(Buffer.from('1,2'))).toBeNull();
  });
});

describe('splitQuoted against csv-parse', () => {
  // csv-parse is the reference implementation of the field rules; the producer's hot path uses its own
  // splitter for speed (docs/producer.md), so every accepted record must split exactly as csv-parse does,
  // and every record csv-parse refuses must be refused.
  const pieces = [
    'a',
    '',
    ' ',
    'x y',
    '"q"',
    '"a,b"',
    '"he said ""hi"""',
    '"multi\nline"',
    '"é€"',
    '""',
    '"x"y',
  ];
  const record = (rand: () => number) =>
    Array.from(
      { length: 1 + Math.floor(rand() * 5) },
      () => pieces[Math.floor(rand() * pieces.length)]!,
    ).join(',');

  it('splits 5,000 random quoted records exactly as csv-parse does, and refuses what it refuses', () => {
    // Prepare
    let s = 42;
    const rand = () => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s / 2 ** 31;
    };
    let compared = 0;
    let refused = 0;
    for (let i = 0; i < 5000; i++) {
      const text = record(rand);
      if (!text.includes('"')) continue;
      // Act
      const ours = splitQuoted(text, ',');
      let reference: string[] | null;
      try {
        reference = (parseSync(text, { relax_column_count: true }) as string[][])[0] ?? [''];
      } catch {
        reference = null;
      }
      // Assess
      if (reference === null) {
        expect(typeof ours, `csv-parse refuses ${JSON.stringify(text)}`).toBe('string');
        refused++;
      } else {
        expect(ours, JSON.stringify(text)).toEqual(reference);
        compared++;
      }
    }
    expect(compared).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(50);
  });
});
