import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { runLogged } from '../local/processes.ts';
import { synthStage } from '../stacks/synth.ts';

/**
 * `npm run cfn:check`: the CloudFormation checks CI runs over the prod templates (scripts/test-all.sh).
 *
 * 1. Installs cfn-lint and checkov (PyPI, scripts/cfn-requirements.txt, every transitive package pinned
 *    by scripts/cfn-constraints.txt) into .local/cfn-venv, once: a marker holding the hash of both files
 *    makes the next run a no-op without any download, as for the local stack's moto.
 * 2. Synthesizes the prod stage offline from stacks/example.env (the docs' example settings).
 * 3. Runs cfn-lint (fails on any error; warnings are printed) and checkov (fails on any failed check:
 *    each one is fixed in stacks/ or skipped in the resource's metadata with a written reason, see
 *    stacks/checkov.ts).
 *
 * Options: `--stage <s>` (default prod), `--env-file <f>` (default stacks/example.env), `--out <dir>`
 * (default .local/cfn-check/<stage>), `--install-only`.
 */

const ROOT = resolve(import.meta.dirname, '..');
const VENV = join(ROOT, '.local', 'cfn-venv');
const PYTHON = join(VENV, 'bin', 'python');
const MARKER = join(VENV, '.rowstream-install.json');
const LOGS = join(ROOT, '.local', 'logs');
const INSTALL_LOG = join(LOGS, 'install-cfn.log');
const REQUIREMENTS = join(ROOT, 'scripts', 'cfn-requirements.txt');
const CONSTRAINTS = join(ROOT, 'scripts', 'cfn-constraints.txt');

class CheckError extends Error {}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

function fingerprint(): string {
  return createHash('sha256')
    .update(readFileSync(REQUIREMENTS))
    .update(readFileSync(CONSTRAINTS))
    .digest('hex');
}

