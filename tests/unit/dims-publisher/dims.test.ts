import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BusEntry, BusPort } from '../../../events/bus.ts';
import type { JobStatus } from '../../../events/catalog.ts';
import { jobIdFor } from '../../../events/ids.ts';
import {
  beyondTolerance,
  compareSnapshots,
  type DimsDeps,
  oldestUnprocessed,
  runOnce,
  summarizePrefix,
} from '../../../services/dims-publisher/core.ts';
import { parseDefinition } from '../../../services/dims-publisher/definition.ts';
import { InventoryDefinitionError } from '../../../services/dims-publisher/errors.ts';
import type {
  InventoryJobsPort,
  ObjectEntry,
  ObjectsPort,
  Snapshot,
  SnapshotsPort,
} from '../../../services/dims-publisher/ports.ts';
import { NO_LOG } from '../../../services/shared/logger.ts';
import { BufferedMetrics, MemorySink } from '../../../services/shared/metrics.ts';

const shipped = readFileSync(new URL('../../../inventory/metrics.yaml', import.meta.url), 'utf8');
const BUCKET = 'rowstream-unit-data';

describe('inventory definition', () => {
  it('the shipped inventory/metrics.yaml is valid and covers the topology prefixes', () => {
    const d = parseDefinition(shipped);
    expect(d.prefixes).toEqual(['inbound/', 'rejected/', 'processed/']);
    expect(d.jobs.statuses).toContain('RUNNING');
    expect(d.oldestUnprocessed?.prefix).toBe('inbound/');
  });

  it('rejects a bad definition, naming the field', () => {
    const bad = (patch: string) => () => parseDefinition(`${shipped}\n${patch}`);
    expect(() => parseDefinition('version: [')).toThrow(InventoryDefinitionError);
    expect(bad('tolerancePercent: -1')).toThrow(/tolerancePercent/);
    expect(bad('prefixes: [inbound]')).toThrow(/prefixes/);
    expect(bad('prefixes: [inbound/, inbound/]')).toThrow(/unique/);
    expect(bad('jobs: { statuses: [DONE] }')).toThrow(/statuses/);
    expect(bad('extra: 1')).toThrow(/extra/);
    expect(() => parseDefinition(shipped.replace('version: 1', 'version: 2'))).toThrow(/version/);
  });
});

describe('drift', () => {
  const prev: Snapshot = {
    snapshotId: 'p',
    takenAt: 'p',
    metrics: [
      { name: 'InventoryObjects', labels: { Prefix: 'inbound/' }, value: 100, unit: 'Count' },
      { name: 'InventoryObjects', labels: { Prefix: 'rejected/' }, value: 0, unit: 'Count' },
      { name: 'InventoryBytes', labels: { Prefix: 'inbound/' }, value: 1000, unit: 'Bytes' },
    ],
  };
  it('is the signed change in percent of the previous value; 0 -> n is 100%; new metrics have none', () => {
    const cur = compareSnapshots(
      [
        { name: 'InventoryObjects', labels: { Prefix: 'inbound/' }, value: 89, unit: 'Count' },
        { name: 'InventoryObjects', labels: { Prefix: 'rejected/' }, value: 3, unit: 'Count' },
        { name: 'InventoryBytes', labels: { Prefix: 'inbound/' }, value: 1100, unit: 'Bytes' },
        { name: 'InventoryObjects', labels: { Prefix: 'processed/' }, value: 5, unit: 'Count' },
      ],
      prev,
    );
    expect(cur.map((m) => [m.previous, m.driftPercent])).toEqual([
      [100, -11],
      [0, 100],
      [1000, 10],
      [null, null],
    ]);
    // Tolerance 10: exactly 10% is within, -11% and 0 -> 3 are beyond.
    expect(beyondTolerance(cur, 10).map((m) => m.labels.Prefix)).toEqual(['inbound/', 'rejected/']);
  });
  it('without a previous snapshot nothing drifts', () => {
    const cur = compareSnapshots(prev.metrics, null);
    expect(beyondTolerance(cur, 0)).toEqual([]);
  });
});

function entry(
  key: string,
  size: number,
  minutesAgo: number,
  now: Date,
  versionId: string | null = `v-${key}`,
): ObjectEntry {
  return {
    key,
    size,
    lastModified: new Date(now.getTime() - minutesAgo * 60_000),
    etag: `e-${key}`,
    versionId,
  };
}

class PagedObjects implements ObjectsPort {
  pagesServed = 0;
  constructor(
    readonly byPrefix: Record<string, ObjectEntry[][]>,
    readonly generated?: { prefix: string; pages: number; perPage: number; size: number },
  ) {}
  async *pages(prefix: string) {
    if (this.generated && prefix === this.generated.prefix) {
      // Generated lazily: the consumer never sees more than one page at a time.
      for (let p = 0; p < this.generated.pages; p++) {
        this.pagesServed++;
        yield Array.from({ length: this.generated.perPage }, (_, i) =>
          entry(`${prefix}${p}-${i}`, this.generated!.size, 1, new Date(0)),
        );
      }
      return;
    }
    for (const page of this.byPrefix[prefix] ?? []) yield page;
  }
  latestVersionPages(prefix: string) {
    return this.pages(prefix);
  }
}

