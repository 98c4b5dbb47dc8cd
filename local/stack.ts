/**
 * The local stack: moto (AWS emulator, 127.0.0.1:4566) and a single-node Apache Kafka broker in
 * KRaft mode (127.0.0.1:9092), installed into .local/ and started detached.
 *
 *   tsx local/stack.ts install|up|down|status      (npm run local:install|up|down|status)
 *
 * The functions are exported so the `rowstream local ...` CLI reuses them. Everything lives under
 * .local/: venv/, kafka/{libs,data}/, logs/*.log, run/*.pid and stack.json.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { StackOutputs } from '../topology/topology.ts';
import {
  LOCAL_REGION,
  LOCAL_STAGE,
  type LocalPaths,
  type LocalPorts,
  localEndpoints,
  localPaths,
  PORT_ENV,
  portsFromEnv,
} from './config.ts';
import { LocalStackError, NotReadyError, PortTakenError } from './errors.ts';
import {
  formatKafkaStorage,
  installKafka,
  KAFKA_PROCESS_MARKER,
  KAFKA_VERSION,
  probeKafka,
  startKafka,
  writeServerProperties,
} from './kafka.ts';
import { installMoto, MOTO_PROCESS_MARKER, motoFixes, probeMoto, startMoto } from './moto.ts';
import {
  isAlive,
  isOurs,
  portAnswers,
  readPid,
  removePid,
  stopProcess,
  tailOf,
  waitUntil,
  writePid,
} from './processes.ts';
import { provision } from './provision.ts';

export interface StackOptions {
  readonly paths?: LocalPaths;
  readonly ports?: LocalPorts;
  /** One line per step; defaults to stdout with a `[local]` prefix. */
  readonly log?: (line: string) => void;
  /** Upper bound for each component to become ready. */
  readonly readyTimeoutMs?: number;
}

type Component = 'moto' | 'kafka';

interface ComponentSpec {
  readonly name: Component;
  readonly port: number;
  readonly portEnv: string;
  readonly pidFile: string;
  readonly logFile: string;
  readonly marker: string;
  /** Seconds between SIGTERM and SIGKILL on `down`. */
  readonly graceMs: number;
}

const defaultLog = (line: string) => console.log(`[local] ${line}`);

function resolveOptions(opts: StackOptions) {
  const paths = opts.paths ?? localPaths();
  const ports = opts.ports ?? portsFromEnv();
  const envTimeout = Number(process.env.ROWSTREAM_LOCAL_READY_TIMEOUT_S);
  return {
    paths,
    ports,
    log: opts.log ?? defaultLog,
    readyTimeoutMs: opts.readyTimeoutMs ?? (envTimeout > 0 ? envTimeout * 1000 : 120_000),
    specs: specs(paths, ports),
  };
}

function specs(paths: LocalPaths, ports: LocalPorts): Record<Component, ComponentSpec> {
  return {
    moto: {
      name: 'moto',
      port: ports.moto,
      portEnv: PORT_ENV.moto,
      pidFile: paths.moto.pid,
      logFile: paths.moto.log,
      marker: MOTO_PROCESS_MARKER,
      graceMs: 10_000,
    },
    kafka: {
      name: 'kafka',
      port: ports.kafka,
      portEnv: PORT_ENV.kafka,
      pidFile: paths.kafka.pid,
      logFile: paths.kafka.log,
      marker: KAFKA_PROCESS_MARKER,
      graceMs: 30_000,
    },
  };
}

interface ComponentState {
  readonly pid: number | null;
  /** The pid file names a live process that is ours. */
  readonly running: boolean;
  /** A pid file exists but its process is gone (or the pid now belongs to something else). */
  readonly stalePidFile: boolean;
  readonly portOpen: boolean;
}

async function inspect(spec: ComponentSpec): Promise<ComponentState> {
  const pid = readPid(spec.pidFile);
  const running = pid !== null && isOurs(pid, spec.marker);
  return {
    pid,
    running,
    stalePidFile: existsSync(spec.pidFile) && !running,
    portOpen: await portAnswers(spec.port),
  };
}

function ensureDirs(paths: LocalPaths): void {
  for (const dir of [paths.local, paths.logs, paths.run, paths.kafka.home])
    mkdirSync(dir, { recursive: true });
}

/** Installs moto (Python venv) and Kafka (jars); cached: a second call downloads nothing. */
export async function install(opts: StackOptions = {}): Promise<{ moto: string; kafka: string }> {
  const { paths, log } = resolveOptions(opts);
  ensureDirs(paths);
  const [moto, kafka] = await Promise.all([installMoto(paths, log), installKafka(paths, log)]);
  return { moto, kafka };
}

