import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { printDoctor, runDoctor } from '../cli/doctor.ts';
import { RUNBOOKS_KEY } from '../monitoring/alarms.ts';
import { STACKS } from '../stacks/app.ts';
import { stageEnv } from '../stacks/stage-env.ts';

/**
 * `npm run deploy -- --stage <stage>`: doctor first (nothing is deployed when it finds a problem), then
 * `sst deploy`, then each stack and the outputs an operator needs are checked to exist. Any missing
 * piece is an error with its cause and a non-zero exit: `sst deploy` alone can print nothing and exit 0
 * (no credentials).
 */
const { values } = parseArgs({ options: { stage: { type: 'string' } }, strict: true });
const stage = values.stage;
if (!stage || stage === 'local') {
  console.error('usage: npm run deploy -- --stage <stage>   (the local stack is `npm run local:up`)');
  process.exit(1);
}
const root = resolve(import.meta.dirname, '..');
const fail = (why: string): never => {
  console.error(`deploy of stage ${stage} FAILED: ${why}`);
  process.exit(1);
};

console.log(`== doctor (stage ${stage})`);
if (!printDoctor(await runDoctor({ root, stage }), (l) => console.log(l)))
  fail('the doctor found problems (above); nothing was deployed');

console.log(`== sst deploy --stage ${stage}`);
const sst = spawnSync('npx', ['sst', 'deploy', '--stage', stage], { cwd: root, stdio: 'inherit' });
if (sst.status !== 0) fail(`sst deploy exited with ${sst.status ?? sst.signal}`);

/** Outputs each stack must have after a deploy (what docs/deploy.md tells the operator to use). */
const OUTPUTS: Record<string, readonly string[]> = {
  Bus: ['BusName', 'BusArn', 'ArchiveArn', 'PlannerQueueUrl', 'AlertDeliveryDlqArn'],
  Storage: ['Bucket', 'Runbooks'],
  Monitoring: ['TopicCriticalArn', 'TopicWarningArn', 'TopicInfoArn'],
  Pipeline: ['ProducerSecurityGroupId', 'ProducerClusterName', 'ProducerServiceName', 'ProducerTaskRoleArn'],
};
console.log('== checking the deployed stacks');
const env = stageEnv(root, stage);
const cfn = new CloudFormationClient({ region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1' });
const found: Record<string, string> = {};
for (const s of STACKS) {
  const name = `${stage}-rowstream-${s.name}`;
  const out = await cfn
    .send(new DescribeStacksCommand({ StackName: name }))
    .catch((e: Error) => fail(`stack ${name}: ${e.message}`));
  const st = out.Stacks?.[0];
  if (!st?.StackStatus || !/^(CREATE|UPDATE)_COMPLETE$/.test(st.StackStatus))
    fail(
      `stack ${name} is ${st?.StackStatus ?? 'missing'}${st?.StackStatusReason ? ` (${st.StackStatusReason})` : ''}`,
    );
  for (const key of OUTPUTS[s.name] ?? []) {
    const v = st?.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
    if (!v) fail(`stack ${name} has no output ${key}`);
    found[key] = v as string;
  }
  console.log(`ok  ${name}: ${st?.StackStatus}`);
}
cfn.destroy();
// The runbooks the alarms and alert messages link must be in the bucket (the Storage stack ships them).
const s3 = new S3Client({ region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1' });
await s3
  .send(new HeadObjectCommand({ Bucket: found.Bucket, Key: RUNBOOKS_KEY }))
  .catch((e: Error) =>
    fail(`s3://${found.Bucket}/${RUNBOOKS_KEY}, which the alarms link, is missing: ${e.message}`),
  );
s3.destroy();
console.log(`ok  runbooks: s3://${found.Bucket}/${RUNBOOKS_KEY}`);
for (const [k, v] of Object.entries(found)) console.log(`  ${k} = ${v}`);
console.log(`deployed. For the CLI: export ROWSTREAM_STAGE=${stage} ROWSTREAM_BUCKET=${found.Bucket}`);
process.exit(0);
