import { describe, expect, it } from 'vitest';
import {
  dashboardBody,
  dashboardJson,
  dashboardUrl,
  type MetricEntry,
} from '../../../monitoring/dashboard.ts';
import { metricDef } from '../../../monitoring/metrics.ts';

const stage = 'unit';
const region = 'eu-west-1';

interface RowstreamRef {
  readonly metric: string;
  readonly dimensions: readonly string[];
  readonly values: Readonly<Record<string, string>>;
}

/** Every Rowstream metric a widget names, explicitly (array form) or through a SEARCH expression. */
function rowstreamRefs(entry: MetricEntry): RowstreamRef[] {
  const [first, ...rest] = entry;
  if (typeof first === 'string') {
    if (first !== 'Rowstream') return [];
    const [metric, ...tail] = rest as (string | object)[];
    const pairs = tail.filter((x): x is string => typeof x === 'string');
    const values: Record<string, string> = {};
    for (let i = 0; i < pairs.length; i += 2) values[pairs[i] as string] = pairs[i + 1] as string;
    return [{ metric: metric as string, dimensions: Object.keys(values), values }];
  }
  const expression = String((first as Record<string, unknown>).expression ?? '');
  return [...expression.matchAll(/SEARCH\('\{Rowstream,([^}]*)\} MetricName="([^"]+)"([^']*)'/g)].map((m) => {
    const values: Record<string, string> = {};
    for (const v of (m[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)) values[v[1] as string] = v[2] as string;
    return { metric: m[2] as string, dimensions: (m[1] ?? '').split(','), values };
  });
}

describe('dashboardBody', () => {
  const body = dashboardBody({ stage, region, accountId: '123456789012', monthlyBudgetUsd: 500 });
  const metricWidgets = body.widgets.flatMap((w) => (w.type === 'metric' ? [w] : []));

  it('is a valid CloudWatch dashboard: widgets on the 24-column grid, no overlaps, metric widgets complete', () => {
    expect(JSON.parse(dashboardJson({ stage, region }))).toHaveProperty('widgets');
    const cells = new Set<string>();
    for (const w of body.widgets) {
      expect(['metric', 'text', 'alarm']).toContain(w.type);
      expect(w.x).toBeGreaterThanOrEqual(0);
      expect(w.x + w.width).toBeLessThanOrEqual(24);
      expect(w.height).toBeGreaterThan(0);
      for (let x = w.x; x < w.x + w.width; x++)
        for (let y = w.y; y < w.y + w.height; y++) {
          expect(cells.has(`${x},${y}`), `overlap at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
    for (const w of metricWidgets) {
      expect(w.properties.region).toBe(region);
      expect(w.properties.title.length).toBeGreaterThan(0);
      expect(w.properties.metrics.length).toBeGreaterThan(0);
      expect(w.properties.period % 60).toBe(0);
      // ids referenced by expressions must exist in the same widget (CloudWatch rejects the body otherwise)
      const ids = new Set(
        w.properties.metrics.flatMap((e) => {
          const o = e.find((x) => typeof x === 'object') as Record<string, unknown> | undefined;
          return o?.id ? [String(o.id)] : [];
        }),
      );
      for (const e of w.properties.metrics) {
        const o = e[0];
        if (typeof o !== 'object') continue;
        const expr = String(o.expression ?? '').replace(/SEARCH\('[^']*'[^)]*\)/g, '');
        for (const m of expr.matchAll(/\b([a-z][a-zA-Z0-9_]*)\b/g))
          expect(ids, `${w.properties.title}`).toContain(m[1]);
      }
    }
  });

  it('shows only catalog metrics, with the dimensions of their service, scoped to the stage', () => {
    const refs = metricWidgets.flatMap((w) => w.properties.metrics.flatMap(rowstreamRefs));
    expect(refs.length).toBeGreaterThan(20);
    for (const r of refs) {
      const def = metricDef(r.metric);
      expect(def, `${r.metric} is not in monitoring/metrics.ts`).toBeDefined();
      expect([...r.dimensions].sort()).toEqual(['Service', 'Stage', ...(def?.extraDimensions ?? [])].sort());
      expect(r.values.Service).toBe(def?.service);
      expect(r.values.Stage).toBe(stage);
    }
  });

  it('has the widgets operators asked for', () => {
    const titles = metricWidgets.map((w) => w.properties.title.toLowerCase()).join('\n');
    for (const needle of [
      'rows/s',
      'progress',
      'rows done / total',
      'eta',
      'p50 / p99',
      'errors and retries',
      'rejects',
      'estimated cost',
      'month-to-date',
      'inventory',
      'dlq',
    ]) {
      expect(titles).toContain(needle);
    }
    const shown = new Set(
      metricWidgets.flatMap((w) => w.properties.metrics.flatMap(rowstreamRefs)).map((r) => r.metric),
    );
    for (const m of [
      'RowsPerSecond',
      'ProgressPercent',
      'EtaSeconds',
      'KafkaLatencyMs',
      'CostPerMillionRows',
    ])
      expect(shown).toContain(m);
    const budget = metricWidgets.find((w) => w.properties.title.startsWith('Month-to-date'));
    expect(budget?.properties.annotations?.horizontal[0]?.value).toBe(500);
    const alarms = body.widgets.find((w) => w.type === 'alarm');
    expect(alarms?.type === 'alarm' && alarms.properties.alarms[0]).toMatch(
      /^arn:aws:cloudwatch:eu-west-1:123456789012:alarm:rowstream-unit-/,
    );
  });

  it('links to itself by stage and region', () => {
    expect(dashboardUrl(stage, region)).toBe(
      'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/rowstream-unit-dashboard',
    );
  });
});
