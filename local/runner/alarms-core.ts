import type { AlarmDef, Comparison, MetricRef } from '../../monitoring/alarms.ts';

/**
 * CloudWatch alarm evaluation for the local stack, where moto never evaluates an alarm. Pure: datapoints
 * in, a state out; the runner (alarms.ts) feeds it the services' EMF files and the emulator's queue
 * figures and writes the state with SetAlarmState, so the state change takes the path it takes on AWS.
 *
 * What it does as CloudWatch does: periods aligned on the clock, only complete periods evaluated, the
 * alarm's statistic per period, metric math per period (arithmetic, comparisons, IF, FILL; a missing
 * operand makes the result missing, which is why the definitions use FILL), M out of N datapoints, and
 * TreatMissingData. Where it simplifies: with `ignore`/`missing` and some (not all) datapoints missing it
 * does not look further back for older datapoints; it keeps the state unless M of the present ones
 * breach. A speed-up divides every period (a 5-minute period lasts 5 s at 60x) so tests run in seconds.
 */

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

/** One metric's identity, as CloudWatch matches it: namespace, name and the exact dimension set. */
export function metricKey(
  namespace: string,
  name: string,
  dimensions: Readonly<Record<string, string>>,
): string {
  const dims = Object.entries(dimensions)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `${namespace}|${name}|${dims}`;
}

export const refKey = (ref: MetricRef) => metricKey(ref.namespace, ref.metricName, ref.dimensions);

export interface Datapoint {
  readonly key: string;
  /** Epoch ms. */
  readonly at: number;
  readonly values: readonly number[];
}

/**
 * Parses one EMF line into datapoints the way CloudWatch extracts them: one metric per name and per
 * dimension set of each directive, dimension values from the top-level members. Anything else (a log
 * line, a half-written line) gives none.
 */
export function emfDatapoints(line: string): Datapoint[] {
  const text = line.trim();
  if (!text.startsWith('{')) return [];
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return [];
  }
  const aws = obj._aws as
    | {
        Timestamp?: number;
        CloudWatchMetrics?: { Namespace?: string; Dimensions?: string[][]; Metrics?: { Name?: string }[] }[];
      }
    | undefined;
  if (!aws || !Array.isArray(aws.CloudWatchMetrics) || typeof aws.Timestamp !== 'number') return [];
  const out: Datapoint[] = [];
  for (const d of aws.CloudWatchMetrics) {
    if (!d.Namespace) continue;
    const sets = d.Dimensions && d.Dimensions.length > 0 ? d.Dimensions : [[]];
    for (const m of d.Metrics ?? []) {
      if (!m.Name) continue;
      const raw = obj[m.Name];
      const values = (Array.isArray(raw) ? raw : [raw]).filter(
        (v): v is number => typeof v === 'number' && Number.isFinite(v),
      );
      if (values.length === 0) continue;
      for (const set of sets) {
        const dims: Record<string, string> = {};
        let complete = true;
        for (const name of set) {
          const v = obj[name];
          if (typeof v !== 'string') complete = false;
          else dims[name] = v;
        }
        if (complete) out.push({ key: metricKey(d.Namespace, m.Name, dims), at: aws.Timestamp, values });
      }
    }
  }
  return out;
}

/** Datapoints by metric, kept only as long as some alarm can still look at them. */
export class DatapointStore {
  private readonly byKey = new Map<string, { at: number; values: readonly number[] }[]>();

  add(points: readonly Datapoint[]): void {
    for (const p of points) {
      let list = this.byKey.get(p.key);
      if (!list) {
        list = [];
        this.byKey.set(p.key, list);
      }
      list.push({ at: p.at, values: p.values });
    }
  }

  /** Every value of a metric with `start <= at < end`. */
  values(key: string, start: number, end: number): number[] {
    const out: number[] = [];
    for (const p of this.byKey.get(key) ?? []) if (p.at >= start && p.at < end) out.push(...p.values);
    return out;
  }

  prune(before: number): void {
    for (const [key, list] of this.byKey) {
      const kept = list.filter((p) => p.at >= before);
      if (kept.length === 0) this.byKey.delete(key);
      else this.byKey.set(key, kept);
    }
  }

