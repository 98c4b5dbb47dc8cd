/**
 * The pure parts of bench/connect.ts: the Connect worker's properties and the FileStreamSource
 * connector's config for plain and exactly-once (KIP-618) runs, the batch size that lets the task emit
 * a file's last line, and the result line.
 */

export type ConnectMode = 'plain' | 'eos';
export const CONNECT_MODES: readonly ConnectMode[] = ['plain', 'eos'];

export function parseModes(list: string): ConnectMode[] {
  const modes = list.split(',').map((m) => m.trim());
  for (const m of modes) {
    if (!CONNECT_MODES.includes(m as ConnectMode)) throw new Error(`--modes: plain or eos, not ${m}`);
  }
  return modes as ConnectMode[];
}

/** Names of one worker's group and internal topics (fresh per worker, deleted at the end). */
export function workerNames(prefix: string) {
  return {
    groupId: prefix,
    configTopic: `${prefix}-configs`,
    offsetTopic: `${prefix}-offsets`,
    statusTopic: `${prefix}-status`,
  };
}

/**
 * connect-distributed.properties of a one-worker cluster on the one-node local broker: internal
 * topics with replication factor 1 (the default, 3, cannot be created on one broker), one partition
 * each, raw lines both ways (StringConverter: the value is the line, as kcat sends it), REST on
 * 127.0.0.1. `eos`: exactly.once.source.support=enabled (KIP-618: each source task writes its records
 * and its source offsets in one transaction); plain: disabled, offsets flushed every second.
 * connector.client.config.override.policy=All lets the connector set its producer's batch and linger.
 */
export function renderWorkerProperties(opts: {
  brokers: string;
  prefix: string;
  restPort: number;
  mode: ConnectMode;
}): string {
  const n = workerNames(opts.prefix);
  const props: [string, string | number][] = [
    ['bootstrap.servers', opts.brokers],
    ['group.id', n.groupId],
    ['key.converter', 'org.apache.kafka.connect.storage.StringConverter'],
    ['value.converter', 'org.apache.kafka.connect.storage.StringConverter'],
    ['config.storage.topic', n.configTopic],
    ['offset.storage.topic', n.offsetTopic],
    ['status.storage.topic', n.statusTopic],
    ['config.storage.replication.factor', 1],
    ['offset.storage.replication.factor', 1],
    ['status.storage.replication.factor', 1],
    ['offset.storage.partitions', 1],
    ['status.storage.partitions', 1],
    ['offset.flush.interval.ms', 1000],
    ['listeners', `http://127.0.0.1:${opts.restPort}`],
    ['rest.advertised.host.name', '127.0.0.1'],
    ['rest.advertised.port', opts.restPort],
    ['exactly.once.source.support', opts.mode === 'eos' ? 'enabled' : 'disabled'],
    ['connector.client.config.override.policy', 'All'],
    // The connector is on the class path (connect-file beside the broker's jars), found by its
    // ServiceLoader manifest: no reflective scan of ~95 jars at every start.
    ['plugin.discovery', 'service_load'],
  ];
  return `${props.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}

/** The FileStreamSource connector's config (POST /connectors body's `config`). */
export function connectorConfig(opts: {
  file: string;
  topic: string;
  batchSize: number;
  lingerMs: number;
  mode: ConnectMode;
}): Record<string, string> {
  return {
    'connector.class': 'org.apache.kafka.connect.file.FileStreamSourceConnector',
    'tasks.max': '1',
    file: opts.file,
    topic: opts.topic,
    'batch.size': String(opts.batchSize),
    'producer.override.batch.size': String(1 << 20),
    'producer.override.linger.ms': String(opts.lingerMs),
    ...(opts.mode === 'eos' ? { 'exactly.once.support': 'required', 'transaction.boundary': 'poll' } : {}),
  };
}

/**
 * FileStreamSourceTask (4.1) returns a poll as soon as it holds `batch.size` lines and reads more only
 * while its reader is `ready()`: lines already in its char buffer when the batch fills at the end of
 * the file wait for the file to grow, forever for a file that does not. With 1,000,001 lines and
 * batch.size 10000 the last line never reaches the topic. A batch size that divides the line count
 * fills its last batch on the last line, leaving nothing behind: the divisor nearest to `wanted`
 * between wanted/2 and 2*wanted, else `wanted` (and the bench reports the lines that did not arrive).
 */
export function batchSizeFor(lines: number, wanted: number): number {
  if (lines % wanted === 0) return wanted;
  let best: number | null = null;
  const lo = Math.max(1, Math.ceil(wanted / 2));
  const hi = wanted * 2;
  for (let d = lo; d <= hi; d++) {
    if (lines % d === 0 && (best === null || Math.abs(d - wanted) < Math.abs(best - wanted))) best = d;
  }
  return best ?? wanted;
}

export interface ConnectRun {
  label: string;
  mode: ConnectMode;
  /** 'cold': the first connector of a fresh worker; 'warm': a second one on the same worker. */
  start: 'cold' | 'warm';
  round: number;
  /** Data rows of the file (the header line is sent too and counted in `lines`). */
  rows: number;
  /** Lines the topic holds read_committed at the end (header + rows when nothing is missing). */
  lines: number;
  missingLines: number;
  /** Transaction markers (eos): end offset minus committed records. */
  markers: number;
  bytes: number;
  batchSize: number;
  /** From the connector's creation (POST) to the last growth of the topic's end offset. */
  seconds: number;
  rowsPerSecond: number;
  mbPerSecond: number;
  kcat: { rowsPerSecond: number; mbPerSecond: number; seconds: number };
  ratioToKcat: number;
  load: string;
}

export function rate(rows: number, bytes: number, seconds: number) {
  return {
    rowsPerSecond: Math.round(rows / seconds),
    mbPerSecond: Math.round((bytes / 1e6 / seconds) * 10) / 10,
  };
}

export function ratio(rowsPerSecond: number, kcatRowsPerSecond: number): number {
  return Math.round((rowsPerSecond / kcatRowsPerSecond) * 100) / 100;
}

/** The one-line `[bench] ...` summary of a run, in bench/producer.ts's style. */
export function formatRun(r: ConnectRun): string {
  const missing = r.missingLines === 0 ? 'all lines' : `${r.missingLines} lines MISSING`;
  const markers = r.mode === 'eos' ? `, ${r.markers} transactions` : '';
  return `[bench] round ${r.round} ${r.label}: ${r.rowsPerSecond} rows/s, ${r.mbPerSecond} MB/s (${r.seconds.toFixed(2)} s, ${r.lines} lines read_committed, ${missing}${markers}, batch.size ${r.batchSize}) | kcat -P ${r.kcat.rowsPerSecond} rows/s | ${r.ratioToKcat.toFixed(2)}x kcat | load ${r.load}`;
}
