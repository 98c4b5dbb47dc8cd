import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A small fault-injecting HTTP proxy in front of the AWS emulator (moto), for the fault chaos run and
 * its integration test. Services get `AWS_ENDPOINT_URL=<proxy>`; every request is forwarded to the
 * emulator unless a fault rule picks it, which then answers the way AWS does when it fails:
 *
 * - `5xx`: 503 Service Unavailable (S3: `SlowDown`-style XML; JSON services: `ServiceUnavailable`)
 * - `throttle`: DynamoDB `ProvisionedThroughputExceededException` / `ThrottlingException` (400),
 *   S3 `SlowDown` (503)
 * - `timeout`: the request is swallowed: no answer until the client gives up (its request timeout)
 * - `reset`: the connection is destroyed at once (ECONNRESET)
 * - `stall-body`: the request is forwarded, the response headers and the first bytes of the body go
 *   back, then nothing more (a hung S3 read); the socket is closed after `stallMs`
 *
 * A rule matches a service (from the request: `X-Amz-Target` prefix for DynamoDB / EventBridge / SQS,
 * anything else is S3) and optionally an operation (the target's action, or the S3 method), and fires
 * with a probability or for the next `count` matching requests.
 */

export type AwsService = 's3' | 'dynamodb' | 'events' | 'sqs';
export type FaultKind = '5xx' | 'throttle' | 'timeout' | 'reset' | 'stall-body';

export interface FaultRule {
  readonly service: AwsService | '*';
  /** DynamoDB / EventBridge / SQS action (e.g. `UpdateItem`, `PutEvents`) or S3 method (`GET`, `PUT`). */
  readonly op?: string;
  readonly kind: FaultKind;
  /** Probability per matching request (0..1); default 1. */
  readonly rate?: number;
  /** Fire for at most this many matching requests, then the rule is spent. */
  readonly count?: number;
  /** stall-body / timeout: how long to hold before closing (default 60 s). */
  readonly stallMs?: number;
}

export interface FaultStats {
  forwarded: number;
  injected: Record<FaultKind, number>;
  byService: Record<string, number>;
}

export interface FaultProxy {
  readonly url: string;
  readonly port: number;
  readonly stats: FaultStats;
  /** Replaces the rules (an empty list: a transparent proxy). */
  setRules(rules: readonly FaultRule[]): void;
  close(): Promise<void>;
}

function serviceOf(req: IncomingMessage): { service: AwsService; op: string } {
  const target = String(req.headers['x-amz-target'] ?? '');
  if (target.startsWith('DynamoDB_')) return { service: 'dynamodb', op: target.split('.')[1] ?? '' };
  if (target.startsWith('AWSEvents.')) return { service: 'events', op: target.split('.')[1] ?? '' };
  if (target.startsWith('AmazonSQS.')) return { service: 'sqs', op: target.split('.')[1] ?? '' };
  const ct = String(req.headers['content-type'] ?? '');
  if (ct.includes('x-www-form-urlencoded')) return { service: 'sqs', op: 'query' };
  return { service: 's3', op: req.method ?? 'GET' };
}

function answer(res: ServerResponse, service: AwsService, kind: '5xx' | 'throttle') {
  if (service === 's3') {
    const code = kind === 'throttle' ? 'SlowDown' : 'ServiceUnavailable';
    res.writeHead(503, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected fault</Message><RequestId>fault</RequestId></Error>`,
    );
    return;
  }
  const type =
    kind === '5xx'
      ? 'ServiceUnavailable'
      : service === 'dynamodb'
        ? 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException'
        : 'ThrottlingException';
  res.writeHead(kind === '5xx' ? 503 : 400, {
    'content-type': 'application/x-amz-json-1.0',
    'x-amzn-errortype': type.split('#').pop() ?? type,
  });
  res.end(JSON.stringify({ __type: type, message: 'injected fault' }));
}

/** Starts the proxy on 127.0.0.1 (port 0 = any free port) forwarding to `upstream` (http://host:port). */
export async function startFaultProxy(upstream: string, port = 0): Promise<FaultProxy> {
  const up = new URL(upstream);
  let rules: { rule: FaultRule; left: number }[] = [];
  const stats: FaultStats = {
    forwarded: 0,
    injected: { '5xx': 0, throttle: 0, timeout: 0, reset: 0, 'stall-body': 0 },
    byService: {},
  };
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  };

  const pick = (service: AwsService, op: string): FaultRule | null => {
    for (const r of rules) {
      if (r.left <= 0) continue;
      if (r.rule.service !== '*' && r.rule.service !== service) continue;
      if (r.rule.op && r.rule.op !== op) continue;
      if (Math.random() >= (r.rule.rate ?? 1)) continue;
      r.left--;
      return r.rule;
    }
    return null;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, stallBodyMs: number | null) => {
    stats.forwarded++;
    const out = request(
      {
        host: up.hostname,
        port: up.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (stallBodyMs === null) {
          upRes.pipe(res);
          return;
        }
        // Let the first chunk through, then hold the rest: the client sees a body that stops.
        upRes.once('data', (chunk: Buffer) => {
          res.write(chunk.subarray(0, Math.min(chunk.length, 64 * 1024)));
          upRes.destroy();
          later(stallBodyMs, () => res.destroy());
        });
        upRes.once('end', () => res.end());
      },
    );
    out.on('error', () => res.destroy());
    req.pipe(out);
  };

  const server: Server = createServer((req, res) => {
    const { service, op } = serviceOf(req);
    stats.byService[service] = (stats.byService[service] ?? 0) + 1;
    const rule = pick(service, op);
    if (!rule) {
      forward(req, res, null);
      return;
    }
    stats.injected[rule.kind]++;
    switch (rule.kind) {
      case '5xx':
      case 'throttle':
        req.resume();
        req.on('end', () => answer(res, service, rule.kind as '5xx' | 'throttle'));
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'timeout':
        req.resume();
        later(rule.stallMs ?? 60_000, () => res.destroy());
        return;
      case 'stall-body':
        forward(req, res, rule.stallMs ?? 60_000);
        return;
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    stats,
    setRules(next) {
      rules = next.map((rule) => ({ rule, left: rule.count ?? Number.POSITIVE_INFINITY }));
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