class FakeJobs implements InventoryJobsPort {
  lookups = 0;
  constructor(
    readonly statusOf: Map<string, JobStatus>,
    readonly counts: Partial<Record<JobStatus, number>> = {},
    readonly rows: Partial<Record<JobStatus, number>> = {},
  ) {}
  async countByStatus(s: JobStatus) {
    return this.counts[s] ?? 0;
  }
  async rowsDeliveredSince(s: JobStatus) {
    return this.rows[s] ?? 0;
  }
  async statuses(ids: readonly string[]) {
    this.lookups += ids.length;
    return new Map(
      ids.flatMap((id) => (this.statusOf.has(id) ? [[id, this.statusOf.get(id)!] as const] : [])),
    );
  }
}

class MemorySnapshots implements SnapshotsPort {
  saved: Snapshot[] = [];
  last: Snapshot | null;
  private readonly initial: Snapshot | null;
  constructor(last: Snapshot | null = null) {
    this.last = last;
    this.initial = last;
  }
  async latest() {
    return this.last;
  }
  async get(id: string) {
    return [this.initial, ...this.saved].find((s) => s?.snapshotId === id) ?? null;
  }
  async save(s: Snapshot) {
    this.saved.push(s);
    this.last = s;
  }
}

class FakeBus implements BusPort {
  readonly entries: BusEntry[] = [];
  failNext = 0;
  async putEntries(entries: readonly BusEntry[]) {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('EventBridge is down');
    }
    this.entries.push(...entries);
    return entries.map(() => ({ eventId: 'x' }));
  }
}

describe('summarizePrefix', () => {
  it('aggregates a million objects page by page', async () => {
    const objects = new PagedObjects({}, { prefix: 'inbound/', pages: 1000, perPage: 1000, size: 3 });
    const r = await summarizePrefix(objects, 'inbound/');
    expect(r).toEqual({ count: 1_000_000, bytes: 3_000_000 });
    expect(objects.pagesServed).toBe(1000);
  });
});

describe('oldestUnprocessed', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  const idOf = (o: ObjectEntry) => jobIdFor(BUCKET, o.key, { versionId: o.versionId, etag: o.etag });

  it('is the oldest latest version without a finished job (none, PLANNED or RUNNING count as unprocessed)', async () => {
    const done = entry('inbound/done.csv', 1, 300, now);
    const failed = entry('inbound/failed.csv', 1, 240, now);
    const running = entry('inbound/running.csv', 1, 120, now);
    const none = entry('inbound/none.csv', 1, 60, now, null);
    const jobs = new FakeJobs(
      new Map<string, JobStatus>([
        [idOf(done), 'COMPLETED'],
        [idOf(failed), 'FAILED'],
        [idOf(running), 'RUNNING'],
      ]),
    );
    const objects = new PagedObjects({
      'inbound/': [
        [none, done],
        [running, failed],
      ],
    });
    const oldest = await oldestUnprocessed({ objects, jobs, bucket: BUCKET }, 'inbound/');
    expect(oldest?.key).toBe('inbound/running.csv');
  });

  it('skips lookups of objects newer than the best found so far', async () => {
    const a = entry('inbound/a.csv', 1, 500, now);
    const newer = Array.from({ length: 50 }, (_, i) => entry(`inbound/n${i}.csv`, 1, 10, now));
    const jobs = new FakeJobs(new Map());
    await oldestUnprocessed(
      { objects: new PagedObjects({ 'inbound/': [[a], newer] }), jobs, bucket: BUCKET },
      'inbound/',
    );
    expect(jobs.lookups).toBe(1);
  });
});

