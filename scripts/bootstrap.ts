import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { BOOTSTRAP_STACK, credentialsProblem, MIN_BOOTSTRAP_VERSION } from '../cli/doctor.ts';
import { stageEnv, stageRegion } from '../stacks/stage-env.ts';

/**
 * `npm run bootstrap -- --stage <stage>`: checks the AWS credentials (STS GetCallerIdentity) first, then
 * runs `sst bootstrap` for the stage's account and region, then checks the CDK bootstrap stack exists.
 * `sst bootstrap` alone, without credentials, prints nothing and exits 0.
 */
const { values } = parseArgs({ options: { stage: { type: 'string' } }, strict: true });
const stage = values.stage;
if (!stage || stage === 'local') {
  console.error('usage: npm run bootstrap -- --stage <stage>   (the local stack needs no bootstrap)');
  process.exit(1);
}
const root = resolve(import.meta.dirname, '..');
/** SST v2's own bootstrap stack (sst/bootstrap.js), created with CDK's by `sst bootstrap`. */
const SST_BOOTSTRAP_STACK = 'SSTBootstrap';
const fail = (why: string): never => {
  console.error(`bootstrap of stage ${stage} FAILED: ${why}`);
  process.exit(1);
};

// The same environment and region `sst` will use: the shell, then .env, .env.<stage> (sst.config.ts).
const env = stageEnv(root, stage);
for (const k of ['AWS_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
  if (env[k] !== undefined) process.env[k] = env[k];
}
const region = stageRegion(root, stage);

console.log(`== credentials (stage ${stage}, region ${region})`);
const sts = new STSClient({ region, maxAttempts: 2 });
const id = await sts
  .send(new GetCallerIdentityCommand({}))
  .catch((e: unknown) => fail(credentialsProblem(e)));
sts.destroy();
console.log(`ok  ${id.Arn} (account ${id.Account})`);

console.log(`== sst bootstrap --stage ${stage}`);
const sst = spawnSync('npx', ['sst', 'bootstrap', '--stage', stage], { cwd: root, stdio: 'inherit' });
if (sst.status !== 0) fail(`sst bootstrap exited with ${sst.status ?? sst.signal}`);

// sst can exit 0 having done nothing: the two stacks it creates are the proof (CDK's toolkit stack, which
// `sst deploy` publishes assets through, and SST's own).
const cfn = new CloudFormationClient({ region, maxAttempts: 2 });
for (const name of [BOOTSTRAP_STACK, SST_BOOTSTRAP_STACK]) {
  const out = await cfn
    .send(new DescribeStacksCommand({ StackName: name }))
    .catch((e: Error) => fail(`no ${name} stack in ${region} after sst bootstrap: ${e.message}`));
  const st = out.Stacks?.[0];
  if (!st?.StackStatus || !/^(CREATE|UPDATE)_COMPLETE$/.test(st.StackStatus))
    fail(`${name} in ${region} is ${st?.StackStatus ?? 'missing'}`);
  if (name === BOOTSTRAP_STACK) {
    const version = Number(st?.Outputs?.find((o) => o.OutputKey === 'BootstrapVersion')?.OutputValue ?? 0);
    if (version < MIN_BOOTSTRAP_VERSION)
      fail(
        `${name} in ${region} is version ${version || 'unknown'}, at least ${MIN_BOOTSTRAP_VERSION} is needed`,
      );
  }
  console.log(`ok  ${name}: ${st?.StackStatus}`);
}
cfn.destroy();
console.log(
  `bootstrapped: account ${id.Account}, region ${region}. Next: npm run deploy -- --stage ${stage}`,
);
process.exit(0);
