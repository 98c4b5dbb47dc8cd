import { fileURLToPath } from 'node:url';
import type { SSTConfig } from 'sst';
import { rowstreamApp } from './stacks/app.ts';
import { loadDeploySettings } from './stacks/settings.ts';
import { stageRegion } from './stacks/stage-env.ts';

/**
 * The rowstream app on AWS, SST v2 (CDK): `npm run deploy -- --stage prod`. A stage's settings come from
 * `.env.<stage>` (SST loads it before the stacks run); docs/deploy.md lists them. SST calls `config()`
 * before loading that file, so the region is read from it here. The default export is SST's contract,
 * the one exception to the named-exports rule.
 */
export default {
  config(globals: { stage?: string }) {
    return {
      name: 'rowstream',
      region: stageRegion(fileURLToPath(new URL('.', import.meta.url)), globals.stage),
    };
  },
  stacks(app) {
    rowstreamApp(app, loadDeploySettings(process.env));
  },
} satisfies SSTConfig;
