import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { type LocalPaths, type LocalPorts, renderServerProperties } from './config.ts';
import { InstallError, MissingToolError } from './errors.ts';
import { runLogged, spawnDetached } from './processes.ts';

/** Kafka version of the local broker (see local/kafka/pom.xml and docs/local-stack.md). */
export const KAFKA_VERSION = '4.1.1';
/** What identifies our broker among running processes. */
export const KAFKA_PROCESS_MARKER = 'kafka.Kafka';
/** Topic the readiness probe writes to (one tiny record per `local:up`). */
export const READINESS_TOPIC = 'rowstream-local-readiness';
/** A modest heap: the machine has 2 cores and shares them with moto and the tests. */
export const KAFKA_HEAP = ['-Xms256m', '-Xmx1g'] as const;

interface Marker {
  readonly fingerprint: string;
  readonly jars: number;
  readonly installedAt: string;
}

function fingerprint(pom: string): string {
  return createHash('sha256').update(readFileSync(pom)).digest('hex');
}

function jarCount(dir: string): number {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.jar')).length : 0;
}

async function requireTool(command: string, args: string[], hint: string, logFile: string, cwd: string) {
  try {
    const result = await runLogged(command, args, { cwd, logFile });
    if (result.code !== 0) throw new Error(`exit ${result.code}`);
  } catch (error) {
    throw new MissingToolError(command, `${hint} (${(error as Error).message})`);
  }
}

/** A set of jars fetched from Maven Central with a dependency manifest (a pom, not a build). */
export interface JarSet {
  /** What the log lines call it, e.g. `kafka 4.1.1`. */
  readonly label: string;
  readonly pom: string;
  /** The folder the jars are copied to (emptied first). */
  readonly libs: string;
  /** The marker file (pom hash, jar count) that makes the next call a no-op. */
  readonly marker: string;
  readonly installLog: string;
  /** Where mvn runs. */
  readonly cwd: string;
}

/**
 * Fetches the jars a pom lists from Maven Central into `set.libs`, once: a marker holding the pom's
 * hash and the jar count makes the next call a no-op, no download. `--strict-checksums`: Maven fails
 * on a jar whose SHA-1 does not match the `.sha1` file Maven Central publishes beside it, instead of
 * warning.
 */
export async function installJars(set: JarSet, log: (line: string) => void): Promise<'cached' | 'installed'> {
  const want = fingerprint(set.pom);
  let marker: Marker | null = null;
  if (existsSync(set.marker)) {
    try {
      marker = JSON.parse(readFileSync(set.marker, 'utf8')) as Marker;
    } catch {
      marker = null;
    }
  }
  if (marker?.fingerprint === want && jarCount(set.libs) === marker.jars && marker.jars > 0) {
    log(`${set.label}: cached in ${set.libs} (${marker.jars} jars, installed ${marker.installedAt})`);
    return 'cached';
  }
  const logFile = set.installLog;
  await requireTool(
    'java',
    ['-version'],
    'install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)',
    logFile,
    set.cwd,
  );
  await requireTool('mvn', ['-v'], 'install Maven 3 (Debian: apt-get install maven)', logFile, set.cwd);
  // Start from an empty folder so a version change leaves no stale jar on the class path.
  rmSync(set.libs, { recursive: true, force: true });
  mkdirSync(set.libs, { recursive: true });
  log(`${set.label}: mvn dependency:copy-dependencies -> ${set.libs} (log: ${logFile})`);
  const mvn = await runLogged(
    'mvn',
    [
      '-q',
      '-B',
      '--strict-checksums',
      '-f',
      set.pom,
      'dependency:copy-dependencies',
      `-DoutputDirectory=${set.libs}`,
    ],
    { cwd: set.cwd, logFile },
  );
  const jars = jarCount(set.libs);
  if (mvn.code !== 0 || jars === 0) {
    throw new InstallError(set.label, logFile, `mvn exited with ${mvn.code}, ${jars} jars fetched`);
  }
  writeFileSync(
    set.marker,
    `${JSON.stringify({ fingerprint: want, jars, installedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  log(`${set.label}: installed ${jars} jars in ${set.libs}`);
  return 'installed';
}

/** Fetches the broker's jars from Maven Central into .local/kafka/libs with the project's pom, once. */
export function installKafka(
  paths: LocalPaths,
  log: (line: string) => void,
): Promise<'cached' | 'installed'> {
  return installJars(
    {
      label: `kafka ${KAFKA_VERSION}`,
      pom: paths.kafka.pom,
      libs: paths.kafka.libs,
      marker: paths.kafka.marker,
      installLog: paths.kafka.installLog,
      cwd: paths.root,
    },
    log,
  );
}

function javaArgs(paths: LocalPaths, mainClass: string, args: readonly string[]): string[] {
  return [
    ...KAFKA_HEAP,
    '-XX:+UseG1GC',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${paths.kafka.log4j}`,
    `-Drowstream.kafka.log=${paths.kafka.log}`,
    '-cp',
    join(paths.kafka.libs, '*'),
    mainClass,
    ...args,
  ];
}

