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

/** Settings that were renamed: setting the old name fails the synth instead of being ignored. */
const RENAMED: Record<string, string> = {
  ROWSTREAM_KAFKA_TOPIC: 'ROWSTREAM_DEFAULT_TOPIC (and ROWSTREAM_ALLOWED_TOPICS)',
  ROWSTREAM_PRODUCER_DESIRED_COUNT: 'ROWSTREAM_PRODUCER_MIN_TASKS / ROWSTREAM_PRODUCER_MAX_TASKS',
};

/** A Kafka topic name (1-249 of [a-zA-Z0-9._-], not `.`/`..`), never a Kafka-internal `__` topic. */
const TopicName = z
  .string()
  .regex(/^[a-zA-Z0-9._-]{1,249}$/, 'a Kafka topic name')
  .refine((t) => t !== '.' && t !== '..' && !t.startsWith('__'), 'not a Kafka-internal topic');

/**
 * The topics a stage may write: the default plus `ROWSTREAM_ALLOWED_TOPICS` (comma-separated), or an
 * error. `*` (any topic, the local stage's value) is refused: cloud topics are created by an operator,
 * and under MSK IAM the grants name each topic.
 */
export function allowedTopics(
  defaultTopic: string,
  list: string | undefined,
): readonly string[] | { error: string } {
  const names = (list ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  if (names.includes('*'))
    return { error: '`*` is for the local stage only: list the topics (comma-separated)' };
  for (const t of names) {
    const r = TopicName.safeParse(t);
    if (!r.success) return { error: `"${t}": ${r.error.issues[0]?.message ?? 'invalid'}` };
  }
  return [...new Set([defaultTopic, ...names])];
}

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
    /**
     * KMS key of the SCRAM secret. MSK only takes SCRAM secrets encrypted with a customer managed key,
     * so the task's execution role must be allowed to decrypt with it to inject the credentials.
     */
    ROWSTREAM_KAFKA_SECRET_KEY_ARN: z.string().startsWith('arn:').optional(),
    /** Security group of the Kafka brokers: the stack adds an ingress rule from the producer's group. */
    ROWSTREAM_KAFKA_SECURITY_GROUP_ID: z
      .string()
      .regex(/^sg-[0-9a-f]+$/, 'a security group id (sg-...)')
      .optional(),
    /** Broker ports the ingress rule opens (MSK: 9092 plaintext, 9094 TLS, 9096 SCRAM, 9098 IAM). */
    ROWSTREAM_KAFKA_PORTS: z
      .string()
      .regex(/^\d+(-\d+)?$/, 'a port or a range like 9092-9098')
      .default('9092-9098'),
    /** Security groups the producer tasks join besides their own (e.g. an existing "Kafka clients" group). */
    ROWSTREAM_PRODUCER_SECURITY_GROUP_IDS: csv.pipe(z.array(z.string().regex(/^sg-[0-9a-f]+$/))),
    /** The planner's default topic (and the producer's); must exist: topics are never auto-created in the cloud. */
    ROWSTREAM_DEFAULT_TOPIC: TopicName.default('rowstream.rows'),
    /** Topics a per-object override may name; unset = the default topic only. No `*` in the cloud. */
    ROWSTREAM_ALLOWED_TOPICS: z.string().optional(),
    ROWSTREAM_PRODUCER_CPU: z.coerce.number().int().default(512),
    ROWSTREAM_PRODUCER_MEMORY_MIB: z.coerce.number().int().default(1024),
    /** Producer tasks: service auto scaling keeps the count between these on the job backlog. */
    ROWSTREAM_PRODUCER_MIN_TASKS: z.coerce
      .number()
      .int()
      .min(1, 'at least 1: target tracking cannot scale a service out from zero tasks')
      .default(1),
    ROWSTREAM_PRODUCER_MAX_TASKS: z.coerce.number().int().positive().default(4),
    /** Jobs one task runs at once (the producer's ROWSTREAM_PRODUCER_CONCURRENCY; the scaling target). */
    ROWSTREAM_PRODUCER_CONCURRENCY: z.coerce.number().int().positive().default(1),
    ROWSTREAM_PRODUCER_SPOT: flag(false),
    /** The data bucket's name; default `rowstream-<stage>-data-<account>-<region>` (bucket names are global). */
    ROWSTREAM_BUCKET_NAME: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'a valid S3 bucket name')
      .optional(),
    ROWSTREAM_INBOUND_EXPIRE_DAYS: int(30),
    /** An image URI to run instead of building services/producer from the repo's Dockerfile. */
    ROWSTREAM_PRODUCER_IMAGE: z.string().optional(),
    ROWSTREAM_REJECTED_EXPIRE_DAYS: int(90),
    /**
     * What happens to a source object when its job ends: `tag` (job id and outcome tags, the object stays
     * in inbound/) or `move` (tagged, then moved to processed/ or failed/; docs/planner.md).
     */
    ROWSTREAM_SOURCE_FATE: z.enum(['tag', 'move']).default('tag'),
    /** Lifecycle of moved objects (ROWSTREAM_SOURCE_FATE=move); 0 = keep. */
    ROWSTREAM_PROCESSED_EXPIRE_DAYS: int(30),
    ROWSTREAM_FAILED_EXPIRE_DAYS: int(90),
    /**
     * plans/ (large plans, services/shared/plan.ts): a job needs its plan as long as it can run or be
     * resumed, i.e. while its source object is kept; 0 = never expire. Not below the inbound days (nor
     * the failed/ days when sources are moved).
     */
    ROWSTREAM_PLANS_EXPIRE_DAYS: int(90),
    ROWSTREAM_MONTHLY_BUDGET_USD: z.coerce.number().positive().default(50),
    ROWSTREAM_LOG_RETENTION_DAYS: int(30),
    /**
     * An existing Glue Schema Registry to use instead of creating `rowstream-<stage>-schemas`. AWS
     * allows 10 registries per account and Region by default, so development stages sharing one
     * account share one registry (their `<topic>-value` schemas are then shared too).
     */
    ROWSTREAM_SCHEMA_REGISTRY: z
      .string()
      .regex(/^[a-zA-Z0-9-_$#.]{1,255}$/, 'a Glue registry name (letters, digits, - _ $ # .)')
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.ROWSTREAM_PRODUCER_MIN_TASKS > s.ROWSTREAM_PRODUCER_MAX_TASKS) {
      ctx.addIssue({
        code: 'custom',
        path: ['ROWSTREAM_PRODUCER_MIN_TASKS'],
        message: `above ROWSTREAM_PRODUCER_MAX_TASKS (${s.ROWSTREAM_PRODUCER_MAX_TASKS})`,
      });
    }
    // A FAILED job can be resumed while its source is kept (in inbound/, or failed/ when moved): its
    // plan must live at least as long. 0 = never expire.
    const days = (n: number) => n || Number.POSITIVE_INFINITY;
    const sourceKept: [string, number][] = [
      ['ROWSTREAM_INBOUND_EXPIRE_DAYS', s.ROWSTREAM_INBOUND_EXPIRE_DAYS],
      ...(s.ROWSTREAM_SOURCE_FATE === 'move'
        ? ([['ROWSTREAM_FAILED_EXPIRE_DAYS', s.ROWSTREAM_FAILED_EXPIRE_DAYS]] as [string, number][])
        : []),
    ];
    for (const [name, n] of sourceKept) {
      if (days(s.ROWSTREAM_PLANS_EXPIRE_DAYS) < days(n)) {
        ctx.addIssue({
          code: 'custom',
          path: ['ROWSTREAM_PLANS_EXPIRE_DAYS'],
          message: `below ${name} (${n || 'never'}): a FAILED job kept for a resume would lose its plan before its source (0 = never expire)`,
        });
      }
    }
    const allowed = allowedTopics(s.ROWSTREAM_DEFAULT_TOPIC, s.ROWSTREAM_ALLOWED_TOPICS);
    if ('error' in allowed) {
      ctx.addIssue({ code: 'custom', path: ['ROWSTREAM_ALLOWED_TOPICS'], message: allowed.error });
    }
    if (
      s.ROWSTREAM_KAFKA_AUTH === 'scram' &&
      s.ROWSTREAM_KAFKA_SECRET_ARN &&
      !s.ROWSTREAM_KAFKA_SECRET_KEY_ARN
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['ROWSTREAM_KAFKA_SECRET_KEY_ARN'],
        message:
          'required when ROWSTREAM_KAFKA_AUTH=scram: MSK SCRAM secrets use a customer managed KMS key, ' +
          'which the task must be allowed to decrypt with',
      });
    }
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
    readonly secretKeyArn: string | null;
    /** The brokers' security group (ingress from the producer is added) and the ports it opens. */
    readonly securityGroupId: string | null;
    readonly ports: { readonly from: number; readonly to: number };
    /** The planner's default topic; always the first of {@link allowedTopics}. */
    readonly defaultTopic: string;
    readonly allowedTopics: readonly string[];
  };
  readonly producer: {
    readonly cpu: number;
    readonly memoryMiB: number;
    readonly minTasks: number;
    readonly maxTasks: number;
    /** Jobs per task at once. */
    readonly concurrency: number;
    readonly spot: boolean;
    readonly securityGroupIds: readonly string[];
    /** null = build the image from stacks/producer.Dockerfile at deploy. */
    readonly image: string | null;
  };
  /** null = `rowstream-<stage>-data-<account>-<region>`. */
  readonly bucketName: string | null;
  readonly lifecycle: {
    readonly rejectedExpireDays: number;
    readonly inboundExpireDays: number;
    /** Rules on processed/ and failed/ exist only when sources are moved there. */
    readonly processedExpireDays: number;
    readonly failedExpireDays: number;
    readonly plansExpireDays: number;
  };
  /** `tag`: finished sources stay in inbound/, tagged; `move`: moved to processed/ or failed/. */
  readonly sourceFate: 'tag' | 'move';
  readonly monthlyBudgetUsd: number;
  readonly logRetentionDays: number;
  /** An existing registry to use; null = create `rowstream-<stage>-schemas` with the stage. */
  readonly schemaRegistry: string | null;
}

