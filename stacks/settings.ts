import type { App } from 'sst/constructs';
import { z } from 'zod';

/**
 * Deploy-time settings of one stage, read once at synth from the environment (SST loads `.env`,
 * `.env.<stage>` and `.env.<stage>.local` before the stacks run, so a stage's settings live in a file
 * beside sst.config.ts). A missing or wrong setting fails the synth with its name, never the deploy.
 *
 * Tests bind explicit settings with {@link bindSettings}, so synthesis needs no AWS call and no env.
 */
const csv = z
  .string()
  .default('')
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  );
const int = (def: number) => z.coerce.number().int().nonnegative().default(def);
const flag = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1');

export const KafkaAuth = z.enum(['msk-iam', 'scram', 'none']);
export type KafkaAuth = z.infer<typeof KafkaAuth>;

export const DeployEnv = z
  .object({
    ROWSTREAM_VPC_ID: z.string().regex(/^vpc-[0-9a-f]+$/, 'a VPC id (vpc-...)'),
    ROWSTREAM_PRIVATE_SUBNET_IDS: csv.pipe(z.array(z.string().regex(/^subnet-[0-9a-f]+$/)).min(1)),
    ROWSTREAM_AVAILABILITY_ZONES: csv.pipe(z.array(z.string().min(1)).min(1)),
    /** Comma-separated bootstrap servers; or leave empty and name a secret holding them. */
    ROWSTREAM_KAFKA_BROKERS: z.string().default(''),
    /** Secrets Manager secret: JSON `{ "brokers": "...", "username": "...", "password": "..." }`. */
    ROWSTREAM_KAFKA_SECRET_ARN: z.string().startsWith('arn:').optional(),
    /** MSK cluster ARN (required for msk-iam: the IAM grants name the cluster, its topics and groups). */
    ROWSTREAM_KAFKA_CLUSTER_ARN: z.string().startsWith('arn:').optional(),
    ROWSTREAM_KAFKA_AUTH: KafkaAuth.default('msk-iam'),
    ROWSTREAM_KAFKA_TOPIC: z.string().min(1).default('rowstream.rows'),
    ROWSTREAM_PRODUCER_CPU: z.coerce.number().int().default(512),
    ROWSTREAM_PRODUCER_MEMORY_MIB: z.coerce.number().int().default(1024),
    ROWSTREAM_PRODUCER_DESIRED_COUNT: int(1),
    ROWSTREAM_PRODUCER_SPOT: flag(false),
    /** An image URI to run instead of building services/producer from the repo's Dockerfile. */
    ROWSTREAM_PRODUCER_IMAGE: z.string().optional(),
    ROWSTREAM_REJECTED_EXPIRE_DAYS: int(90),
    ROWSTREAM_PROCESSED_EXPIRE_DAYS: int(30),
    ROWSTREAM_MONTHLY_BUDGET_USD: z.coerce.number().positive().default(50),
    ROWSTREAM_LOG_RETENTION_DAYS: int(30),
  })
  .superRefine((s, ctx) => {
    if (!s.ROWSTREAM_KAFKA_BROKERS && !s.ROWSTREAM_KAFKA_SECRET_ARN) {
      ctx.addIssue({
        code: 'custom',
        path: ['ROWSTREAM_KAFKA_BROKERS'],
        message: 'set ROWSTREAM_KAFKA_BROKERS or ROWSTREAM_KAFKA_SECRET_ARN',
      });
    }
    if (s.ROWSTREAM_KAFKA_AUTH === 'msk-iam' && !s.ROWSTREAM_KAFKA_CLUSTER_ARN) {
      ctx.addIssue({
        code: 'custom',
        path: ['ROWSTREAM_KAFKA_CLUSTER_ARN'],
        message: 'required when ROWSTREAM_KAFKA_AUTH=msk-iam',
      });
    }
    if (s.ROWSTREAM_KAFKA_AUTH === 'scram' && !s.ROWSTREAM_KAFKA_SECRET_ARN) {
      ctx.addIssue({
        code: 'custom',
        path: ['ROWSTREAM_KAFKA_SECRET_ARN'],
        message: 'required when ROWSTREAM_KAFKA_AUTH=scram (the credentials live in the secret)',
      });
    }
    if (s.ROWSTREAM_PRIVATE_SUBNET_IDS.length !== s.ROWSTREAM_AVAILABILITY_ZONES.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['ROWSTREAM_AVAILABILITY_ZONES'],
        message: 'one availability zone per private subnet, in the same order',
      });
    }
  });

