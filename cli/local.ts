import { resolve } from 'node:path';
import { runnerPaths } from '../local/runner/services.ts';
import { runForeground, serviceStatuses, startServices, stopServices } from '../local/runner/supervisor.ts';
import * as stack from '../local/stack.ts';
import type { StackOutputs } from '../topology/topology.ts';
import { defaultStackFile, type GlobalOptions, readStackFile, stateDirFrom } from './context.ts';

const say = (line: string) => console.log(`[local] ${line}`);

function pathsOf(g: GlobalOptions) {
  return runnerPaths(resolve(g.stateDir ?? stateDirFrom()));
}

/**
 * The stage the services run against. With an explicit --stack-file (tests: a fresh stage) the stack is
 * someone else's business; otherwise it is the local stack, started (idempotently) here.
 */
async function outputsFor(g: GlobalOptions, servicesOnly: boolean): Promise<StackOutputs> {
  if (g.stackFile || servicesOnly) return readStackFile(resolve(g.stackFile ?? defaultStackFile()));
  const { outputs } = await stack.up();
  return outputs;
}

export async function localUp(g: GlobalOptions, opts: { servicesOnly: boolean; services: boolean }) {
  const outputs = await outputsFor(g, opts.servicesOnly);
  if (!opts.services) return;
  const paths = pathsOf(g);
  for (const r of startServices(outputs, paths)) {
    const files = paths.of(r.name);
    if (r.action === 'missing') say(`${r.name.padEnd(12)} not started: ${r.detail}`);
    else say(`${r.name.padEnd(12)} ${r.action.padEnd(15)} pid ${r.pid}  log ${files.log}`);
  }
  say(`services run against stage ${outputs.stage}; EMF metrics in ${paths.metrics}`);
  say('next: rowstream drop <file.csv>   |   rowstream local status   |   rowstream dashboard');
}

export async function localDown(g: GlobalOptions, opts: { servicesOnly: boolean; graceMs: number }) {
  const paths = pathsOf(g);
  for (const r of await stopServices(paths, opts.graceMs)) say(`${r.name.padEnd(12)} ${r.result}`);
  if (!opts.servicesOnly && !g.stackFile) await stack.down();
}

export async function localStatus(g: GlobalOptions, opts: { json: boolean }): Promise<number> {
  const paths = pathsOf(g);
  const services = serviceStatuses(paths);
  const stackStatus = g.stackFile ? null : await stack.status(opts.json ? { log: () => {} } : { log: say });
  const servicesOk = services.every((s) => s.state === 'running');
  if (opts.json) {
    console.log(JSON.stringify({ stack: stackStatus, services }, null, 2));
  } else {
    for (const s of services) {
      const state =
        s.state === 'running'
          ? 'running'
          : s.state === 'stale'
            ? 'dead (stale pid file: `rowstream local up` restarts it)'
            : 'not running';
      say(`${s.name.padEnd(12)} ${state.padEnd(8)} pid ${String(s.pid ?? '-').padEnd(7)} log ${s.log}`);
    }
    if (!servicesOk) say('start what is missing with `rowstream local up`');
  }
  return (stackStatus?.ok ?? true) && servicesOk ? 0 : 1;
}

export async function localRun(g: GlobalOptions, opts: { servicesOnly: boolean }): Promise<number> {
  const outputs = await outputsFor(g, opts.servicesOnly);
  say(`running the services in the foreground against stage ${outputs.stage} (Ctrl-C stops them)`);
  return runForeground(outputs, pathsOf(g));
}
