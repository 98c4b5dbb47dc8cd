import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, CommanderError, InvalidArgumentError, Option, type OutputConfiguration } from 'commander';
import { JOB_STATUSES, type JobStatus, RecordHeaders } from '../events/catalog.ts';
import { runnerPaths } from '../local/runner/services.ts';
import { PREFIXES } from '../topology/topology.ts';
import { s3Uploader } from './adapters.ts';
import {
  assertReachable,
  CliError,
  clientsFor,
  defaultStackFile,
  EnvironmentError,
  type GlobalOptions,
  resolveTarget,
  stateDirFrom,
  UsageError,
} from './context.ts';
import { runDrop } from './drop.ts';
import { EXIT } from './format.ts';
import { dynamoJobsView } from './jobs.ts';
import { barView, lineView } from './progress.ts';
import { runResume } from './resume.ts';
import { jobDetail, jobsTable, jobView } from './status.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError('must be a TCP port (0-65535)');
  return n;
}

function isoOrRelativeTime(value: string): Date {
  // "15m", "2h", "1d" ago, or anything Date.parse understands.
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) {
    const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(Date.now() - Number(rel[1]) * unit * 1000);
  }
  if (value === 'now') return new Date();
  const t = Date.parse(value);
  if (Number.isNaN(t))
    throw new InvalidArgumentError('an ISO time (2026-11-02T10:00:00Z), "now", or an age like 15m, 2h, 1d');
  return new Date(t);
}

/** The s3 key a file is dropped under: inbound/<file name>, or an explicit key (kept under inbound/). */
export function inboundKey(file: string, key: string | undefined): string {
  if (!key) return `${PREFIXES.inbound}${basename(file)}`;
  return key.startsWith(PREFIXES.inbound) ? key : `${PREFIXES.inbound}${key.replace(/^\/+/, '')}`;
}

function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals() as GlobalOptions;
}

function pathsFor(g: GlobalOptions) {
  return runnerPaths(resolve(g.stateDir ?? stateDirFrom()));
}

/**
 * The `rowstream` command. `output` (tests) is where commander writes help and usage errors; it is set
 * before the subcommands are added so that they inherit it.
 */