export interface DeploySettings {
  readonly vpc: {
    readonly vpcId: string;
    readonly subnetIds: readonly string[];
    readonly azs: readonly string[];
  };
  readonly kafka: {
    readonly auth: KafkaAuth;
    readonly brokers: string;
    readonly secretArn: string | null;
    readonly clusterArn: string | null;
    readonly topic: string;
  };
  readonly producer: {
    readonly cpu: number;
    readonly memoryMiB: number;
    readonly desiredCount: number;
    readonly spot: boolean;
    /** null = build the image from stacks/producer.Dockerfile at deploy. */
    readonly image: string | null;
  };
  readonly lifecycle: { readonly rejectedExpireDays: number; readonly processedExpireDays: number };
  readonly monthlyBudgetUsd: number;
  readonly logRetentionDays: number;
}

export class DeploySettingsError extends Error {
  override readonly name = 'DeploySettingsError';
}

/** Parses the stage's settings; throws {@link DeploySettingsError} naming every bad setting. */
export function loadDeploySettings(env: NodeJS.ProcessEnv): DeploySettings {
  const r = DeployEnv.safeParse(env);
  if (!r.success) {
    const lines = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new DeploySettingsError(
      `invalid deploy settings (see docs/deploy.md, "Configuration"):\n${lines.join('\n')}`,
    );
  }
  const s = r.data;
  return {
    vpc: {
      vpcId: s.ROWSTREAM_VPC_ID,
      subnetIds: s.ROWSTREAM_PRIVATE_SUBNET_IDS,
      azs: s.ROWSTREAM_AVAILABILITY_ZONES,
    },
    kafka: {
      auth: s.ROWSTREAM_KAFKA_AUTH,
      brokers: s.ROWSTREAM_KAFKA_BROKERS,
      secretArn: s.ROWSTREAM_KAFKA_SECRET_ARN ?? null,
      clusterArn: s.ROWSTREAM_KAFKA_CLUSTER_ARN ?? null,
      topic: s.ROWSTREAM_KAFKA_TOPIC,
    },
    producer: {
      cpu: s.ROWSTREAM_PRODUCER_CPU,
      memoryMiB: s.ROWSTREAM_PRODUCER_MEMORY_MIB,
      desiredCount: s.ROWSTREAM_PRODUCER_DESIRED_COUNT,
      spot: s.ROWSTREAM_PRODUCER_SPOT,
      image: s.ROWSTREAM_PRODUCER_IMAGE ?? null,
    },
    lifecycle: {
      rejectedExpireDays: s.ROWSTREAM_REJECTED_EXPIRE_DAYS,
      processedExpireDays: s.ROWSTREAM_PROCESSED_EXPIRE_DAYS,
    },
    monthlyBudgetUsd: s.ROWSTREAM_MONTHLY_BUDGET_USD,
    logRetentionDays: s.ROWSTREAM_LOG_RETENTION_DAYS,
  };
}

const bound = new WeakMap<App, DeploySettings>();

/** Binds a stage's settings to the app before its stacks run (sst.config.ts, or a test). */
export function bindSettings(app: App, settings: DeploySettings): void {
  bound.set(app, settings);
}

export function settingsOf(app: App): DeploySettings {
  const s = bound.get(app);
  if (!s)
    throw new DeploySettingsError('no deploy settings bound to the app: call bindSettings(app, ...) first');
  return s;
}

export const isProd = (stage: string) => stage === 'prod';