/** Makes sure one component runs (starting or repairing it) and answers its readiness probe. */
async function ensureRunning(
  spec: ComponentSpec,
  start: () => Promise<number>,
  probe: () => Promise<void>,
  extraPorts: readonly { port: number; env: string }[],
  log: (line: string) => void,
  timeoutMs: number,
): Promise<{ pid: number; started: boolean }> {
  const state = await inspect(spec);
  let pid: number;
  let started = false;
  if (state.running && state.pid !== null) {
    pid = state.pid;
    log(`${spec.name}: already running (pid ${pid}, port ${spec.port})`);
  } else {
    if (state.stalePidFile) {
      log(`${spec.name}: removed stale pid file ${spec.pidFile} (pid ${state.pid} is not running)`);
      removePid(spec.pidFile);
    }
    for (const { port, env } of [{ port: spec.port, env: spec.portEnv }, ...extraPorts]) {
      if (await portAnswers(port)) throw new PortTakenError(spec.name, port, env, spec.logFile);
    }
    pid = await start();
    writePid(spec.pidFile, pid);
    started = true;
    log(`${spec.name}: started (pid ${pid}, port ${spec.port}, log ${spec.logFile})`);
  }
  const t0 = Date.now();
  const ready = await waitUntil(
    async () => {
      await probe();
      return true;
    },
    {
      timeoutMs,
      intervalMs: 300,
      abort: () => (isAlive(pid) ? null : `the process (pid ${pid}) exited while starting`),
    },
  );
  if (!ready.ok) {
    const detail = `${ready.reason}${started ? '' : ' — it was already running; `npm run local:down` then `npm run local:up` restarts it'}`;
    throw new NotReadyError(
      spec.name,
      spec.logFile,
      `${detail}\n--- last lines of ${spec.logFile} ---\n${tailOf(spec.logFile)}`,
    );
  }
  log(`${spec.name}: ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { pid, started };
}

/**
 * Installs (cached), starts what is not running, repairs stale pid files, waits for readiness
 * (every AWS service answers; Kafka acknowledges an idempotent acks=all produce), provisions stage
 * `local` and writes .local/stack.json. Idempotent: a second call only re-checks and re-provisions.
 */
export async function up(opts: StackOptions = {}): Promise<{ outputs: StackOutputs; stackJson: string }> {
  const o = resolveOptions(opts);
  const { paths, ports, log } = o;
  const t0 = Date.now();
  await install(opts);
  ensureDirs(paths);
  const { endpoint, brokers } = localEndpoints(ports);

  // Both start side by side; each finishes (or fails) before any error is reported.
  const started = await Promise.allSettled([
    ensureRunning(
      o.specs.moto,
      async () => startMoto(paths, ports),
      () => probeMoto(endpoint),
      [],
      log,
      o.readyTimeoutMs,
    ),
    ensureRunning(
      o.specs.kafka,
      async () => {
        writeServerProperties(paths, ports);
        await formatKafkaStorage(paths, log);
        return startKafka(paths);
      },
      () => probeKafka(brokers),
      [{ port: ports.controller, env: PORT_ENV.controller }],
      log,
      o.readyTimeoutMs,
    ),
  ]);
  const failures = started.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length > 1) {
    throw new LocalStackError(
      failures.map((f) => (f instanceof Error ? `${f.name}: ${f.message}` : String(f))).join('\n'),
    );
  }
  if (failures[0] !== undefined) throw failures[0];

  const outputs = await provision({
    stage: LOCAL_STAGE,
    region: LOCAL_REGION,
    endpoint,
    brokers,
  });
  writeFileSync(paths.stackJson, `${JSON.stringify(outputs, null, 2)}\n`);
  log(
    `provisioned stage ${LOCAL_STAGE}: bucket ${outputs.bucket}, bus ${outputs.busName}, ` +
      `${Object.keys(outputs.queues).length} queues, ${Object.keys(outputs.tables).length} tables, ` +
      `${Object.keys(outputs.rules).length} rules, ${Object.keys(outputs.schedules).length} schedules, ` +
      `${Object.keys(outputs.topics).length} topics`,
  );
  log(`wrote ${paths.stackJson}`);
  log(
    `up in ${((Date.now() - t0) / 1000).toFixed(1)} s — AWS ${endpoint}, Kafka ${brokers.join(',')}; logs in ${paths.logs}`,
  );
  return { outputs, stackJson: paths.stackJson };
}

/**
 * Stops moto and Kafka (SIGTERM to the process group, SIGKILL after a grace period), removes their
 * pid files and .local/stack.json (moto keeps its state in memory: after a stop the names in it
 * point at nothing). Kafka's data in .local/kafka/data is kept.
 */
export async function down(opts: StackOptions = {}): Promise<void> {
  const { paths, log, specs: s } = resolveOptions(opts);
  await Promise.all(
    Object.values(s).map(async (spec) => {
      const state = await inspect(spec);
      if (state.running && state.pid !== null) {
        log(`${spec.name}: stopping pid ${state.pid} (SIGTERM, SIGKILL after ${spec.graceMs / 1000} s)`);
        const how = await stopProcess(state.pid, spec.graceMs);
        log(`${spec.name}: ${how === 'killed' ? 'killed (did not stop in time)' : 'stopped'}`);
      } else if (state.stalePidFile) {
        log(`${spec.name}: not running (removed stale pid file ${spec.pidFile})`);
      } else {
        log(
          `${spec.name}: not running${state.portOpen ? ` (port ${spec.port} is held by a process rowstream did not start: left alone)` : ''}`,
        );
      }
      removePid(spec.pidFile);
    }),
  );
  if (existsSync(paths.stackJson)) {
    rmSync(paths.stackJson);
    log(`removed ${paths.stackJson}`);
  }
}

export interface ComponentStatus {
  readonly name: Component;
  readonly pid: number | null;
  readonly port: number;
  readonly up: boolean;
  readonly detail: string;
}

export interface StackStatus {
  readonly ok: boolean;
  readonly components: readonly ComponentStatus[];
  readonly stackJson: { readonly path: string; readonly present: boolean; readonly stage: string | null };
}

/** Prints each component (pid, port, up/down) and whether stack.json is there; `ok` only if all are. */
export async function status(opts: StackOptions = {}): Promise<StackStatus> {
  const { paths, ports, log, specs: s } = resolveOptions(opts);
  const { endpoint } = localEndpoints(ports);
  const components: ComponentStatus[] = [];
  for (const spec of Object.values(s)) {
    const state = await inspect(spec);
    let up = state.running && state.portOpen;
    let detail: string;
    if (up && spec.name === 'moto') {
      const fixes = await motoFixes(endpoint).catch(() => null);
      up = fixes !== null;
      detail = fixes
        ? `moto ${fixes.moto}, ${Object.keys(fixes.fixes).length} fixes`
        : 'port open but the launcher does not answer';
    } else if (up) {
      detail = `Kafka ${KAFKA_VERSION} (KRaft), controller on ${ports.controller}`;
    } else if (state.running) {
      detail = `process alive but port ${spec.port} does not answer (starting, or hung: see ${spec.logFile})`;
    } else if (state.stalePidFile) {
      detail = `stale pid file ${spec.pidFile} (process gone); \`npm run local:up\` repairs it`;
    } else if (state.portOpen) {
      detail = `not started by rowstream, but port ${spec.port} is taken by another process`;
    } else {
      detail = 'not running';
    }
    components.push({ name: spec.name, pid: state.running ? state.pid : null, port: spec.port, up, detail });
    log(
      `${spec.name.padEnd(5)} ${up ? 'up  ' : 'down'}  pid ${String(state.running ? state.pid : '-').padEnd(7)} ` +
        `port ${spec.port}  ${detail}  (log ${spec.logFile})`,
    );
  }
  let stage: string | null = null;
  const present = existsSync(paths.stackJson);
  if (present) {
    try {
      stage = (JSON.parse(readFileSync(paths.stackJson, 'utf8')) as StackOutputs).stage;
    } catch {
      stage = null;
    }
  }
  log(
    present
      ? `stack.json present: ${paths.stackJson} (stage ${stage ?? '?'}, written ${statSync(paths.stackJson).mtime.toISOString()})`
      : `stack.json missing: ${paths.stackJson} (\`npm run local:up\` writes it)`,
  );
  const ok = components.every((c) => c.up) && present;
  return { ok, components, stackJson: { path: paths.stackJson, present, stage } };
}

const COMMANDS = ['install', 'up', 'down', 'status'] as const;

async function main(argv: readonly string[]): Promise<number> {
  const command = argv[0];
  switch (command) {
    case 'install':
      await install();
      return 0;
    case 'up':
      await up();
      return 0;
    case 'down':
      await down();
      return 0;
    case 'status':
      return (await status()).ok ? 0 : 1;
    default:
      console.error(`usage: tsx local/stack.ts <${COMMANDS.join('|')}>`);
      return 2;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof LocalStackError) {
        console.error(`[local] ${error.name}: ${error.message}`);
      } else {
        console.error('[local] unexpected failure:', error);
      }
      process.exitCode = 1;
    },
  );
}