  size(): number {
    let n = 0;
    for (const list of this.byKey.values()) n += list.length;
    return n;
  }
}

/** CloudWatch statistics over one period's values; null when there are none. */
export function statistic(values: readonly number[], stat: string): number | null {
  if (values.length === 0) return null;
  switch (stat) {
    case 'Sum':
      return values.reduce((a, b) => a + b, 0);
    case 'Maximum':
      return Math.max(...values);
    case 'Minimum':
      return Math.min(...values);
    case 'Average':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'SampleCount':
      return values.length;
  }
  const p = /^p(\d+(?:\.\d+)?)$/.exec(stat);
  if (p) {
    const sorted = [...values].sort((a, b) => a - b);
    const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((Number(p[1]) / 100) * sorted.length) - 1));
    return sorted[idx] ?? null;
  }
  throw new Error(`statistic ${stat} is not supported by the local evaluator`);
}

// ---------------------------------------------------------------------------------------------------
// Metric math (the subset the definitions use): numbers, ids, + - * /, comparisons, AND/OR, IF, FILL.

type Node =
  | { t: 'num'; v: number }
  | { t: 'id'; name: string }
  | { t: 'neg'; e: Node }
  | { t: 'bin'; op: string; l: Node; r: Node }
  | { t: 'call'; fn: string; args: Node[] };

function tokenize(src: string): string[] {
  const tokens: string[] = [];
  const re = /\s*(>=|<=|==|!=|[()+\-*/,<>]|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|[A-Za-z_][A-Za-z0-9_]*)/y;
  let i = 0;
  while (i < src.length) {
    if (/^\s+$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m || m[1] === undefined) throw new Error(`metric math: cannot read "${src.slice(i)}"`);
    tokens.push(m[1]);
    i = re.lastIndex;
  }
  return tokens;
}

/** Parses a metric-math expression; throws naming what it cannot read. */
export function parseMath(src: string): Node {
  const tokens = tokenize(src);
  let pos = 0;
  const peek = () => tokens[pos];
  const take = (want?: string) => {
    const t = tokens[pos++];
    if (t === undefined || (want !== undefined && t !== want))
      throw new Error(`metric math: expected ${want ?? 'more'} in "${src}"`);
    return t;
  };
  const levels = [['OR'], ['AND'], ['>', '<', '>=', '<=', '==', '!='], ['+', '-'], ['*', '/']];
  const binary = (level: number): Node => {
    if (level === levels.length) return unary();
    let left = binary(level + 1);
    while (levels[level]?.includes(peek() ?? '')) {
      const op = take();
      left = { t: 'bin', op, l: left, r: binary(level + 1) };
    }
    return left;
  };
  const unary = (): Node => {
    if (peek() === '-') {
      take();
      return { t: 'neg', e: unary() };
    }
    return primary();
  };
  const primary = (): Node => {
    const tok = take();
    if (tok === '(') {
      const e = binary(0);
      take(')');
      return e;
    }
    if (/^\d/.test(tok)) return { t: 'num', v: Number(tok) };
    if (/^[A-Za-z_]/.test(tok)) {
      if (peek() === '(') {
        take('(');
        const args: Node[] = [];
        if (peek() !== ')') {
          args.push(binary(0));
          while (peek() === ',') {
            take(',');
            args.push(binary(0));
          }
        }
        take(')');
        return { t: 'call', fn: tok.toUpperCase(), args };
      }
      return { t: 'id', name: tok };
    }
    throw new Error(`metric math: unexpected "${tok}" in "${src}"`);
  };
  const tree = binary(0);
  if (pos !== tokens.length) throw new Error(`metric math: unexpected "${tokens[pos]}" in "${src}"`);
  return tree;
}

