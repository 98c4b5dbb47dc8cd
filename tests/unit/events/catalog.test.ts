import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALARM_STATE_CHANGE } from '../../../events/aws.ts';
import {
  type BusEntry,
  type BusEntryResult,
  type BusPort,
  EventParseError,
  EventValidationError,
  event,
  PublishError,
  parse,
  publish,
} from '../../../events/bus.ts';
import { CATALOG, DETAIL_TYPES, type DetailType } from '../../../events/catalog.ts';
import { eventIdFor, jobIdFor } from '../../../events/ids.ts';
import { breakingChanges, jsonSchemaOf, schemaFileName } from '../../../events/schemas.ts';

const root = join(import.meta.dirname, '../../../events');
const readJson = async (p: string) => JSON.parse(await readFile(p, 'utf8'));
const sample = (t: DetailType) => readJson(join(root, 'samples', `${t}.json`));
const envelope = (t: DetailType, detail: unknown, extra: Record<string, unknown> = {}) => ({
  version: '0',
  id: 'evt-1',
  'detail-type': t,
  source: CATALOG[t].source,
  account: '123456789012',
  time: '2026-11-25T12:00:00Z',
  region: 'us-east-1',
  resources: [],
  detail,
  ...extra,
});

describe('event catalog contract', () => {
  it.each(DETAIL_TYPES)('%s: the sample matches the schema', async (t) => {
    // Prepare / Act
    const result = CATALOG[t].schema.safeParse(await sample(t));
    // Assess
    expect(result.error?.issues ?? []).toEqual([]);
  });

  it.each(DETAIL_TYPES)(
    '%s: the published JSON Schema is the current one (run npm run events:schemas)',
    async (t) => {
      const published = await readJson(join(root, 'schemas', schemaFileName(t)));
      expect(breakingChanges(published, jsonSchemaOf(t) as never)).toEqual([]);
      expect(jsonSchemaOf(t)).toEqual(published);
    },
  );

  it('JobStarted.v1 with a large plan: the sample carries planRef instead of header and matches the schema', async () => {
    const referenced = await readJson(join(root, 'samples', 'JobStarted.v1.planRef.json'));
    expect(CATALOG['JobStarted.v1'].schema.safeParse(referenced).error?.issues ?? []).toEqual([]);
    expect(referenced.header).toBeUndefined();
    expect(referenced.planRef.key).toBe(`plans/${referenced.jobId}.json`);
  });

  it('detects a removed field, a new required field, a changed type and a removed enum value', () => {
    const published = {
      type: 'object',
      properties: { a: { type: 'string' }, b: { type: 'number' }, c: { type: 'string', enum: ['x', 'y'] } },
      required: ['a'],
    };
    const current = {
      type: 'object',
      properties: { a: { type: 'number' }, c: { type: 'string', enum: ['x'] }, d: { type: 'string' } },
      required: ['a', 'd'],
    };
    expect(breakingChanges(published, current)).toEqual([
      '$.a: type changed from "string" to "number"',
      '$.b: field removed',
      '$.c: enum value "y" removed',
      '$.d: new required field (add fields only as optional)',
    ]);
  });

  it('detail-types carry their major version and sources are rowstream.<service>', () => {
    for (const t of DETAIL_TYPES) {
      expect(t).toMatch(/^[A-Z][A-Za-z]+\.v\d+$/);
      expect(CATALOG[t].source).toMatch(/^rowstream\.[a-z-]+$/);
    }
  });
});

describe('parse', () => {
  it('parses an SQS body delivered by a rule into the discriminated union', async () => {
    const detail = await sample('JobStarted.v1');
    const parsed = parse(JSON.stringify(envelope('JobStarted.v1', detail)));
    expect(parsed.kind).toBe('rowstream');
    if (parsed.kind === 'rowstream' && parsed.detailType === 'JobStarted.v1') {
      expect(parsed.detail.totalRows).toBe(1_000_000);
      expect(parsed.detail.options.keyColumn).toBe('customer');
    } else throw new Error('wrong variant');
    expect(parsed.replayName).toBeNull();
  });

  it('keeps the replay name of a replayed event', async () => {
    const parsed = parse(
      envelope('JobCompleted.v1', await sample('JobCompleted.v1'), { 'replay-name': 'r-1' }),
    );
    expect(parsed.replayName).toBe('r-1');
  });

  it('parses an AWS CloudWatch alarm state change', async () => {
    const raw = await readJson(join(root, 'samples', 'aws.CloudWatchAlarmStateChange.json'));
    const parsed = parse(raw);
    expect(parsed.kind).toBe('aws.alarm');
    if (parsed.kind !== 'aws.alarm') throw new Error('wrong variant');
    expect(parsed.detailType).toBe(ALARM_STATE_CHANGE.detailType);
    expect(parsed.detail.state.value).toBe('ALARM');
    expect(parsed.detail.previousState?.value).toBe('OK');
  });

  it('rejects unknown types, wrong sources, invalid details and non-JSON with the reason', async () => {
    expect(() => parse('{not json')).toThrow(EventParseError);
    expect(() => parse({ ...envelope('JobStarted.v1', {}), 'detail-type': 'Nope.v1' })).toThrow(
      /unknown detail-type Nope\.v1/,
    );
    const started = await sample('JobStarted.v1');
    expect(() => parse({ ...envelope('JobStarted.v1', started), source: 'evil' })).toThrow(
      /must come from rowstream\.planner/,
    );
    expect(() => parse(envelope('JobStarted.v1', { eventId: 'x' }))).toThrow(
      /JobStarted\.v1 detail is invalid/,
    );
  });
});

