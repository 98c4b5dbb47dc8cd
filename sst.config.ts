import type { SSTConfig } from 'sst';
import { rowstreamApp } from './stacks/app.ts';
import { loadDeploySettings } from './stacks/settings.ts';

/**
 * The rowstream app on AWS, SST v2 (CDK): `npx sst deploy --stage prod`. A stage's settings come from
 * `.env.<stage>` (SST loads it before the stacks run); docs/deploy.md lists them. The default export is
 * SST's contract, the one exception to the named-exports rule.
 */
export default {
  config() {
    return { name: 'rowstream', region: process.env.AWS_REGION ?? 'us-east-1' };
  },
  stacks(app) {
    rowstreamApp(app, loadDeploySettings(process.env));
  },
} satisfies SSTConfig;