export function buildProgram(output?: OutputConfiguration): Command {
  const program = new Command('rowstream');
  if (output) program.configureOutput(output);
  program
    .description(
      'Stream CSV files dropped into S3 into Kafka, in order and exactly once, and watch it happen.',
    )
    .addOption(
      new Option('--stage <stage>', 'stage: "local" reads the local stack file, any other is AWS').env(
        'ROWSTREAM_STAGE',
      ),
    )
    .addOption(
      new Option('--stack-file <path>', `stack outputs of a local stage (default ${defaultStackFile()})`).env(
        'ROWSTREAM_STACK_FILE',
      ),
    )
    .addOption(
      new Option(
        '--state-dir <dir>',
        'where services keep logs, pid files and EMF metrics (default .local)',
      ).env('ROWSTREAM_STATE_DIR'),
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('drop')
    .description(
      'upload a CSV into inbound/ and follow its job to the end (exit 0 ok, 3 with rejects, 2 rejected/failed)',
    )
    .argument('<file>', 'the CSV file')
    .option('--topic <topic>', "Kafka topic (default: the planner's, rowstream.rows)")
    .option('--key-column <column>', 'column whose value becomes the Kafka record key (default: no key)')
    .addOption(
      new Option(
        '--format <format>',
        'record value: json object, the raw csv record, or avro (Glue Schema Registry wire format)',
      ).choices(['json', 'csv', 'avro']),
    )
    .option(
      '--schema <schema>',
      'auto, none, infer, registry or a registered schema name[@version] (docs/schemas.md)',
    )
    .option('--delimiter <char>', 'field delimiter (default ,)')
    .option('--fail-on-bad-row', 'fail the job at the first bad row instead of rejecting the row')
    .addOption(
      new Option(
        '--record-headers <format>',
        "lineage headers: compact (job, row on every record), full (all four on every record) or batch (all four on each batch's last record only); default: the producer's",
      ).choices(RecordHeaders.options),
    )
    .option('--key <s3key>', 'object key under inbound/ (default: the file name)')
    .option('--no-wait', 'upload and print the job id, do not follow the job')
    .option('--timeout <seconds>', 'give up following after this many seconds (default: never)', positiveInt)
    .action(async (file: string, opts, cmd: Command) => {
      const g = globals(cmd);
      const path = resolve(file);
      if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`${file}: no such file`);
      const target = resolveTarget(g);
      await assertReachable(target);
      const clients = clientsFor(target);
      const key = inboundKey(path, opts.key);
      const tty = Boolean(process.stderr.isTTY);
      const result = await runDrop(
        {
          upload: async (input) => {
            const meta = { ...input.metadata };
            if (opts.delimiter) meta['rowstream-delimiter'] = opts.delimiter;
            if (opts.schema) meta['rowstream-schema'] = opts.schema;
            return s3Uploader(clients.s3, target.bucket)({ ...input, metadata: meta });
          },
          jobs: dynamoJobsView(clients.doc, target.jobsTable),
          view: tty ? barView(process.stderr) : lineView((l) => console.log(l)),
          print: (l) => console.log(l),
          now: Date.now,
          sleep: (ms) => sleep(ms),
        },
        {
          file: path,
          size: statSync(path).size,
          bucket: target.bucket,
          key,
          options: {
            topic: opts.topic,
            keyColumn: opts.keyColumn,
            format: opts.format,
            failOnBadRow: opts.failOnBadRow,
            recordHeaders: opts.recordHeaders,
          },
          wait: opts.wait !== false,
          timeoutMs: opts.timeout ? opts.timeout * 1000 : 0,
        },
      );
      if (result.job) {
        console.log('');
        console.log(
          `next: rowstream status ${result.jobId} | rowstream dashboard | rowstream topic read ${result.job.topic ?? '<topic>'}`,
        );
      }
      process.exitCode = result.exitCode;
    });

  program
    .command('resume')
    .description(
      'resume a FAILED job after its last committed row and follow it (exit 0 ok, 3 with rejects, 2 failed)',
    )
    .argument('<jobId>', 'the failed job')
    .option('--no-wait', 'reopen the job and return, do not follow it')
    .option('--timeout <seconds>', 'give up following after this many seconds (default: never)', positiveInt)
    .action(async (jobId: string, opts, cmd: Command) => {
      const target = resolveTarget(globals(cmd));
      await assertReachable(target);
      const clients = clientsFor(target);
      process.exitCode = await runResume(
        {
          doc: clients.doc,
          table: target.jobsTable,
          jobs: dynamoJobsView(clients.doc, target.jobsTable),
          print: (l) => console.log(l),
          now: Date.now,
          sleep: (ms) => sleep(ms),
        },
        { jobId, wait: opts.wait !== false, timeoutMs: opts.timeout ? opts.timeout * 1000 : 0 },
      );
    });

  program
    .command('status')
    .description('jobs with status, progress, rate, ETA and cost (newest first); one job in detail')
    .argument('[jobId]', 'show this job in detail')
    .option('--json', 'machine-readable output')
    .option('--limit <n>', 'how many jobs', positiveInt, 20)
    .addOption(new Option('--status <status...>', 'only these statuses').choices([...JOB_STATUSES]))
    .action(async (jobId: string | undefined, opts, cmd: Command) => {
      const target = resolveTarget(globals(cmd));
      await assertReachable(target);
      const jobs = dynamoJobsView(clientsFor(target).doc, target.jobsTable);
      const now = Date.now();
      if (jobId) {
        const job = await jobs.get(jobId);
        if (!job) throw new UsageError(`no job ${jobId} in ${target.jobsTable}`);
        if (opts.json) console.log(JSON.stringify({ job: jobView(job, now), record: job }, null, 2));
        else for (const l of jobDetail(job, now)) console.log(l);
        return;
      }
      const list = await jobs.list({ limit: opts.limit, statuses: opts.status as JobStatus[] | undefined });
      const views = list.map((j) => jobView(j, now));
      if (opts.json) console.log(JSON.stringify({ stage: target.stage, jobs: views }, null, 2));
      else for (const l of jobsTable(views)) console.log(l);
    });

  const local = program
    .command('local')
    .description('the local stack (moto + Kafka) and the rowstream services on it');
  local
    .command('up')
    .description(
      'start the local stack and every service that is not running (idempotent; also recovers a crash)',
    )
    .option('--services-only', 'do not touch the stack; start the services for the stack file')
    .option('--no-services', 'start only the stack')
    .action(async (opts, cmd: Command) => {
      const { localUp } = await import('./local.ts');
      await localUp(globals(cmd), {
        servicesOnly: Boolean(opts.servicesOnly),
        services: opts.services !== false,
      });
    });
  local
    .command('down')
    .description('stop the services (SIGTERM, then SIGKILL after the grace period), then the stack')
    .option('--services-only', 'stop only the services, leave the stack running')
    .option('--grace <seconds>', 'seconds between SIGTERM and SIGKILL', positiveInt, 15)
    .action(async (opts, cmd: Command) => {
      const { localDown } = await import('./local.ts');
      await localDown(globals(cmd), { servicesOnly: Boolean(opts.servicesOnly), graceMs: opts.grace * 1000 });
    });
  local
    .command('status')
    .description('the stack and each service: pid, alive, log path')
    .option('--json', 'machine-readable output')
    .action(async (opts, cmd: Command) => {
      const { localStatus } = await import('./local.ts');
      process.exitCode = await localStatus(globals(cmd), { json: Boolean(opts.json) });
    });
  local
    .command('run')
    .description('run every service in the foreground (Ctrl-C stops them cleanly); starts the stack first')
    .option('--services-only', 'do not touch the stack')
    .action(async (opts, cmd: Command) => {
      const { localRun } = await import('./local.ts');
      process.exitCode = await localRun(globals(cmd), { servicesOnly: Boolean(opts.servicesOnly) });
    });

  program
    .command('dashboard')
    .description('serve the live local dashboard on http://127.0.0.1:<port> (localhost only)')
    .option('--port <port>', 'TCP port (0 = any free one)', port, 8787)
    .action(async (opts, cmd: Command) => {
      const g = globals(cmd);
      const target = resolveTarget(g);
      await assertReachable(target);
      const { startDashboard } = await import('./dashboard/server.ts');
      const { panelsSource } = await import('./dashboard/panels.ts');
      const { runbookLocation } = await import('./alarms.ts');
      const { resourceNames } = await import('../topology/topology.ts');
      const clients = clientsFor(target);
      const server = await startDashboard({
        target,
        jobs: dynamoJobsView(clients.doc, target.jobsTable),
        panels: panelsSource({
          stage: target.stage,
          cloudwatch: clients.cloudwatch,
          doc: clients.doc,
          stateTable: target.outputs?.tables.state ?? resourceNames(target.stage).tables.state,
          runbooks: runbookLocation(target),
        }),
        metricsDir: pathsFor(g).metrics,
        port: opts.port,
      });
      console.log(`dashboard for stage ${target.stage}: ${server.url}  (Ctrl-C to stop)`);
      await new Promise<void>((resolveStop) => {
        const stop = () => void server.close().then(resolveStop);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  const alarms = program
    .command('alarms')
    .description('every alarm of the stage: state, since when, value vs threshold, runbook')
    .option('--json', 'machine-readable output')
    .action(async (opts, cmd: Command) => {
      const target = resolveTarget(globals(cmd));
      await assertReachable(target);
      const { alarmViews, alarmsTable, describeStageAlarms, runbookLocation } = await import('./alarms.ts');
      const { alarmDefinitions } = await import('../monitoring/alarms.ts');
      const list = await describeStageAlarms(clientsFor(target).cloudwatch, target.stage);
      const views = alarmViews(list, alarmDefinitions(target.stage), runbookLocation(target));
      if (opts.json) console.log(JSON.stringify({ stage: target.stage, alarms: views }, null, 2));
      else for (const l of alarmsTable(views, Date.now())) console.log(l);
    });
  alarms
    .command('test')
    .description(
      'fire one alarm (SetAlarmState) to try the alert path end to end; its next evaluation puts it back',
    )
    .argument('<name>', 'alarm id (rows-rejected), or its full name')
    .addOption(new Option('--state <state>', 'state to set').choices(['ALARM', 'OK']).default('ALARM'))
    .action(async (name: string, opts, cmd: Command) => {
      const target = resolveTarget(globals(cmd));
      await assertReachable(target);
      const { testAlarm } = await import('./alarms.ts');
      const { userInfo, hostname } = await import('node:os');
      const def = await testAlarm(
        clientsFor(target).cloudwatch,
        target.stage,
        name,
        opts.state,
        `${userInfo().username}@${hostname()}`,
      );
      console.log(`set ${def.name} to ${opts.state} (stage ${target.stage})`);
      console.log(
        def.delivery === 'router'
          ? `-> default bus -> alarm-state rule -> alarm-router -> SNS topic ${def.topic}`
          : def.delivery === 'direct'
            ? `-> the alarm's own actions publish to SNS topic ${def.topic}`
            : '-> silent alarm: no message (its fact is announced by an event); the state shows in `rowstream alarms`',
      );
      console.log('the next evaluation (CloudWatch, or the local runner) sets it back from its datapoints');
    });

  program
    .command('replay')
    .description(
      'replay archived bus events of a time range (consumers are idempotent: nothing is produced twice)',
    )
    .requiredOption('--from <time>', 'start: ISO time or an age like 2h', isoOrRelativeTime)
    .option('--to <time>', 'end: ISO time, "now" or an age (default now)', isoOrRelativeTime)
    .option('--event <name...>', 'only these events, e.g. JobStarted (default: all)')
    .option('--no-wait', 'start the replay and return')
    .action(async (opts, cmd: Command) => {
      const target = resolveTarget(globals(cmd));
      await assertReachable(target);
      const { runReplay } = await import('./replay/command.ts');
      process.exitCode = await runReplay(target, {
        from: opts.from as Date,
        to: (opts.to as Date | undefined) ?? new Date(),
        events: opts.event as string[] | undefined,
        wait: opts.wait !== false,
      });
    });

  const topic = program.command('topic').description('read what rowstream wrote to Kafka');
  topic
    .command('read')
    .description('print records of a topic from the beginning (value, key, rowstream headers)')
    .argument('<topic>', 'topic name')
    .option('--limit <n>', 'stop after n records', positiveInt, 20)
    .option('--job <jobId>', 'only records of this job (rowstream-job header)')
    .option('--follow', 'keep waiting for new records')
    .action(async (name: string, opts, cmd: Command) => {
      const target = resolveTarget(globals(cmd));
      if (target.brokers.length === 0)
        throw new EnvironmentError('no Kafka brokers known: set KAFKA_BROKERS');
      const { kafkaConnectionFor, readTopic } = await import('./topic.ts');
      const { avroDecoder } = await import('./topic-avro.ts');
      // --follow ends on Ctrl-C or SIGTERM: the reader closes its connections and the count is printed.
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const n = await readTopic(kafkaConnectionFor(target), name, {
          limit: opts.limit,
          job: opts.job,
          follow: Boolean(opts.follow),
          decode: avroDecoder(clientsFor(target).glue, target.stage),
          signal: stop.signal,
        });
        console.error(`${n} record${n === 1 ? '' : 's'} of ${name}, read_committed`);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  program
    .command('doctor')
    .description(
      'check what a deploy of a stage needs: settings, credentials, bootstrap, network, Kafka, topics',
    )
    .action(async (_opts, cmd: Command) => {
      const stage = globals(cmd).stage ?? process.env.ROWSTREAM_STAGE;
      if (!stage || stage === 'local')
        throw new EnvironmentError('name the stage to check: rowstream doctor --stage <stage>');
      const { runDoctor, printDoctor } = await import('./doctor.ts');
      const ok = printDoctor(await runDoctor({ root: process.cwd(), stage }), (l) => console.log(l));
      process.exitCode = ok ? 0 : 1;
    });

  return program;
}

/** Parses and runs; returns the exit code (usage and environment errors: 1). */
export async function runCli(program: Command, argv: readonly string[]): Promise<number> {
  // Actions report their outcome through process.exitCode; start from a clean slate on every run.
  process.exitCode = undefined;
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof CliError) {
      console.error(`rowstream: ${error.message}`);
      return error.exitCode;
    }
    const e = error as Error & { name?: string; code?: string };
    if (e?.name === 'CredentialsProviderError' || e?.name === 'ExpiredTokenException') {
      console.error(
        `rowstream: no usable AWS credentials for a cloud stage (${e.message}); for the local stack use --stage local`,
      );
      return EXIT.usage;
    }
    if (e?.code === 'EADDRINUSE') {
      console.error(
        `rowstream: ${e.message}: the port is taken; choose another with --port <n> (0 = any free port)`,
      );
      return EXIT.usage;
    }
    if (e?.code === 'ECONNREFUSED') {
      console.error(
        `rowstream: connection refused (${e.message}); is the local stack up? \`rowstream local up\``,
      );
      return EXIT.usage;
    }
    console.error('rowstream: unexpected failure:', error);
    return EXIT.usage;
  }
}
