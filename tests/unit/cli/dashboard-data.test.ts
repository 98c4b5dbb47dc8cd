import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EmfRecordTail, MetricsStore, parseEmfLine, percentile } from '../../../cli/dashboard/data.ts';
import { liveJob } from '../../../cli/dashboard/server.ts';

function emf(t: number, jobId: string | null, metrics: Record<string, number | number[]>) {
  return JSON.stringify({
    _aws: {
      Timestamp: t,
      CloudWatchMetrics: [
        {
          Namespace: 'Rowstream',
          Dimensions: [jobId ? ['Service', 'Stage', 'JobId'] : ['Service', 'Stage']],
          Metrics: Object.keys(metrics).map((Name) => ({ Name, Unit: 'None' })),
        },
      ],
    },
    Service: 'producer',
    Stage: 'local',
    ...(jobId ? { JobId: jobId } : {}),
    key: 'inbound/not-a-metric.csv',
    ...metrics,
  });
}

describe('EMF parsing', () => {
  it('reads the metrics named in the directive, single values and arrays', () => {
    const r = parseEmfLine(emf(5, 'j-1', { RowsPerSecond: 100, KafkaLatencyMs: [3, 4] }));
    expect(r).toEqual({
      timestamp: 5,
      service: 'producer',
      jobId: 'j-1',
      metrics: { RowsPerSecond: [100], KafkaLatencyMs: [3, 4] },
    });
  });
  it('ignores log lines and half-written lines', () => {
    expect(parseEmfLine('{"level":"INFO"}')).toBeNull();
    expect(parseEmfLine('{"_aws":{"Timest')).toBeNull();
    expect(parseEmfLine('plain text')).toBeNull();
  });
  it('computes nearest-rank percentiles', () => {
    const v = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(v, 50)).toBe(50);
    expect(percentile(v, 99)).toBe(99);
    expect(percentile([], 50)).toBeNull();
  });
});

describe('EmfRecordTail', () => {
  it('reads only what was appended, across polls, keeping a partial last line', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'rowstream-emf-'));
    const file = join(dir, 'producer.emf.jsonl');
    const tail = new EmfRecordTail(dir);
    const line1 = emf(1, 'j-1', { RowsPerSecond: 10 });
    const line2 = emf(2, 'j-1', { RowsPerSecond: 20 });
    writeFileSync(file, `${line1}\n${line2.slice(0, 30)}`);
    // Act / Assess
    expect(tail.poll().map((r) => r.timestamp)).toEqual([1]);
    appendFileSync(file, `${line2.slice(30)}\n`);
    expect(tail.poll().map((r) => r.timestamp)).toEqual([2]);
    expect(tail.poll()).toEqual([]);
  });
  it('starts over when a file is replaced by a shorter one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rowstream-emf-'));
    const file = join(dir, 'producer.emf.jsonl');
    const tail = new EmfRecordTail(dir);
    writeFileSync(file, `${emf(1, 'j', { RowsPerSecond: 1 })}\n${emf(2, 'j', { RowsPerSecond: 1 })}\n`);
    tail.poll();
    writeFileSync(file, `${emf(3, 'j', { RowsPerSecond: 1 })}\n`);
    expect(tail.poll().map((r) => r.timestamp)).toEqual([3]);
  });
});

describe('MetricsStore', () => {
  it('keeps throughput per job, latency percentiles, totals and cost', () => {
    const store = new MetricsStore();
    store.add(
      [
        emf(1000, 'j-1', { RowsPerSecond: 100, ProgressPercent: 10, KafkaLatencyMs: [1, 2, 3, 100] }),
        emf(2000, 'j-1', { RowsPerSecond: 200, ProgressPercent: 20, Errors: 1, RowsRejected: 2 }),
        emf(2000, 'j-2', { EstimatedCostUsd: 0.25 }),
        emf(3000, null, { MonthToDateCostUsd: 12, Errors: 2 }),
      ].map((l) => parseEmfLine(l)!),
    );
    const s = store.snapshot(4000);
    expect(s.throughput['j-1']).toEqual([
      [1000, 100],
      [2000, 200],
    ]);
    expect(s.progress['j-1']?.percent).toBe(20);
    expect(s.latency.p50).toBe(2);
    expect(s.latency.p99).toBe(100);
    expect(s.totals.errors).toBe(3);
    expect(s.totals.rowsRejected).toBe(2);
    expect(s.cost.perJobUsd).toEqual({ 'j-2': 0.25 });
    expect(s.cost.monthToDateUsd).toBe(12);
  });
});

describe('liveJob', () => {
  const view = {
    jobId: 'j-1',
    status: 'RUNNING',
    sourceUri: 's3://b/inbound/x.csv',
    topic: 't',
    createdAt: '',
    updatedAt: '',
    rowsDone: 100,
    rowsDelivered: 100,
    rowsRejected: 0,
    totalRows: 1000,
    percent: 10,
    rowsPerSecond: null,
    etaSeconds: null,
    durationSeconds: 1,
    costUsd: null,
    costSource: 'local estimate',
    rejectsUri: null,
    reason: null,
  } as const;
  it('brings a running job forward with fresher producer metrics, and says so', () => {
    const store = new MetricsStore();
    store.add([parseEmfLine(emf(1, 'j-1', { ProgressPercent: 25, RowsPerSecond: 500, EtaSeconds: 1.5 }))!]);
    const j = liveJob(view, store.snapshot(2));
    expect(j).toMatchObject({
      rowsDone: 250,
      percent: 25,
      rowsPerSecond: 500,
      etaSeconds: 1.5,
      progressSource: 'metrics',
    });
  });
  it('keeps the record when it is further along or the job is not running', () => {
    const store = new MetricsStore();
    store.add([parseEmfLine(emf(1, 'j-1', { ProgressPercent: 5 }))!]);
    expect(liveJob(view, store.snapshot(2)).progressSource).toBe('job record');
    expect(liveJob({ ...view, status: 'COMPLETED' }, store.snapshot(2)).rowsDone).toBe(100);
  });
});
