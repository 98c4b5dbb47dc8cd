import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStackError } from './errors.ts';

/** The repository root (local/ sits right under it). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const LOCAL_REGION = 'us-east-1';
export const LOCAL_STAGE = 'local';
/** moto accepts any credentials; these never leave the machine. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' } as const;

export interface LocalPorts {
  readonly moto: number;
  readonly kafka: number;
  readonly controller: number;
}

export const PORT_ENV = {
  moto: 'ROWSTREAM_MOTO_PORT',
  kafka: 'ROWSTREAM_KAFKA_PORT',
  controller: 'ROWSTREAM_KAFKA_CONTROLLER_PORT',
} as const;

function parsePort(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new LocalStackError(`${name}=${raw} is not a TCP port (an integer from 1 to 65535)`);
  }
  return port;
}

/**
 * Ports of the local stack: moto 4566 (LocalStack's, so LocalStack can be swapped in), Kafka 9092,
 * the KRaft controller listener next to it (Kafka port + 1) unless set.
 */
export function portsFromEnv(env: NodeJS.ProcessEnv = process.env): LocalPorts {
  const moto = parsePort(env, PORT_ENV.moto, 4566);
  const kafka = parsePort(env, PORT_ENV.kafka, 9092);
  const controller = parsePort(env, PORT_ENV.controller, kafka + 1);
  const taken = new Map<number, string>();
  for (const [name, port] of Object.entries({ moto, kafka, controller })) {
    const other = taken.get(port);
    if (other) throw new LocalStackError(`ports of ${other} and ${name} are both ${port}; give each its own`);
    taken.set(port, name);
  }
  return { moto, kafka, controller };
}

/** Where a component of the running local stack answers. */
export function localEndpoints(ports: LocalPorts = portsFromEnv()) {
  return {
    endpoint: `http://127.0.0.1:${ports.moto}`,
    brokers: [`127.0.0.1:${ports.kafka}`] as readonly string[],
  };
}

/** Every path the local stack writes, all under `.local/` (gitignored). */
export function localPaths(root: string = REPO_ROOT) {
  const local = join(root, '.local');
  const logs = join(local, 'logs');
  const run = join(local, 'run');
  const venv = join(local, 'venv');
  const kafka = join(local, 'kafka');
  return {
    root,
    local,
    logs,
    run,
    stackJson: join(local, 'stack.json'),
    moto: {
      requirements: join(root, 'local', 'moto', 'requirements.txt'),
      constraints: join(root, 'local', 'moto', 'constraints.txt'),
      launcher: join(root, 'local', 'moto', 'launcher.py'),
      venv,
      python: join(venv, 'bin', 'python'),
      marker: join(venv, '.rowstream-install.json'),
      installLog: join(logs, 'install-moto.log'),
      log: join(logs, 'moto.log'),
      pid: join(run, 'moto.pid'),
    },
    kafka: {
      pom: join(root, 'local', 'kafka', 'pom.xml'),
      propertiesTemplate: join(root, 'local', 'kafka', 'server.properties'),
      log4j: join(root, 'local', 'kafka', 'log4j2.properties'),
      home: kafka,
      libs: join(kafka, 'libs'),
      data: join(kafka, 'data'),
      properties: join(kafka, 'server.properties'),
      marker: join(kafka, 'libs', '.rowstream-install.json'),
      installLog: join(logs, 'install-kafka.log'),
      log: join(logs, 'kafka.log'),
      stdoutLog: join(logs, 'kafka.out.log'),
      pid: join(run, 'kafka.pid'),
    },
  };
}

export type LocalPaths = ReturnType<typeof localPaths>;

/**
 * Renders local/kafka/server.properties: every `{{NAME}}` must have a value and every value must be
 * used, so a renamed placeholder fails loudly instead of producing a broker on the wrong port.
 */
export function renderTemplate(template: string, values: Record<string, string | number>): string {
  const used = new Set<string>();
  const rendered = template.replace(/\{\{([A-Z_]+)\}\}/g, (_match, name: string) => {
    const value = values[name];
    if (value === undefined) throw new LocalStackError(`template placeholder {{${name}}} has no value`);
    used.add(name);
    return String(value);
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length > 0) throw new LocalStackError(`template has no placeholder for ${unused.join(', ')}`);
  return rendered;
}

export function renderServerProperties(template: string, ports: LocalPorts, dataDir: string): string {
  return renderTemplate(template, {
    KAFKA_PORT: ports.kafka,
    CONTROLLER_PORT: ports.controller,
    DATA_DIR: dataDir,
  });
}

/** Parses a Java .properties text (the subset we write: `key=value` lines and `#` comments). */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const eq = trimmed.indexOf('=');
    if (eq < 0) continue;
    out.set(trimmed.slice(0, eq).trim(), trimmed.slice(eq + 1).trim());
  }
  return out;
}