export class DeploySettingsError extends Error {
  override readonly name = 'DeploySettingsError';
}

/** Parses the stage's settings; throws {@link DeploySettingsError} naming every bad setting. */
export function loadDeploySettings(env: NodeJS.ProcessEnv): DeploySettings {
  const r = DeployEnv.safeParse(env);
  const renamed = Object.keys(RENAMED).filter((k) => env[k] !== undefined);
  if (!r.success || renamed.length > 0) {
    const lines = [
      ...renamed.map((k) => `  ${k}: no longer read: use ${RENAMED[k]}`),
      ...(r.error?.issues ?? []).map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`),
    ];
    throw new DeploySettingsError(
      `invalid deploy settings (see docs/deploy.md, "Configuration"):\n${lines.join('\n')}`,
    );
  }
  const s = r.data;
  const [from, to = from] = s.ROWSTREAM_KAFKA_PORTS.split('-').map(Number) as [number, number?];
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
      secretKeyArn: s.ROWSTREAM_KAFKA_SECRET_KEY_ARN ?? null,
      securityGroupId: s.ROWSTREAM_KAFKA_SECURITY_GROUP_ID ?? null,
      ports: { from, to },
      defaultTopic: s.ROWSTREAM_DEFAULT_TOPIC,
      allowedTopics: allowedTopics(s.ROWSTREAM_DEFAULT_TOPIC, s.ROWSTREAM_ALLOWED_TOPICS) as string[],
    },
    producer: {
      cpu: s.ROWSTREAM_PRODUCER_CPU,
      memoryMiB: s.ROWSTREAM_PRODUCER_MEMORY_MIB,
      minTasks: s.ROWSTREAM_PRODUCER_MIN_TASKS,
      maxTasks: s.ROWSTREAM_PRODUCER_MAX_TASKS,
      concurrency: s.ROWSTREAM_PRODUCER_CONCURRENCY,
      spot: s.ROWSTREAM_PRODUCER_SPOT,
      securityGroupIds: s.ROWSTREAM_PRODUCER_SECURITY_GROUP_IDS,
      image: s.ROWSTREAM_PRODUCER_IMAGE ?? null,
    },
    bucketName: s.ROWSTREAM_BUCKET_NAME ?? null,
    lifecycle: {
      rejectedExpireDays: s.ROWSTREAM_REJECTED_EXPIRE_DAYS,
      inboundExpireDays: s.ROWSTREAM_INBOUND_EXPIRE_DAYS,
      processedExpireDays: s.ROWSTREAM_PROCESSED_EXPIRE_DAYS,
      failedExpireDays: s.ROWSTREAM_FAILED_EXPIRE_DAYS,
      plansExpireDays: s.ROWSTREAM_PLANS_EXPIRE_DAYS,
    },
    sourceFate: s.ROWSTREAM_SOURCE_FATE,
    monthlyBudgetUsd: s.ROWSTREAM_MONTHLY_BUDGET_USD,
    logRetentionDays: s.ROWSTREAM_LOG_RETENTION_DAYS,
    schemaRegistry: s.ROWSTREAM_SCHEMA_REGISTRY ?? null,
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