describe('runOnce', () => {
  const now = new Date('2026-11-25T12:00:00Z');

  function setup(previous: Snapshot | null) {
    const sink = new MemorySink();
    const objects = new PagedObjects({
      'inbound/': [[entry('inbound/a.csv', 100, 90, now), entry('inbound/b.csv', 50, 30, now)]],
      'rejected/': [[entry('rejected/a.rejects.csv', 7, 10, now)]],
    });
    const deps = {
      bucket: BUCKET,
      stage: 'unit',
      definition: parseDefinition(shipped),
      objects,
      jobs: new FakeJobs(
        new Map(),
        { RUNNING: 1, COMPLETED: 4 },
        { COMPLETED: 1000, COMPLETED_WITH_REJECTS: 250 },
      ),
      snapshots: new MemorySnapshots(previous),
      bus: new FakeBus(),
      metrics: new BufferedMetrics({ sink, defaultDimensions: { Service: 'dims-publisher', Stage: 'unit' } }),
      log: NO_LOG,
    } satisfies DimsDeps;
    return { deps, sink };
  }

  it('publishes counts, bytes, jobs, rows and oldest age as EMF with configured dimensions, stores the snapshot', async () => {
    // Prepare
    const { deps, sink } = setup(null);
    // Act
    const r = await runOnce(deps, now);
    // Assess
    const point = (name: string, dims: Record<string, string> = {}) =>
      sink.groups
        .filter((g) => Object.entries(dims).every(([k, v]) => g.dimensions[k] === v))
        .flatMap((g) => g.points.filter((p) => p.name === name).map((p) => p.value));
    expect(point('InventoryObjects', { Prefix: 'inbound/' })).toEqual([2]);
    expect(point('InventoryBytes', { Prefix: 'inbound/' })).toEqual([150]);
    expect(point('InventoryObjects', { Prefix: 'rejected/' })).toEqual([1]);
    expect(point('InventoryObjects', { Prefix: 'processed/' })).toEqual([0]);
    expect(point('InventoryJobs', { Status: 'COMPLETED' })).toEqual([4]);
    expect(point('InventoryRowsDelivered24h')).toEqual([1250]);
    expect(point('InventoryOldestUnprocessedSeconds')).toEqual([90 * 60]);
    expect(point('InventoryDriftPercent')).toEqual([]);
    // the key is a property, never a dimension
    const oldest = sink.groups.find((g) =>
      g.points.some((p) => p.name === 'InventoryOldestUnprocessedSeconds'),
    );
    expect(Object.keys(oldest?.dimensions ?? {})).toEqual(['Service', 'Stage']);
    expect(oldest?.properties).toEqual({ oldestKey: 'inbound/a.csv' });
    expect(deps.snapshots.saved).toHaveLength(1);
    expect(r.previousSnapshotId).toBeNull();
    const published = JSON.parse(deps.bus.entries[0]!.detail);
    expect(published).toMatchObject({ snapshotId: now.toISOString(), tolerancePercent: 10, drift: [] });
  });

  it('reports drift against the previous snapshot beyond the tolerance in InventoryPublished.v1', async () => {
    // Prepare: the previous snapshot had 1 inbound object of 150 bytes
    const { deps, sink } = setup({
      snapshotId: 'before',
      takenAt: 'before',
      metrics: [
        { name: 'InventoryObjects', labels: { Prefix: 'inbound/' }, value: 1, unit: 'Count' },
        { name: 'InventoryBytes', labels: { Prefix: 'inbound/' }, value: 150, unit: 'Bytes' },
      ],
    });
    // Act
    const r = await runOnce(deps, now);
    // Assess
    expect(r.drift.map((m) => [m.name, m.labels, m.previous, m.value, m.driftPercent])).toEqual([
      ['InventoryObjects', { Prefix: 'inbound/' }, 1, 2, 100],
    ]);
    const published = JSON.parse(deps.bus.entries[0]!.detail);
    expect(published.drift).toHaveLength(1);
    expect(sink.values('InventoryDriftPercent')).toEqual([100]);
  });

  const before: Snapshot = {
    snapshotId: 'before',
    takenAt: 'before',
    metrics: [{ name: 'InventoryObjects', labels: { Prefix: 'inbound/' }, value: 1, unit: 'Count' }],
  };

  it('a run whose announcement fails is retried against the same previous snapshot', async () => {
    // Prepare: EventBridge fails the first InventoryPublished.v1
    const { deps } = setup(before);
    deps.bus.failNext = 1;
    // Act
    await expect(runOnce(deps, now)).rejects.toThrow('EventBridge is down');
    const retry = await runOnce(deps, now);
    // Assess: nothing stored by the failed run; the retry reports the drift from 1 to 2 objects
    expect(deps.snapshots.saved).toHaveLength(1);
    expect(retry.previousSnapshotId).toBe('before');
    expect(retry.drift.map((m) => [m.name, m.previous, m.value])).toEqual([['InventoryObjects', 1, 2]]);
    expect(JSON.parse(deps.bus.entries[0]!.detail).drift).toHaveLength(1);
  });

  it('a retry after the snapshot was stored compares with the snapshot that run compared with', async () => {
    const { deps } = setup(before);
    await runOnce(deps, now);
    const retry = await runOnce(deps, now);
    expect(retry.previousSnapshotId).toBe('before');
    expect(retry.drift.map((m) => [m.name, m.previous, m.value])).toEqual([['InventoryObjects', 1, 2]]);
    // Same firing time, same event id: consumers de-duplicate the second announcement.
    const ids = deps.bus.entries.map((e) => JSON.parse(e.detail).eventId);
    expect(new Set(ids).size).toBe(1);
  });
});
