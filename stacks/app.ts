import { Aspects } from 'aws-cdk-lib';
import type { App } from 'sst/constructs';
import { Bus } from './Bus.ts';
import { CheckovHelperSkips } from './checkov.ts';
import { tagApp } from './common.ts';
import { Monitoring } from './Monitoring.ts';
import { Pipeline } from './Pipeline.ts';
import { Storage } from './Storage.ts';
import { bindSettings, type DeploySettings } from './settings.ts';

/** Every stack of the app, in dependency order. */
export const STACKS = [Bus, Storage, Monitoring, Pipeline] as const;

/**
 * Composes the app for a stage: the one place both sst.config.ts and the offline tests go through, so
 * the tests synthesize exactly what `sst deploy` deploys.
 */
export function rowstreamApp(app: App, settings: DeploySettings): void {
  bindSettings(app, settings);
  tagApp(app, app.stage);
  for (const s of STACKS) app.stack(s);
  // checkov skips on the custom resource providers CDK and SST generate (stacks/checkov.ts).
  Aspects.of(app).add(new CheckovHelperSkips());
}
