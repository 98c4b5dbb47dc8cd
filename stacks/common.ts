import { Aws, RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { APP, resourceNames } from '../topology/topology.ts';
import type { DeploySettings } from './settings.ts';

/** Cost allocation tags: the cost tracker filters Cost Explorer by `app`, and breaks down by `service`. */
export function tagService(scope: IConstruct, service: string): void {
  Tags.of(scope).add('service', service);
}

export function tagApp(scope: IConstruct, stage: string): void {
  Tags.of(scope).add('app', APP);
  Tags.of(scope).add('stage', stage);
}

/** Production keeps its data when the stack goes away; every other stage cleans up after itself. */
export function removalFor(stage: string): RemovalPolicy {
  return stage === 'prod' ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
}

/** An ARN in this stack's partition/region/account, built from a name (no cross-stack token needed). */
export function arn(
  service: string,
  resource: string,
  opts: { region?: boolean; account?: boolean } = {},
): string {
  const region = opts.region === false ? '' : Aws.REGION;
  const account = opts.account === false ? '' : Aws.ACCOUNT_ID;
  return `arn:${Aws.PARTITION}:${service}:${region}:${account}:${resource}`;
}

/** Turns the topology's raw EventBridge pattern (`detail-type`) into CDK's camelCase `EventPattern`. */
export function cdkEventPattern(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(raw).map(([k, v]) => [k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  );
}

/**
 * The data bucket's name in a stage. Bucket names are global across all AWS accounts, so the default
 * carries the account and region (`rowstream-prod-data` would collide with anyone else's deployment);
 * `ROWSTREAM_BUCKET_NAME` sets it outright.
 */
export function bucketNameFor(scope: IConstruct, stage: string, settings: DeploySettings): string {
  const { account, region } = Stack.of(scope);
  return settings.bucketName ?? `${resourceNames(stage).bucket}-${account}-${region}`;
}
