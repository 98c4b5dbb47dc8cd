import { Console } from 'node:console';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { createMetricsLogger, LocalSink, MetricsLogger } from 'aws-embedded-metrics';
import type { MetricGroup, MetricsSink } from './metrics.ts';

/**
 * EMF sinks. `auto` lets aws-embedded-metrics pick (Lambda: stdout, ECS/EC2: the CloudWatch agent);
 * `stdout` prints EMF lines; `file:<path>` appends EMF lines to a file (the local stack's stand-in
 * for CloudWatch's extraction, read by the local dashboard and tests).
 */
export type EmfTarget = 'auto' | 'stdout' | `file:${string}`;

export function emfSink(target: EmfTarget): MetricsSink {
  if (target === 'auto') return librarySink();
  return lineSink(target === 'stdout' ? null : target.slice('file:'.length));
}

function applyGroup(logger: MetricsLogger, g: MetricGroup) {
  logger.setNamespace(g.namespace);
  logger.setDimensions([{ ...g.dimensions }], false);
  for (const [k, v] of Object.entries(g.properties)) logger.setProperty(k, v);
  for (const p of g.points) logger.putMetric(p.name, p.value, p.unit);
  const last = g.points.at(-1);
  if (last) logger.setTimestamp(last.timestamp);
}

function librarySink(): MetricsSink {
  return {
    name: 'emf-auto',
    async write(groups) {
      for (const g of groups) {
        const logger = createMetricsLogger();
        applyGroup(logger, g);
        await logger.flush();
      }
    },
  };
}

/** Serializes with the library's own serializer, so the lines are exactly what CloudWatch would read. */
function lineSink(path: string | null): MetricsSink {
  let dirReady = false;
  return {
    name: path ? `emf-file:${path}` : 'emf-stdout',
    async write(groups) {
      const lines: string[] = [];
      for (const g of groups) {
        const logger = new MetricsLogger(async () => captureEnvironment(lines));
        applyGroup(logger, g);
        await logger.flush();
      }
      if (lines.length === 0) return;
      const text = `${lines.join('\n')}\n`;
      if (!path) {
        process.stdout.write(text);
        return;
      }
      if (!dirReady) {
        await mkdir(dirname(path), { recursive: true });
        dirReady = true;
      }
      await appendFile(path, text);
    },
  };
}

/**
 * The library's console sink (exported as `LocalSink`: it serializes with the library's own EMF
 * serializer and writes each event with `console.log`) given a console whose stream collects the lines.
 */
class CollectingSink extends LocalSink {
  override readonly console: Console;
  constructor(lines: string[]) {
    super();
    const stream = new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        lines.push(chunk.toString().replace(/\n$/, ''));
        done();
      },
    });
    this.console = new Console({ stdout: stream, stderr: stream });
  }
}

// A minimal aws-embedded-metrics environment whose sink collects the serialized EMF lines.
type EnvironmentProvider = ConstructorParameters<typeof MetricsLogger>[0];
type Environment = Awaited<ReturnType<EnvironmentProvider>>;

function captureEnvironment(lines: string[]): Environment {
  const sink = new CollectingSink(lines);
  return {
    probe: async () => true,
    getName: () => 'rowstream',
    getType: () => 'Local',
    getLogGroupName: () => 'rowstream',
    configureContext: () => {},
    getSink: () => sink,
  };
}