class FakeBus implements BusPort {
  calls: BusEntry[][] = [];
  constructor(private readonly failures: (call: number, index: number) => string | null = () => null) {}
  async putEntries(entries: readonly BusEntry[]): Promise<readonly BusEntryResult[]> {
    const call = this.calls.length;
    this.calls.push([...entries]);
    return entries.map((_, i) => {
      const code = this.failures(call, i);
      return code ? { errorCode: code, errorMessage: 'slow down' } : { eventId: `e${call}-${i}` };
    });
  }
}

describe('publish', () => {
  const progress = async (n: number) => ({ ...(await sample('JobProgress.v1')), eventId: `p-${n}` });
  const noSleep = async () => {};

  it('validates before sending and names the fields', () => {
    expect(() => event('JobProgress.v1', { eventId: 'x' } as never)).toThrow(EventValidationError);
  });

  it('batches 10 entries per call with source and detail-type from the catalog', async () => {
    const bus = new FakeBus();
    const events = await Promise.all(Array.from({ length: 23 }, (_, i) => progress(i)));
    await publish(
      bus,
      events.map((d) => event('JobProgress.v1', d)),
      { sleep: noSleep },
    );
    expect(bus.calls.map((c) => c.length)).toEqual([10, 10, 3]);
    expect(bus.calls[0]?.[0]).toMatchObject({ source: 'rowstream.producer', detailType: 'JobProgress.v1' });
    expect(JSON.parse(bus.calls[2]?.[2]?.detail ?? '{}').eventId).toBe('p-22');
  });

  it('retries only the entries that failed', async () => {
    const bus = new FakeBus((call, i) => (call === 0 && i === 1 ? 'ThrottlingException' : null));
    await publish(
      bus,
      [event('JobProgress.v1', await progress(0)), event('JobProgress.v1', await progress(1))],
      {
        sleep: noSleep,
      },
    );
    expect(bus.calls.map((c) => c.map((e) => JSON.parse(e.detail).eventId))).toEqual([
      ['p-0', 'p-1'],
      ['p-1'],
    ]);
  });

  it('throws a PublishError naming the entry when retries run out', async () => {
    const bus = new FakeBus((_, i) => (i === 0 ? 'InternalFailure' : null));
    const err = await publish(bus, [event('JobProgress.v1', await progress(7))], {
      sleep: noSleep,
      maxAttempts: 3,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PublishError);
    expect((err as PublishError).eventId).toBe('p-7');
    expect((err as Error).message).toContain('InternalFailure');
    expect(bus.calls).toHaveLength(3);
  });
});

describe('ids', () => {
  it('derives the same job id for the same object version and another for a new version', () => {
    const a = jobIdFor('b', 'inbound/x.csv', { versionId: 'v1', etag: 'e1' });
    expect(jobIdFor('b', 'inbound/x.csv', { versionId: 'v1', etag: 'e1' })).toBe(a);
    expect(jobIdFor('b', 'inbound/x.csv', { versionId: 'v2', etag: 'e1' })).not.toBe(a);
    expect(jobIdFor('b', 'inbound/x.csv', { versionId: null, etag: 'e1' })).not.toBe(
      jobIdFor('b', 'inbound/x.csv', { versionId: null, etag: 'e2' }),
    );
    expect(a).toMatch(/^j-[0-9a-f]{24}$/);
  });

  it('gives stable event ids', () => {
    expect(eventIdFor('JobStarted', 'j-1')).toBe(eventIdFor('JobStarted', 'j-1'));
    expect(eventIdFor('JobStarted', 'j-1')).not.toBe(eventIdFor('JobStarted', 'j-2'));
  });
});
