// biome-ignore-all lint/suspicious/noExplicitAny: CloudFormation templates are untyped JSON, walked by shape.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { App, getStack } from 'sst/constructs';
import { initProject } from 'sst/project.js';
import { rowstreamApp, STACKS } from '../stacks/app.ts';
import type { DeploySettings } from '../stacks/settings.ts';

/** Settings a test stage deploys with: stub VPC and MSK values (synthesis never looks them up). */
export function testSettings(overrides: Partial<DeploySettings> = {}): DeploySettings {
  return {
    vpc: {
      vpcId: 'vpc-0123456789abcdef0',
      subnetIds: ['subnet-0aaaaaaaaaaaaaaa1', 'subnet-0bbbbbbbbbbbbbbb2'],
      azs: ['eu-west-1a', 'eu-west-1b'],
    },
    kafka: {
      auth: 'msk-iam',
      brokers: 'b-1.rowstream.abc123.c2.kafka.eu-west-1.amazonaws.com:9098',
      secretArn: null,
      clusterArn:
        'arn:aws:kafka:eu-west-1:123456789012:cluster/rowstream/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab-2',
      secretKeyArn: null,
      securityGroupId: 'sg-0123456789abcdef0',
      ports: { from: 9098, to: 9098 },
      defaultTopic: 'rowstream.rows',
      allowedTopics: ['rowstream.rows', 'rowstream.audit'],
    },
    producer: {
      cpu: 512,
      memoryMiB: 1024,
      minTasks: 1,
      maxTasks: 4,
      concurrency: 2,
      spot: false,
      securityGroupIds: [],
      image: 'public.ecr.aws/docker/library/node:24-slim',
    },
    bucketName: null,
    lifecycle: {
      rejectedExpireDays: 90,
      inboundExpireDays: 30,
      processedExpireDays: 30,
      failedExpireDays: 90,
      plansExpireDays: 90,
    },
    sourceFate: 'tag',
    monthlyBudgetUsd: 50,
    logRetentionDays: 30,
    schemaRegistry: null,
    ...overrides,
  };
}

export type StackName = (typeof STACKS)[number]['name'];

export interface Synthesized {
  readonly stage: string;
  readonly templates: Record<StackName, Template>;
  /** Every resource of every stack: logical id -> { Type, Properties, ... }, with its stack. */
  readonly resources: readonly {
    stack: StackName;
    id: string;
    type: string;
    props: Record<string, any>;
    raw: any;
  }[];
}

let initialized: string | null = null;

/**
 * Synthesizes the whole app for a stage, offline: `initProject` reads sst.config.ts (config only), the
 * App runs every stack exactly as `sst deploy` does, and each stack becomes a CloudFormation template.
 */
export async function synth(stage: string, settings: DeploySettings = testSettings()): Promise<Synthesized> {
  if (initialized !== stage) {
    await initProject({ stage });
    initialized = stage;
  }
  // The cloud assembly goes to a directory of our own, removed once the templates are read: CDK's
  // default is a new `cdk.out*` directory in the system temp dir per synth (~25 MB, never removed).
  const outdir = mkdtempSync(join(tmpdir(), 'rowstream-synth-'));
  let templates: Record<StackName, Template>;
  try {
    const app = new App(
      {
        mode: 'deploy',
        stage,
        name: 'rowstream',
        region: 'eu-west-1',
        account: '123456789012',
      },
      { outdir },
    );
    rowstreamApp(app, settings);
    templates = Object.fromEntries(
      STACKS.map((s) => [
        s.name,
        Template.fromStack(getStack(s) as unknown as Parameters<typeof Template.fromStack>[0]),
      ]),
    ) as Record<StackName, Template>;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
  const resources = Object.entries(templates).flatMap(([stack, t]) =>
    Object.entries(t.toJSON().Resources as Record<string, any>).map(([id, raw]) => ({
      stack: stack as StackName,
      id,
      type: raw.Type as string,
      props: (raw.Properties ?? {}) as Record<string, any>,
      raw,
    })),
  );
  return { stage, templates, resources };
}

/** Synthesizing a stage takes ~1 s alone, far longer on a loaded CI machine: hooks that synth get this. */
export const SYNTH_TIMEOUT_MS = 180_000;
