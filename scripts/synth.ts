import { relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DeploySettingsError } from '../stacks/settings.ts';
import { synthStage } from '../stacks/synth.ts';

/**
 * `npm run synth -- --stage <stage> --out <dir> [--env-file <file>] [--account <id>]`: the stage's
 * CloudFormation templates, offline. Settings come from `.env`, `.env.<stage>` (as for a deploy) and
 * `--env-file`; CI synthesizes prod from stacks/example.env.
 */
const { values } = parseArgs({
  options: {
    stage: { type: 'string' },
    out: { type: 'string' },
    'env-file': { type: 'string' },
    account: { type: 'string' },
  },
  strict: true,
});
if (!values.stage || !values.out) {
  console.error('usage: npm run synth -- --stage <stage> --out <dir> [--env-file <file>] [--account <id>]');
  process.exit(1);
}
const root = resolve(import.meta.dirname, '..');
try {
  const r = await synthStage({
    root,
    stage: values.stage,
    out: values.out,
    envFile: values['env-file'],
    account: values.account,
  });
  console.log(
    `synthesized stage ${values.stage} (${r.region}, account ${r.account}${
      values.account ? '' : ': a placeholder, no AWS call was made'
    })`,
  );
  for (const [stack, file] of Object.entries(r.templates))
    console.log(`  ${stack}: ${relative(process.cwd(), file)}`);
} catch (e) {
  if (e instanceof DeploySettingsError) {
    console.error(e.message);
    process.exit(1);
  }
  throw e;
}
// CDK and SST leave handles open; the templates are written.
process.exit(0);
