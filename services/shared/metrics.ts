/**
 * The metrics port every core writes through, and the buffer that keeps metrics off the data path.
 *
 * `record` never blocks and never throws: points go into a bounded buffer, flushed on an interval and
 * on shutdown. When the buffer is full the oldest points are dropped and counted (MetricsDropped);
 * a sink that keeps failing is skipped for a cool-off period (circuit breaker) instead of slowing
 * rows down. The EMF adapter (emf.ts) is one sink; tests use an in-memory one.
 */

import { METRIC_NAMESPACE, type MetricUnit } from '../../monitoring/metrics.ts';

export type { MetricUnit };

export type Dimensions = Readonly<Record<string, string>>;

export interface MetricPoint {
  readonly name: string;
  readonly value: number;
  readonly unit: MetricUnit;
  /** Extra dimensions on top of the defaults (Service, Stage). Keep them bounded: never user data. */
  readonly dimensions: Dimensions;
  /** Searchable in Logs, not dimensions: object keys, file names and the like go here. */
  readonly properties: Readonly<Record<string, unknown>>;
  readonly timestamp: number;
}

export interface RecordOptions {
  readonly dimensions?: Dimensions;
  readonly properties?: Readonly<Record<string, unknown>>;
}

/** What cores see. */
export interface MetricsPort {
  record(name: string, value: number, unit?: MetricUnit, options?: RecordOptions): void;
  flush(): Promise<void>;
}

/** One flush worth of points that share dimensions and properties. */
export interface MetricGroup {
  readonly namespace: string;
  readonly dimensions: Dimensions;
  readonly properties: Readonly<Record<string, unknown>>;
  readonly points: readonly MetricPoint[];
}

export interface MetricsSink {
  readonly name: string;
  write(groups: readonly MetricGroup[]): Promise<void>;
}

export interface BufferedMetricsOptions {
  readonly sink: MetricsSink;
  readonly defaultDimensions: Dimensions;
  readonly namespace?: string;
  readonly maxPoints?: number;
  readonly flushIntervalMs?: number;
  /** Consecutive sink failures that open the circuit. */
  readonly failureThreshold?: number;
  readonly coolOffMs?: number;
  readonly now?: () => number;
  /** Told about sink failures (once per failure, never per point). */
  readonly onSinkError?: (error: unknown) => void;
}

export class BufferedMetrics implements MetricsPort {
  private buffer: MetricPoint[] = [];
  private dropped = 0;
  private consecutiveFailures = 0;
  private openUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  private readonly namespace: string;
  private readonly maxPoints: number;
  private readonly failureThreshold: number;
  private readonly coolOffMs: number;
  private readonly now: () => number;

  constructor(private readonly options: BufferedMetricsOptions) {
    this.namespace = options.namespace ?? METRIC_NAMESPACE;
    this.maxPoints = options.maxPoints ?? 10_000;
    this.failureThreshold = options.failureThreshold ?? 3;
    this.coolOffMs = options.coolOffMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** Starts the flush interval (unref'd: it never keeps the process alive). */
  start(): this {
    const every = this.options.flushIntervalMs ?? 10_000;
    if (!this.timer && every > 0) {
      this.timer = setInterval(() => void this.flush(), every);
      this.timer.unref();
    }
    return this;
  }

  record(name: string, value: number, unit: MetricUnit = 'Count', options: RecordOptions = {}): void {
    if (!Number.isFinite(value)) return;
    if (this.buffer.length >= this.maxPoints) {
      this.buffer.shift();
      this.dropped++;
    }
    this.buffer.push({
      name,
      value,
      unit,
      dimensions: options.dimensions ?? {},
      properties: options.properties ?? {},
      timestamp: this.now(),
    });
  }

  /** Points waiting, and points dropped since the last successful flush. */
  stats() {
    return { buffered: this.buffer.length, dropped: this.dropped, circuitOpen: this.now() < this.openUntil };
  }

  flush(): Promise<void> {
    // One flush at a time; a caller during a flush waits for it, then its points go in the next one.
    if (this.flushing) return this.flushing;
    this.flushing = this.doFlush().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  /** Stops the interval and flushes what is left (for SIGTERM). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  private async doFlush(): Promise<void> {
    if (this.buffer.length === 0 && this.dropped === 0) return;
    const points = this.buffer;
    this.buffer = [];
    if (this.now() < this.openUntil) {
      this.dropped += points.length;
      return;
    }
    if (this.dropped > 0) {
      points.push({
        name: 'MetricsDropped',
        value: this.dropped,
        unit: 'Count',
        dimensions: {},
        properties: {},
        timestamp: this.now(),
      });
    }
    try {
      await this.options.sink.write(groupPoints(this.namespace, this.options.defaultDimensions, points));
      this.dropped = 0;
      this.consecutiveFailures = 0;
    } catch (error) {
      this.consecutiveFailures++;
      this.dropped += points.filter((p) => p.name !== 'MetricsDropped').length;
      if (this.consecutiveFailures >= this.failureThreshold) {
        this.openUntil = this.now() + this.coolOffMs;
        this.consecutiveFailures = 0;
      }
      this.options.onSinkError?.(error);
    }
  }
}

function groupPoints(namespace: string, defaults: Dimensions, points: readonly MetricPoint[]): MetricGroup[] {
  const groups = new Map<
    string,
    { dimensions: Dimensions; properties: Record<string, unknown>; points: MetricPoint[] }
  >();
  for (const p of points) {
    const dimensions = { ...defaults, ...p.dimensions };
    const key = JSON.stringify([Object.entries(dimensions).sort(), Object.entries(p.properties).sort()]);
    let g = groups.get(key);
    if (!g) {
      g = { dimensions, properties: { ...p.properties }, points: [] };
      groups.set(key, g);
    }
    g.points.push(p);
  }
  return [...groups.values()].map((g) => ({ namespace, ...g }));
}

/** A sink that keeps what it is given; for tests and the local dashboard. */
export class MemorySink implements MetricsSink {
  readonly name = 'memory';
  readonly groups: MetricGroup[] = [];
  async write(groups: readonly MetricGroup[]): Promise<void> {
    this.groups.push(...groups);
  }
  values(name: string): number[] {
    return this.groups.flatMap((g) => g.points.filter((p) => p.name === name).map((p) => p.value));
  }
}

/** Metrics that go nowhere, for benchmarks that measure the cost of metrics. */
export const NO_METRICS: MetricsPort = { record() {}, flush: async () => {} };
