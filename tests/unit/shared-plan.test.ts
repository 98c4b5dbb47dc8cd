import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { JobStartedV1 } from '../../events/catalog.ts';
import {
  decodePlan,
  encodePlan,
  INLINE_PLAN_BYTES,
  inlinePlanBytes,
  PlanError,
  planKeyFor,
  planNeedsRef,
} from '../../services/shared/plan.ts';

/** A header whose JSON is exactly `bytes` long: one column `"xxx…"` (2 quotes + 2 brackets). */
const headerOfJsonBytes = (bytes: number) => ['x'.repeat(bytes - 4)];

describe('the size decision (inline or referenced)', () => {
  it('keeps a plan inline up to INLINE_PLAN_BYTES and references one a byte above', () => {
    expect(inlinePlanBytes(headerOfJsonBytes(INLINE_PLAN_BYTES), null)).toBe(INLINE_PLAN_BYTES);
    expect(planNeedsRef(headerOfJsonBytes(INLINE_PLAN_BYTES), null)).toBe(false);
    expect(planNeedsRef(headerOfJsonBytes(INLINE_PLAN_BYTES + 1), null)).toBe(true);
  });

  it('counts the schema definition with the header (both travel in the record)', () => {
    const header = ['id', 'name']; // 13 bytes as JSON
    const schema = (n: number) =>
      ({
        source: 'inferred',
        registry: null,
        schemaName: null,
        version: null,
        versionId: null,
        definition: 'd'.repeat(n),
      }) as const;
    expect(inlinePlanBytes(header, schema(100))).toBe(113);
    expect(planNeedsRef(header, schema(INLINE_PLAN_BYTES - 13))).toBe(false);
    expect(planNeedsRef(header, schema(INLINE_PLAN_BYTES - 12))).toBe(true);
    // A schema without its definition (a registry reference) adds nothing.
    expect(inlinePlanBytes(header, { ...schema(0), definition: undefined })).toBe(13);
  });
});

describe('plan objects', () => {
  const header = Array.from({ length: 3000 }, (_, i) => `column_${i}`);

  it('are deterministic: the same job and plan give the same bytes and reference', () => {
    const a = encodePlan('j-1', header, '{"type":"record"}');
    const b = encodePlan('j-1', [...header], '{"type":"record"}');
    expect(a.body.equals(b.body)).toBe(true);
    expect(a.ref).toEqual(b.ref);
    expect(a.ref).toEqual({
      key: planKeyFor('j-1'),
      sha256: createHash('sha256').update(a.body).digest('hex'),
      bytes: a.body.length,
      columns: 3000,
    });
    expect(a.ref.key).toBe('plans/j-1.json');
  });

  it('decode to the header and schema definition they were made from', () => {
    const { body, ref } = encodePlan('j-1', header, '{"type":"record"}');
    expect(decodePlan(body, ref, 'b', 'j-1')).toEqual({
      version: 1,
      jobId: 'j-1',
      header,
      schemaDefinition: '{"type":"record"}',
    });
  });

  it('refuse a changed object, naming it and saying why', () => {
    const { body, ref } = encodePlan('j-1', header);
    const tampered = Buffer.from(body);
    tampered[20] = tampered[20] === 0x61 ? 0x62 : 0x61;
    const err = (() => {
      try {
        decodePlan(tampered, ref, 'bucket-1', 'j-1');
      } catch (e) {
        return e as PlanError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(PlanError);
    expect(err.reason).toBe('PLAN_MISMATCH');
    expect(err.message).toContain('s3://bucket-1/plans/j-1.json');
    expect(err.message).toContain(`expected ${ref.bytes} bytes, ${ref.sha256}`);
    // Truncated: the size differs too.
    expect(() => decodePlan(body.subarray(0, 100), ref, 'b', 'j-1')).toThrow(
      /is not the one the job refers to/,
    );
  });

  it("refuse another job's plan even when its digest is the one given", () => {
    const other = encodePlan('j-2', header);
    const asIfMine = { ...other.ref, key: planKeyFor('j-1') };
    expect(() => decodePlan(other.body, asIfMine, 'b', 'j-1')).toThrow(/belongs to job j-2/);
  });

  it('a reference is what JobStarted.v1 carries instead of the header (exactly one of the two)', () => {
    const { ref } = encodePlan('j-1', header);
    const base = {
      eventId: 'e',
      occurredAt: '2026-11-25T12:00:00.000Z',
      jobId: 'j-1',
      bucket: 'b',
      key: 'inbound/a.csv',
      etag: 'e1',
      versionId: null,
      sourceUri: 's3://b/inbound/a.csv',
      size: 10,
      totalRows: 1,
      dataOffset: 5,
      topic: 't',
      options: { format: 'json', keyColumn: null, delimiter: ',', failOnBadRow: false },
    };
    expect(JobStartedV1.safeParse({ ...base, planRef: ref }).success).toBe(true);
    expect(JobStartedV1.safeParse({ ...base, header: ['a'] }).success).toBe(true);
    expect(JobStartedV1.safeParse({ ...base }).error?.issues[0]?.message).toBe(
      'exactly one of header and planRef',
    );
    expect(JobStartedV1.safeParse({ ...base, header: ['a'], planRef: ref }).success).toBe(false);
  });
});