/** Writes .local/kafka/server.properties from the template (every start: ports may have changed). */
export function writeServerProperties(paths: LocalPaths, ports: LocalPorts): string {
  const rendered = renderServerProperties(
    readFileSync(paths.kafka.propertiesTemplate, 'utf8'),
    ports,
    paths.kafka.data,
  );
  mkdirSync(paths.kafka.home, { recursive: true });
  writeFileSync(paths.kafka.properties, rendered);
  return paths.kafka.properties;
}

/**
 * Formats the KRaft storage once (when .local/kafka/data has no meta.properties). A folder left
 * half-formatted by an interrupted run is wiped first: it holds no data yet.
 */
export async function formatKafkaStorage(
  paths: LocalPaths,
  log: (line: string) => void,
): Promise<'formatted' | 'kept'> {
  if (existsSync(join(paths.kafka.data, 'meta.properties'))) return 'kept';
  rmSync(paths.kafka.data, { recursive: true, force: true });
  const opts = { cwd: paths.root, logFile: paths.kafka.stdoutLog };
  const uuid = await runLogged('java', javaArgs(paths, 'kafka.tools.StorageTool', ['random-uuid']), opts);
  const clusterId = uuid.stdout.trim().split('\n').pop()?.trim() ?? '';
  if (uuid.code !== 0 || !/^[A-Za-z0-9_-]{22}$/.test(clusterId)) {
    throw new InstallError(
      'kafka storage',
      paths.kafka.stdoutLog,
      `StorageTool random-uuid gave "${clusterId}"`,
    );
  }
  const format = await runLogged(
    'java',
    javaArgs(paths, 'kafka.tools.StorageTool', ['format', '-t', clusterId, '-c', paths.kafka.properties]),
    opts,
  );
  if (format.code !== 0) {
    throw new InstallError(
      'kafka storage',
      paths.kafka.stdoutLog,
      `StorageTool format exited with ${format.code}`,
    );
  }
  log(`kafka: formatted KRaft storage ${paths.kafka.data} (cluster ${clusterId})`);
  return 'formatted';
}

/** Starts the combined broker+controller detached; returns its pid. */
export function startKafka(paths: LocalPaths): number {
  return spawnDetached('java', javaArgs(paths, 'kafka.Kafka', [paths.kafka.properties]), {
    cwd: paths.root,
    logFile: paths.kafka.stdoutLog,
  });
}

/**
 * Readiness means a real produce, not an open port: an idempotent producer with acks=all must get
 * its record acknowledged. The first InitProducerId after a start often meets
 * COORDINATOR_LOAD_IN_PROGRESS; kafkajs retries it, and the caller retries the whole probe.
 */
export async function probeKafka(brokers: readonly string[]): Promise<void> {
  const kafka = new Kafka({
    clientId: 'rowstream-local-readiness',
    brokers: [...brokers],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    requestTimeout: 10_000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: true,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  try {
    await producer.connect();
    await producer.send({
      topic: READINESS_TOPIC,
      acks: -1,
      messages: [{ value: JSON.stringify({ probe: 'local:up', at: new Date().toISOString() }) }],
    });
  } finally {
    await producer.disconnect().catch(() => {});
  }
}
