import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Target } from '../context.ts';
import type { JobsView } from '../jobs.ts';
import { type JobView, jobView } from '../status.ts';
import { EmfRecordTail, type MetricsSnapshot, MetricsStore } from './data.ts';
import type { Panels } from './panels.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
// chart.js from node_modules, served by us: the page must work without internet (no CDN).
const CHART_JS = join(dirname(createRequire(import.meta.url).resolve('chart.js')), 'chart.umd.min.js');

export interface DashboardOptions {
  readonly target: Pick<Target, 'stage'>;
  readonly jobs: JobsView;
  readonly metricsDir: string;
  readonly port: number;
  /** Jobs listed; the newest first. */
  readonly jobLimit?: number;
  readonly now?: () => number;
  /** Alarm states and the data inventory (panels.ts); without it the page shows neither. */
  readonly panels?: () => Promise<Panels & { errors: string[] }>;
}

/** A job as the page shows it: the record, brought forward by fresher producer metrics while it runs. */
export interface DashboardJob extends JobView {
  readonly progressSource: 'job record' | 'metrics';
}

/**
 * The job record moves at each checkpoint (every few seconds); the producer's EMF every flush. While a
 * job runs, whichever is further along is shown, and the page says which (as CloudWatch's dashboard
 * would show the metric, not the table).
 */
export function liveJob(view: JobView, metrics: MetricsSnapshot): DashboardJob {
  const live = metrics.progress[view.jobId];
  if (view.status !== 'RUNNING' || !live || live.percent === null || view.totalRows === null) {
    return { ...view, progressSource: 'job record' };
  }
  const rows = Math.round((live.percent / 100) * view.totalRows);
  if (rows <= view.rowsDone) return { ...view, progressSource: 'job record' };
  const rate = metrics.throughput[view.jobId]?.at(-1)?.[1] ?? view.rowsPerSecond;
  return {
    ...view,
    rowsDone: rows,
    percent: live.percent,
    rowsPerSecond: rate,
    etaSeconds: live.etaSeconds ?? view.etaSeconds,
    progressSource: 'metrics',
  };
}

export interface Snapshot extends MetricsSnapshot, Partial<Panels> {
  readonly generatedAt: string;
  readonly stage: string;
  readonly jobs: readonly DashboardJob[];
  readonly metricsFiles: readonly string[];
  readonly errors: readonly string[];
}

export interface DashboardServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** The page's data: job records (the state) plus the EMF the services wrote (the metrics). */
export function snapshotSource(opts: DashboardOptions) {
  const tail = new EmfRecordTail(opts.metricsDir);
  const store = new MetricsStore();
  const now = opts.now ?? Date.now;
  return async (): Promise<Snapshot> => {
    const errors: string[] = [];
    store.add(tail.poll());
    let jobs: JobView[] = [];
    try {
      const t = now();
      jobs = (await opts.jobs.list({ limit: opts.jobLimit ?? 20 })).map((j) => jobView(j, t));
    } catch (error) {
      errors.push(`jobs table: ${(error as Error).message}`);
    }
    const metrics = store.snapshot(now());
    const panels = opts.panels ? await opts.panels() : null;
    if (panels) errors.push(...panels.errors);
    return {
      ...(panels ? { alarms: panels.alarms, inventory: panels.inventory } : {}),
      generatedAt: new Date(now()).toISOString(),
      stage: opts.target.stage,
      jobs: jobs.map((j) => liveJob(j, metrics)),
      metricsFiles: tail.files(),
      errors,
      ...metrics,
    };
  };
}

const STATIC: Record<string, { file: string; type: string }> = {
  '/': { file: join(HERE, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: join(HERE, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/chart.umd.min.js': { file: CHART_JS, type: 'text/javascript; charset=utf-8' },
};

/**
 * The Host header a request to this server may carry: 127.0.0.1:port or localhost:port. Anything else
 * (a DNS-rebinding page whose own name now resolves to 127.0.0.1) is refused, so no other origin can
 * read /api/snapshot through the browser.
 */
export function isAllowedHost(host: string | undefined, port: number): boolean {
  return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
}

/** Serves the page and `/api/snapshot` on 127.0.0.1 only: the dashboard shows data nobody else should. */
export async function startDashboard(opts: DashboardOptions): Promise<DashboardServer> {
  const snapshot = snapshotSource(opts);
  // One snapshot at a time: several tabs polling every second must not multiply the table queries.
  let inFlight: Promise<Snapshot> | null = null;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!isAllowedHost(req.headers.host, (server.address() as AddressInfo).port)) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end('misdirected request: unexpected Host header');
      return;
    }
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/api/snapshot') {
      inFlight ??= snapshot().finally(() => {
        inFlight = null;
      });
      inFlight.then(
        (s) => {
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify(s));
        },
        (error: unknown) => {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: String(error) }));
        },
      );
      return;
    }
    const asset = STATIC[path];
    if (!asset) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
    res.end(readFileSync(asset.file));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
