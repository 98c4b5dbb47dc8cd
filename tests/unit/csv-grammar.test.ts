/**
 * One CSV grammar for planner and producer, shown by properties over generated files: the planner's
 * count (SIMD and JS, whole and over ranges), its header and the producer's rows agree with each other
 * and with independent parsers (csv-parse here; Python's csv module here on byte soup, and through the
 * whole local pipeline in tests/integration/grammar.test.ts).
 */
import { execFileSync } from 'node:child_process';
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countRegion, type RangeCount, RangeScanner } from '../../services/planner/count.ts';
import { readHeader } from '../../services/planner/header.ts';
import { countRecords, SUPPORTED_DELIMITERS } from '../../services/shared/csv.ts';
import { decodeRow, RowSplitter } from '../../services/shared/rows.ts';

const enc = (s: string) => Buffer.from(s, 'utf8');

// ---- generators --------------------------------------------------------------------------------

const EOL = fc.constantFrom('\n', '\r\n', '\r');
const PLAIN_CHARS = fc.constantFrom(
  'a',
  'b',
  'Z',
  '0',
  '7',
  ' ',
  '-',
  'é',
  'ß',
  '中',
  '😀',
  '\u2028',
  '.',
  "'",
);

/** A field as written in the file, never containing `delim` unquoted. */
function field(delim: string) {
  const plain = fc.array(PLAIN_CHARS, { minLength: 0, maxLength: 6 }).map((cs) => cs.join(''));
  const quotedContent = fc
    .array(fc.oneof(PLAIN_CHARS, fc.constantFrom(delim, '"', '\n', '\r\n', '\r', ',', ';')), { maxLength: 8 })
    .map((cs) => cs.join(''));
  const quoted = quotedContent.map((c) => `"${c.replaceAll('"', '""')}"`);
  // A literal quote inside an unquoted field: `a"b`, `x""`, `7"` (never at the field start).
  const literal = fc
    .tuple(
      fc.array(PLAIN_CHARS, { minLength: 1, maxLength: 3 }),
      fc.array(fc.oneof(PLAIN_CHARS, fc.constant('"')), { minLength: 0, maxLength: 4 }),
    )
    .map(([a, b]) => `${a.join('')}"${b.join('')}`)
    .filter((s) => !/^\s/.test(s));
  return fc.oneof(
    { weight: 4, arbitrary: plain },
    { weight: 3, arbitrary: quoted },
    { weight: 1, arbitrary: literal },
  );
}

interface GenFile {
  readonly text: string;
  readonly delimiter: string;
  readonly columns: number;
}

/** A CSV file: optional BOM, blank lines, a header, rows (some ragged), mixed line endings. */
const csvFile: fc.Arbitrary<GenFile> = fc.constantFrom(...SUPPORTED_DELIMITERS).chain((delimiter) =>
  fc.integer({ min: 1, max: 4 }).chain((columns) =>
    fc
      .record({
        bom: fc.boolean(),
        leadingBlank: fc.array(EOL, { maxLength: 2 }),
        headerEol: EOL,
        rows: fc.array(
          fc.oneof(
            { weight: 1, arbitrary: EOL.map((e) => ({ text: '', eol: e })) },
            {
              weight: 8,
              arbitrary: fc
                .tuple(
                  fc.array(field(delimiter), {
                    minLength: 1,
                    maxLength: columns + 1,
                  }),
                  fc.boolean(),
                  EOL,
                )
                .map(([fs, exact, eol]) => {
                  const fields = exact ? [...fs, ...Array(columns).fill('x')].slice(0, columns) : fs;
                  return { text: fields.join(delimiter), eol };
                }),
            },
          ),
          { maxLength: 12 },
        ),
        finalEol: fc.boolean(),
      })
      .map(({ bom, leadingBlank, headerEol, rows, finalEol }) => {
        const header = Array.from({ length: columns }, (_, i) => `h${i}`).join(delimiter);
        let text = (bom ? '\ufeff' : '') + leadingBlank.join('') + header + headerEol;
        rows.forEach((r, i) => {
          const last = i === rows.length - 1;
          // A row whose text is empty is an empty line; it needs its line ending to exist at all.
          text += r.text + (!last || finalEol || r.text === '' ? r.eol : '');
        });
        return { text, delimiter, columns };
      }),
  ),
);

// ---- the pipeline under test -------------------------------------------------------------------

function scanChunks(
  bytes: Uint8Array,
  lookBack: Uint8Array,
  chunk: number,
  simd: boolean,
  delimiter: string,
) {
  const s = new RangeScanner(lookBack, { simd, delimiter });
  for (let o = 0; o < bytes.length; o += chunk) s.push(bytes.subarray(o, o + chunk));
  return s.result();
}

