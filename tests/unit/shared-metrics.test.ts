import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { emfSink } from '../../services/shared/emf.ts';
import {
  BufferedMetrics,
  MemorySink,
  type MetricGroup,
  type MetricsSink,
} from '../../services/shared/metrics.ts';

const defaults = { Service: 'producer', Stage: 'test' };

describe('BufferedMetrics', () => {
  it('groups points by dimensions and keeps every value of a metric (for p50/p99)', async () => {
    const sink = new MemorySink();
    const m = new BufferedMetrics({ sink, defaultDimensions: defaults });
    m.record('KafkaLatencyMs', 5, 'Milliseconds', { dimensions: { JobId: 'j-1' } });
    m.record('KafkaLatencyMs', 9, 'Milliseconds', { dimensions: { JobId: 'j-1' } });
    m.record('Errors', 1);
    await m.flush();
    expect(sink.groups).toHaveLength(2);
    expect(sink.groups[0]?.dimensions).toEqual({ Service: 'producer', Stage: 'test', JobId: 'j-1' });
    expect(sink.values('KafkaLatencyMs')).toEqual([5, 9]);
    expect(sink.values('Errors')).toEqual([1]);
  });

  it('drops the oldest points when full and reports MetricsDropped', async () => {
    const sink = new MemorySink();
    const m = new BufferedMetrics({ sink, defaultDimensions: defaults, maxPoints: 3 });
    for (let i = 1; i <= 5; i++) m.record('Retries', i);
    expect(m.stats()).toMatchObject({ buffered: 3, dropped: 2 });
    await m.flush();
    expect(sink.values('Retries')).toEqual([3, 4, 5]);
    expect(sink.values('MetricsDropped')).toEqual([2]);
  });

  it('never throws from record, ignores non-finite values, and opens the circuit after repeated sink failures', async () => {
    let now = 0;
    let calls = 0;
    const failing: MetricsSink = {
      name: 'broken',
      write: async () => {
        calls++;
        throw new Error('sink down');
      },
    };
    const errors: unknown[] = [];
    const m = new BufferedMetrics({
      sink: failing,
      defaultDimensions: defaults,
      failureThreshold: 2,
      coolOffMs: 1000,
      now: () => now,
      onSinkError: (e) => errors.push(e),
    });
    m.record('Errors', Number.NaN);
    expect(m.stats().buffered).toBe(0);
    for (let i = 0; i < 4; i++) {
      m.record('Errors', 1);
      await m.flush();
    }
    // two failures open the circuit; the next two flushes skip the sink and count the points as dropped
    expect(calls).toBe(2);
    expect(errors).toHaveLength(2);
    expect(m.stats()).toMatchObject({ circuitOpen: true, dropped: 4 });
    now = 2000;
    m.record('Errors', 1);
    await m.flush();
    expect(calls).toBe(3);
  });

  it('writes EMF lines that CloudWatch can extract', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'emf-'));
    const file = join(dir, 'm.jsonl');
    const m = new BufferedMetrics({ sink: emfSink(`file:${file}`), defaultDimensions: defaults });
    m.record('RowsPerSecond', 1200, 'Count/Second', { properties: { sourceKey: 'inbound/a.csv' } });
    m.record('RowsPerSecond', 1300, 'Count/Second', { properties: { sourceKey: 'inbound/a.csv' } });
    await m.close();
    const lines = (await readFile(file, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    const doc = lines[0];
    expect(doc._aws.CloudWatchMetrics[0]).toEqual({
      Namespace: 'Rowstream',
      Dimensions: [['Service', 'Stage']],
      Metrics: [{ Name: 'RowsPerSecond', Unit: 'Count/Second' }],
    });
    expect(doc.RowsPerSecond).toEqual([1200, 1300]);
    expect(doc.sourceKey).toBe('inbound/a.csv');
    expect(doc.Service).toBe('producer');
  });

  it('flushes one batch at a time', async () => {
    const written: MetricGroup[][] = [];
    let release: () => void = () => {};
    const slow: MetricsSink = {
      name: 'slow',
      write: (g) =>
        new Promise<void>((r) => {
          written.push([...g]);
          release = r;
        }),
    };
    const m = new BufferedMetrics({ sink: slow, defaultDimensions: defaults });
    m.record('Checkpoints', 1);
    const a = m.flush();
    const b = m.flush();
    expect(a).toBe(b);
    release();
    await a;
    expect(written).toHaveLength(1);
  });
});