/** Evaluates a parsed expression for one period; a missing operand (null) makes the result missing. */
export function evalMath(node: Node, vars: Readonly<Record<string, number | null>>): number | null {
  switch (node.t) {
    case 'num':
      return node.v;
    case 'id': {
      if (!(node.name in vars)) throw new Error(`metric math: unknown id ${node.name}`);
      return vars[node.name] ?? null;
    }
    case 'neg': {
      const v = evalMath(node.e, vars);
      return v === null ? null : -v;
    }
    case 'bin': {
      const l = evalMath(node.l, vars);
      const r = evalMath(node.r, vars);
      if (l === null || r === null) return null;
      switch (node.op) {
        case '+':
          return l + r;
        case '-':
          return l - r;
        case '*':
          return l * r;
        case '/':
          // CloudWatch drops a datapoint divided by zero.
          return r === 0 ? null : l / r;
        case '>':
          return l > r ? 1 : 0;
        case '<':
          return l < r ? 1 : 0;
        case '>=':
          return l >= r ? 1 : 0;
        case '<=':
          return l <= r ? 1 : 0;
        case '==':
          return l === r ? 1 : 0;
        case '!=':
          return l !== r ? 1 : 0;
        case 'AND':
          return l !== 0 && r !== 0 ? 1 : 0;
        case 'OR':
          return l !== 0 || r !== 0 ? 1 : 0;
      }
      throw new Error(`metric math: operator ${node.op}`);
    }
    case 'call': {
      const [a, b, c] = node.args;
      if (node.fn === 'FILL' && a && b && node.args.length === 2) {
        return evalMath(a, vars) ?? evalMath(b, vars);
      }
      if (node.fn === 'IF' && a && b && c && node.args.length === 3) {
        const cond = evalMath(a, vars);
        if (cond === null) return null;
        return cond !== 0 ? evalMath(b, vars) : evalMath(c, vars);
      }
      if (node.fn === 'ABS' && a && node.args.length === 1) {
        const v = evalMath(a, vars);
        return v === null ? null : Math.abs(v);
      }
      throw new Error(`metric math: ${node.fn}/${node.args.length} is not supported by the local evaluator`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

export interface PeriodValue {
  /** Start of the period, epoch ms. */
  readonly start: number;
  readonly value: number | null;
}

/** The alarm's values for its last `evaluationPeriods` complete periods, oldest first. */
export function periodValues(
  def: AlarmDef,
  store: DatapointStore,
  now: number,
  speedup: number,
): PeriodValue[] {
  const src = def.source;
  const periodSeconds = src.kind === 'metric' ? src.metric.periodSeconds : src.periodSeconds;
  const len = Math.max(1, (periodSeconds * 1000) / speedup);
  const currentStart = Math.floor(now / len) * len;
  const tree = src.kind === 'math' ? parseMath(src.expression) : null;
  const out: PeriodValue[] = [];
  for (let i = def.evaluationPeriods; i >= 1; i--) {
    const start = currentStart - i * len;
    const end = start + len;
    if (src.kind === 'metric') {
      out.push({
        start,
        value: statistic(store.values(refKey(src.metric), start, end), src.metric.statistic),
      });
    } else {
      const vars: Record<string, number | null> = {};
      for (const [id, ref] of Object.entries(src.metrics)) {
        vars[id] = statistic(store.values(refKey(ref), start, end), ref.statistic);
      }
      out.push({ start, value: tree ? evalMath(tree, vars) : null });
    }
  }
  return out;
}

export function breaches(value: number, comparison: Comparison, threshold: number): boolean {
  switch (comparison) {
    case 'GreaterThanThreshold':
      return value > threshold;
    case 'GreaterThanOrEqualToThreshold':
      return value >= threshold;
    case 'LessThanThreshold':
      return value < threshold;
    case 'LessThanOrEqualToThreshold':
      return value <= threshold;
  }
}

const WORDS: Record<Comparison, string> = {
  GreaterThanThreshold: 'greater than',
  GreaterThanOrEqualToThreshold: 'greater than or equal to',
  LessThanThreshold: 'less than',
  LessThanOrEqualToThreshold: 'less than or equal to',
};

export interface Evaluation {
  readonly state: AlarmState;
  /** CloudWatch-style StateReason. */
  readonly reason: string;
  /** CloudWatch-style StateReasonData (JSON): recentDatapoints and threshold, read by the alarm-router. */
  readonly reasonData: string;
  readonly points: readonly PeriodValue[];
}

const num = (v: number) => (Number.isInteger(v) ? `${v}.0` : String(v));
const when = (ms: number) => {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCFullYear() % 100)} ${p(d.getUTCHours())}:${p(
    d.getUTCMinutes(),
  )}:${p(d.getUTCSeconds())}`;
};

/** The state an alarm should be in now, from its definition, its datapoints and its current state. */
export function evaluateAlarm(
  def: AlarmDef,
  store: DatapointStore,
  now: number,
  current: AlarmState,
  speedup = 1,
): Evaluation {
  const points = periodValues(def, store, now, speedup);
  const present = points.filter((p): p is { start: number; value: number } => p.value !== null);
  const breaching = present.filter((p) => breaches(p.value, def.comparison, def.threshold));
  const missing = points.length - present.length;
  const m = def.datapointsToAlarm;
  let state: AlarmState;
  let breachCount = breaching.length;
  if (def.treatMissingData === 'breaching') breachCount += missing;
  if (present.length === 0) {
    state =
      def.treatMissingData === 'breaching'
        ? 'ALARM'
        : def.treatMissingData === 'notBreaching'
          ? 'OK'
          : def.treatMissingData === 'ignore'
            ? current
            : 'INSUFFICIENT_DATA';
  } else if (breachCount >= m) {
    state = 'ALARM';
  } else if (
    (def.treatMissingData === 'ignore' || def.treatMissingData === 'missing') &&
    present.length < m &&
    breaching.length > 0
  ) {
    // Too few datapoints to decide either way: CloudWatch would look further back; keep the state.
    state = current === 'INSUFFICIENT_DATA' ? 'OK' : current;
  } else {
    state = 'OK';
  }
  const src = def.source;
  const periodSeconds = src.kind === 'metric' ? src.metric.periodSeconds : src.periodSeconds;
  const stat = src.kind === 'metric' ? src.metric.statistic : undefined;
  const word = WORDS[def.comparison];
  let reason: string;
  if (present.length === 0) {
    reason = `no datapoints were received for ${missing} period${missing === 1 ? '' : 's'} and ${missing} missing datapoint${
      missing === 1 ? ' was' : 's were'
    } treated as [${def.treatMissingData}].`;
  } else {
    const shown = (state === 'ALARM' ? breaching : present).slice(-m);
    const list = shown.map((p) => `${num(p.value)} (${when(p.start)})`).join(', ');
    reason = `Threshold Crossed: ${shown.length} out of the last ${points.length} datapoints [${list}] ${
      state === 'ALARM' ? 'was' : 'was not'
    } ${word} the threshold (${num(def.threshold)}) (minimum ${m} datapoint${m === 1 ? '' : 's'} for OK -> ALARM transition).`;
  }
  const reasonData = JSON.stringify({
    version: '1.0',
    queryDate: new Date(now).toISOString(),
    startDate: new Date(points[0]?.start ?? now).toISOString(),
    ...(stat ? { statistic: stat } : {}),
    period: periodSeconds,
    recentDatapoints: present.map((p) => p.value),
    threshold: def.threshold,
    evaluatedDatapoints: points
      .slice()
      .reverse()
      .map((p) => ({
        timestamp: new Date(p.start).toISOString(),
        ...(p.value === null ? {} : { value: p.value }),
      })),
  });
  return { state, reason, reasonData, points };
}

/** How far back any alarm looks (ms of local time), to bound what the store keeps. */
export function lookbackMs(defs: readonly AlarmDef[], speedup: number): number {
  let longest = 0;
  for (const d of defs) {
    const p = d.source.kind === 'metric' ? d.source.metric.periodSeconds : d.source.periodSeconds;
    longest = Math.max(longest, ((d.evaluationPeriods + 1) * p * 1000) / speedup);
  }
  return longest;
}

/** Every metric any alarm reads: what the runner must collect. */
export function alarmRefs(defs: readonly AlarmDef[]): MetricRef[] {
  return defs.flatMap((d) =>
    d.source.kind === 'metric' ? [d.source.metric] : Object.values(d.source.metrics),
  );
}
