/**
 * `npm run bench:connect [-- --rows 1000000 --modes plain,eos --repeat 2 --batch-size 10000 --linger-ms 5]`
 *
 * Apache Kafka Connect's FileStreamSource connector beside `kcat -P` on the local stack's broker, on the
 * same CSV as bench:producer (`.local/bench/chaos-<rows>.csv`), in the same run: a one-worker
 * distributed Connect cluster (ConnectDistributed, the broker's own jars plus connect-file, fetched
 * once into .local/connect/libs by bench/connect/pom.xml), plain (exactly.once.source.support=disabled)
 * and exactly-once (KIP-618: enabled, the connector with exactly.once.support=required and
 * transaction.boundary=poll: one transaction per poll of `batch.size` lines). Per mode and round: a
 * fresh worker; kcat, then the first connector on it (cold: the task's producer, its transactional id
 * and the topic metadata are new), kcat again, then a second connector on the same worker (warm).
 *
 * The clock runs from the connector's creation (POST /connectors) to the last growth of the topic's
 * end offset (polled every 100 ms); the topic is then read read_committed and its records counted:
 * every line of the file, the header line included (rows + 1), raw (StringConverter: the line as the
 * value, no key, no headers). Rates are in data rows, as kcat's. The worker's log:
 * .local/connect/logs/<worker>.log. Stops the worker (SIGTERM, SIGKILL after 15 s) and deletes its
 * topics on exit, error or signal.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { localEndpoints, localPaths, portsFromEnv, REPO_ROOT } from '../local/config.ts';
import { installJars, KAFKA_HEAP, KAFKA_VERSION } from '../local/kafka.ts';
import { stopProcess } from '../local/processes.ts';
import { committedRecords } from '../services/shared/kafka-committed.ts';
import {
  batchSizeFor,
  type ConnectMode,
  type ConnectRun,
  connectorConfig,
  formatRun,
  parseModes,
  rate,
  ratio,
  renderWorkerProperties,
  workerNames,
} from '../testkit/connect-config.ts';
import { topicEndOffset } from '../testkit/producer.ts';
import { writeRowsFile } from '../testkit/rows.ts';
import { ensureKcat, runKcat } from './lib/kcat.ts';
import { loadAverage } from './lib/machine.ts';
import { benchTopics } from './lib/topics.ts';

const opts = new Command('bench:connect')
  .option('--rows <n>', 'data rows of the file', '1000000')
  .option('--modes <list>', 'comma-separated: plain, eos', 'plain,eos')
  .option('--repeat <n>', 'rounds of every mode, each on a fresh worker', '1')
  .option('--batch-size <n>', "the task's lines per poll (adjusted to divide the line count)", '10000')
  .option('--linger-ms <n>', "the task producer's linger.ms", '5')
  .option('--no-warm', 'only the first connector of each worker')
  .parse()
  .opts<{
    rows: string;
    modes: string;
    repeat: string;
    batchSize: string;
    lingerMs: string;
    warm: boolean;
  }>();
const rows = Number(opts.rows);
const modes = parseModes(opts.modes);
const repeat = Number(opts.repeat);
const lingerMs = Number(opts.lingerMs);
const lines = rows + 1;
const batchSize = batchSizeFor(lines, Number(opts.batchSize));

const paths = localPaths();
const connectHome = join(paths.local, 'connect');
const connectLibs = join(connectHome, 'libs');
const log = (line: string) => console.log(`[bench] ${line}`);
await installJars(
  {
    label: `connect-file ${KAFKA_VERSION}`,
    pom: join(REPO_ROOT, 'bench', 'connect', 'pom.xml'),
    libs: connectLibs,
    marker: join(connectLibs, '.rowstream-install.json'),
    installLog: join(paths.logs, 'install-connect.log'),
    cwd: REPO_ROOT,
  },
  log,
);

const brokers = localEndpoints(portsFromEnv()).brokers;
const kcat = ensureKcat();
const bench = await benchTopics(brokers, 'bench-connect');
const admin = bench.admin;
const topics = new Set<string>();
async function createTopic(topic: string): Promise<void> {
  topics.add(topic);
  await bench.createTopic(topic);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

interface Worker {
  prefix: string;
  rest: string;
  child: ChildProcess;
  exited: Promise<void>;
  logFile: string;
  connectors: string[];
}
let current: Worker | null = null;

async function rest(w: Worker, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${w.rest}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text} (worker log: ${w.logFile})`);
  return text ? JSON.parse(text) : null;
}

async function startWorker(mode: ConnectMode, round: number): Promise<Worker> {
  const prefix = `bench-connect-${mode}-r${round}-${randomBytes(3).toString('hex')}`;
  const port = await freePort();
  const logs = join(connectHome, 'logs');
  mkdirSync(logs, { recursive: true });
  const props = join(connectHome, `${prefix}.properties`);
  writeFileSync(props, renderWorkerProperties({ brokers: brokers.join(','), prefix, restPort: port, mode }));
  for (const t of Object.values(workerNames(prefix))) if (t !== prefix) topics.add(t);
  const logFile = join(logs, `${prefix}.log`);
  const out = openSync(join(logs, `${prefix}.out`), 'a');
  const child = spawn(
    'java',
    [
      ...KAFKA_HEAP,
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${join(REPO_ROOT, 'bench', 'connect', 'log4j2.properties')}`,
      `-Drowstream.connect.log=${logFile}`,
      '-cp',
      `${join(paths.kafka.libs, '*')}:${join(connectLibs, '*')}`,
      'org.apache.kafka.connect.cli.ConnectDistributed',
      props,
    ],
    { cwd: REPO_ROOT, detached: true, stdio: ['ignore', out, out] },
  );
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const w: Worker = { prefix, rest: `http://127.0.0.1:${port}`, child, exited, logFile, connectors: [] };
  current = w;
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode}; see ${logFile}`);
    try {
      const plugins = (await rest(w, 'GET', '/connector-plugins')) as { class: string }[];
      if (plugins.some((p) => p.class.endsWith('FileStreamSourceConnector'))) break;
    } catch {
      // not listening yet, or joining its group
    }
    if (Date.now() - t0 > 180_000) throw new Error(`worker not ready in 180 s; see ${logFile}`);
    await sleep(500);
  }
  log(`worker ${prefix} (${mode}) ready in ${((Date.now() - t0) / 1000).toFixed(1)} s on ${w.rest}`);
  return w;
}

async function stopWorker(w: Worker): Promise<void> {
  for (const name of w.connectors) await rest(w, 'DELETE', `/connectors/${name}`).catch(() => {});
  if (w.child.exitCode === null && w.child.pid !== undefined) {
    await stopProcess(w.child.pid, 15_000);
    await w.exited;
  }
  if (current === w) current = null;
}

async function runConnector(
  w: Worker,
  mode: ConnectMode,
  start: 'cold' | 'warm',
  round: number,
  path: string,
  size: number,
): Promise<ConnectRun> {
  const k = await runKcat({ kcat, brokers: brokers.join(','), rows, path, size, createTopic });
  const topic = `${w.prefix}-${start}-data`;
  await createTopic(topic);
  const name = `${w.prefix}-${start}`;
  const config = connectorConfig({ file: path, topic, batchSize, lingerMs, mode });
  const t0 = Date.now();
  await rest(w, 'POST', '/connectors', { name, config });
  w.connectors.push(name);
  // Plain: one record per line. EOS: one transaction per poll, one marker each.
  const expected = lines + (mode === 'eos' ? Math.ceil(lines / batchSize) : 0);
  let end = 0;
  let changed = t0;
  for (;;) {
    await sleep(100);
    const now = await topicEndOffset(admin, topic);
    if (now !== end) {
      end = now;
      changed = Date.now();
    }
    if (end >= expected) break;
    if (end > 0 && Date.now() - changed > 10_000) break; // stopped short: counted below
    if (end === 0 && Date.now() - t0 > 300_000) throw new Error(`${name}: nothing on ${topic} in 300 s`);
  }
  const seconds = (changed - t0) / 1000;
  let count = 0;
  for await (const _ of committedRecords({ bootstrapBrokers: [...brokers] }, topic)) count++;
  const r = rate(rows, size, seconds);
  return {
    label: `connect-file-${KAFKA_VERSION}-${mode}-${start}-${rows}`,
    mode,
    start,
    round,
    rows,
    lines: count,
    missingLines: lines - count,
    markers: end - count,
    bytes: size,
    batchSize,
    seconds,
    ...r,
    kcat: { rowsPerSecond: k.rowsPerSecond, mbPerSecond: k.mbPerSecond, seconds: k.seconds },
    ratioToKcat: ratio(r.rowsPerSecond, k.rowsPerSecond),
    load: loadAverage(),
  };
}

async function cleanup(): Promise<void> {
  if (current) await stopWorker(current);
  const names = [...topics];
  topics.clear();
  if (names.length > 0) await admin.deleteTopics({ topics: names, timeout: 30_000 }).catch(() => {});
  await admin.disconnect().catch(() => {});
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping the worker, deleting its topics`);
    void cleanup().finally(() => process.exit(130));
  });
}

const results: ConnectRun[] = [];
try {
  const path = join(REPO_ROOT, '.local', 'bench', `chaos-${rows}.csv`);
  log(`${rows} rows: writing ${path}`);
  const { size } = await writeRowsFile(path, rows);
  log(
    `${lines} lines (header + ${rows} rows), ${size} bytes, batch.size ${batchSize}, linger.ms ${lingerMs}`,
  );
  for (let round = 1; round <= repeat; round++) {
    for (const mode of modes) {
      const w = await startWorker(mode, round);
      try {
        for (const start of opts.warm ? (['cold', 'warm'] as const) : (['cold'] as const)) {
          const r = await runConnector(w, mode, start, round, path, size);
          results.push(r);
          console.log(formatRun(r));
        }
      } finally {
        await stopWorker(w);
      }
    }
  }
  console.log(
    JSON.stringify({ connect: KAFKA_VERSION, java: 17, rows, lines, batchSize, lingerMs, results }, null, 2),
  );
} finally {
  await cleanup();
}
process.exit(0);
