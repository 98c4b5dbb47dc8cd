#!/usr/bin/env node
// The CLI is TypeScript run through tsx's ESM loader, so a clone needs no build step: register the
// loader in this process (no second Node process, signals and exit codes stay ours), then load it.
//
// The project runs on the Node.js it installs itself (the npm package `node`, a devDependency, puts
// Node 24 into node_modules/.bin, first on PATH for `npx rowstream` and every npm script). Started by
// another Node (e.g. `./bin/rowstream.mjs` from a shell whose own node is older), hand over to that one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const projectNode = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24 && existsSync(projectNode) && !process.env.ROWSTREAM_NODE_HANDOVER) {
  const child = spawn(projectNode, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ROWSTREAM_NODE_HANDOVER: '1' },
  });
  // Signals sent to this process (a supervisor's SIGTERM) reach the CLI; its exit code or signal is ours.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  const [code, signal] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
}

const { register } = await import('tsx/esm/api');
register();
await import('../cli/main.ts');