async function plannerCount(buf: Buffer, delimiter: string, partSize: number, checkNames = true) {
  const h = readHeader(buf, buf.length, delimiter, { checkNames });
  const read = async function* (start: number, end: number) {
    // Odd chunk sizes: every boundary case of the look-back and the kernel's blocks.
    for (let o = start; o < end; o += 7 + (o % 61)) yield buf.subarray(o, Math.min(end, o + 7 + (o % 61)));
  };
  const rows = await countRegion(
    read,
    { dataOffset: h.dataOffset, size: buf.length },
    {
      partSize,
      concurrency: 3,
      delimiter,
    },
  );
  return { ...h, rows };
}

function producerRows(buf: Buffer, dataOffset: number, header: string[], delimiter: string, chunk: number) {
  const s = new RowSplitter({ rowsBefore: 0, startOffset: dataOffset, delimiter, maxRecordBytes: 1 << 20 });
  const raws = [];
  for (let o = dataOffset; o < buf.length; o += chunk) raws.push(...s.push(buf.subarray(o, o + chunk)));
  raws.push(...s.end());
  return raws.map((r) => decodeRow(r, header, delimiter));
}

/** csv-parse set to the documented grammar (docs/planner.md, "Rows"). */
function reference(text: string, delimiter: string): string[][] {
  return parse(text, {
    delimiter,
    bom: true,
    relax_quotes: true,
    relax_column_count: true,
    skip_empty_lines: true,
    record_delimiter: ['\r\n', '\n', '\r'],
  }) as string[][];
}

describe('one CSV grammar (property tests)', () => {
  it('planner count, planner header and producer rows equal csv-parse on generated files', async () => {
    await fc.assert(
      fc.asyncProperty(
        csvFile,
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 200 }),
        async (f, chunk, partSize) => {
          const buf = enc(f.text);
          const expected = reference(f.text, f.delimiter);
          const planned = await plannerCount(buf, f.delimiter, partSize);
          expect(planned.header).toEqual(expected[0]);
          const data = expected.slice(1);
          expect(planned.rows).toBe(data.length);
          const rows = producerRows(buf, planned.dataOffset, planned.header, f.delimiter, chunk);
          // totalRows == delivered + rejected, and every row decodes as the reference reads it
          expect(rows.length).toBe(planned.rows);
          rows.forEach((r, i) => {
            const want = data[i]!;
            if (want.length === f.columns) expect(r).toMatchObject({ ok: true, fields: want });
            else expect(r).toMatchObject({ ok: false, reason: 'WRONG_FIELD_COUNT' });
          });
        },
      ),
      { numRuns: 600 },
    );
  });

  it('the SIMD kernel and the JS loop give the same counts, flags and parity', () => {
    fc.assert(
      fc.property(csvFile, fc.integer({ min: 1, max: 300 }), (f, chunk) => {
        const buf = enc(f.text.repeat(1 + (80 / (f.text.length + 1)) * 3));
        const look = Uint8Array.of(0x0a);
        const a: RangeCount = scanChunks(buf, look, chunk, true, f.delimiter);
        const b: RangeCount = scanChunks(buf, look, chunk, false, f.delimiter);
        expect(a).toEqual(b);
      }),
      { numRuns: 300 },
    );
  });

  it("byte soup: planner count = producer rows = Python's csv rows, for every delimiter", async () => {
    // Prepare: files over an alphabet of the bytes that matter, in one Python run.
    const soup = fc.tuple(
      fc.constantFrom(...SUPPORTED_DELIMITERS),
      fc
        .array(fc.constantFrom('"', '"', '\n', '\r', '\r\n', 'a', 'é', ',', ';', '\t', '|', ':', ' '), {
          maxLength: 60,
        })
        .map((cs) => `h${cs.join('')}`),
    );
    const samples = fc.sample(soup, { numRuns: 800, seed: 1402 });
    const py =
      'import csv,sys,json,io\n' +
      'out=[]\n' +
      'for d,t in json.load(sys.stdin):\n' +
      '    out.append(sum(1 for r in csv.reader(io.StringIO(t, newline=""), delimiter=d) if r))\n' +
      'print(json.dumps(out))';
    const pyCounts = JSON.parse(
      execFileSync('python3', ['-c', py], { input: JSON.stringify(samples) }).toString(),
    ) as number[];
    for (const [i, [delimiter, text]] of samples.entries()) {
      const buf = enc(text);
      // Act
      const all = countRecords([buf], delimiter).rows;
      let header: ReturnType<typeof readHeader> | null = null;
      try {
        header = readHeader(buf, buf.length, delimiter, { checkNames: false });
      } catch {
        // a header the planner rejects (unterminated quote...): no job, nothing to compare
      }
      // Assess
      expect(all, `sample ${i}: ${JSON.stringify(text)}`).toBe(pyCounts[i]);
      if (!header) continue;
      const planned = await plannerCount(buf, delimiter, 1 + (i % 23), false);
      const rows = producerRows(buf, header.dataOffset, header.header, delimiter, 1 + (i % 5));
      expect(planned.rows, `sample ${i}: ${JSON.stringify([delimiter, text])}`).toBe(rows.length);
      expect(rows.length + 1, `sample ${i}`).toBe(all);
    }
  });
});