/** Creates .local/cfn-venv with the pinned tools, unless the marker says it holds exactly them. */
async function installCfnTools(log: (line: string) => void): Promise<'cached' | 'installed'> {
  const want = fingerprint();
  const marker = existsSync(MARKER)
    ? (JSON.parse(readFileSync(MARKER, 'utf8')) as { fingerprint?: string; installedAt?: string })
    : null;
  if (marker?.fingerprint === want && existsSync(PYTHON)) {
    log(`cfn-lint + checkov: cached in ${relative(ROOT, VENV)} (installed ${marker.installedAt})`);
    return 'cached';
  }
  const started = performance.now();
  const opts = { cwd: ROOT, logFile: INSTALL_LOG };
  if (!existsSync(PYTHON)) {
    const venv = await runLogged('python3', ['-m', 'venv', VENV], opts).catch((e: Error) => {
      throw new CheckError(`python3 is missing (${e.message}): apt-get install python3 python3-venv`);
    });
    if (venv.code !== 0 || !existsSync(PYTHON))
      throw new CheckError(`python3 -m venv failed (apt-get install python3-venv); see ${INSTALL_LOG}`);
  }
  log(
    `cfn-lint + checkov: pip install -r scripts/cfn-requirements.txt (log: ${relative(ROOT, INSTALL_LOG)})`,
  );
  const pip = await runLogged(
    PYTHON,
    ['-m', 'pip', 'install', '--disable-pip-version-check', '-r', REQUIREMENTS, '-c', CONSTRAINTS],
    opts,
  );
  if (pip.code !== 0) throw new CheckError(`pip exited with ${pip.code}; see ${INSTALL_LOG}`);
  writeFileSync(
    MARKER,
    `${JSON.stringify({ fingerprint: want, installedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  log(`cfn-lint + checkov: installed in ${relative(ROOT, VENV)} in ${seconds(started)}`);
  return 'installed';
}

interface LintMatch {
  readonly Level: 'Error' | 'Warning' | 'Informational';
  readonly Rule: { readonly Id: string };
  readonly Message: string;
  readonly Filename: string;
  readonly Location: { readonly Start: { readonly LineNumber: number } };
}

/** cfn-lint over the templates: errors fail, warnings and informational findings are only counted. */
async function cfnLint(templates: readonly string[], log: (line: string) => void): Promise<number> {
  const r = await runLogged(join(VENV, 'bin', 'cfn-lint'), ['--format', 'json', ...templates], {
    cwd: ROOT,
    logFile: join(LOGS, 'cfn-lint.log'),
  });
  let matches: LintMatch[];
  try {
    matches = JSON.parse(r.stdout || '[]') as LintMatch[];
  } catch {
    throw new CheckError(
      `cfn-lint exited with ${r.code} without a JSON report; see ${join(LOGS, 'cfn-lint.log')}`,
    );
  }
  const count = (level: LintMatch['Level']) => matches.filter((m) => m.Level === level).length;
  for (const m of matches)
    log(
      `  ${m.Level.padEnd(7)} ${m.Rule.Id} ${relative(ROOT, m.Filename)}:${m.Location.Start.LineNumber} ${m.Message}`,
    );
  log(
    `cfn-lint: ${count('Error')} errors, ${count('Warning')} warnings, ${count('Informational')} informational`,
  );
  return count('Error');
}

interface CheckovCheck {
  readonly check_id: string;
  readonly check_name: string;
  readonly resource: string;
  readonly file_path: string;
  readonly check_result?: { readonly suppress_comment?: string };
}
interface CheckovReport {
  readonly results: {
    readonly failed_checks: CheckovCheck[];
    readonly skipped_checks: CheckovCheck[];
  };
  readonly summary: { passed: number; failed: number; skipped: number; parsing_errors: number };
}

/** checkov over the templates: every failed check fails; skips (with their reasons) are counted. */
async function checkov(templates: readonly string[], log: (line: string) => void): Promise<number> {
  const logFile = join(LOGS, 'checkov.log');
  const r = await runLogged(
    join(VENV, 'bin', 'checkov'),
    [
      '--framework',
      'cloudformation',
      ...templates.flatMap((t) => ['-f', t]),
      '--output',
      'json',
      // Offline: nothing fetched from the Prisma Cloud platform.
      '--skip-download',
    ],
    {
      cwd: ROOT,
      logFile,
      env: { ...process.env, BC_SKIP_MAPPING: 'TRUE', CHECKOV_NO_VERSION_CHECK: 'TRUE' },
    },
  );
  let reports: CheckovReport[];
  try {
    const parsed = JSON.parse(r.stdout) as CheckovReport | CheckovReport[];
    reports = Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    throw new CheckError(`checkov exited with ${r.code} without a JSON report; see ${logFile}`);
  }
  const failed = reports.flatMap((x) => x.results.failed_checks);
  const skipped = reports.flatMap((x) => x.results.skipped_checks);
  const sum = (k: keyof CheckovReport['summary']) => reports.reduce((n, x) => n + x.summary[k], 0);
  for (const f of failed)
    log(
      `  FAILED  ${f.check_id} ${f.resource} (${relative(ROOT, resolve(ROOT, f.file_path.replace(/^\//, '')))}): ${f.check_name}`,
    );
  const bare = skipped.filter((s) => !s.check_result?.suppress_comment?.trim());
  for (const s of bare) log(`  SKIPPED WITHOUT A REASON  ${s.check_id} ${s.resource}`);
  log(
    `checkov: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped with a reason in the template metadata, ${sum('parsing_errors')} parsing errors`,
  );
  return sum('failed') + sum('parsing_errors') + bare.length;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stage: { type: 'string', default: 'prod' },
      'env-file': { type: 'string', default: 'stacks/example.env' },
      out: { type: 'string' },
      'install-only': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const log = (line: string) => console.log(line);
  mkdirSync(LOGS, { recursive: true });
  const started = performance.now();
  await installCfnTools(log);
  if (values['install-only']) return 0;

  const stage = values.stage;
  const out = resolve(values.out ?? join(ROOT, '.local', 'cfn-check', stage));
  let t = performance.now();
  const synth = await synthStage({ root: ROOT, stage, out, envFile: values['env-file'] });
  const templates = Object.values(synth.templates);
  log(
    `synthesized stage ${stage} from ${values['env-file']}: ${templates.length} templates in ${relative(ROOT, out)} (${seconds(t)})`,
  );

  t = performance.now();
  const lintErrors = await cfnLint(templates, log);
  log(`  (${seconds(t)})`);
  t = performance.now();
  const checkovFailures = await checkov(templates, log);
  log(`  (${seconds(t)})`);

  const ok = lintErrors === 0 && checkovFailures === 0;
  log(
    ok
      ? `CloudFormation checks of ${stage}: passed (${seconds(started)})`
      : `CloudFormation checks of ${stage}: FAILED — fix the stacks, or skip a checkov check on its resource with a written reason (stacks/checkov.ts)`,
  );
  return ok ? 0 : 1;
}

main().then(
  (code) => {
    // CDK and SST leave handles open.
    process.exit(code);
  },
  (e: unknown) => {
    console.error(e instanceof CheckError ? `cfn:check: ${e.message}` : e);
    process.exit(1);
  },
);
