import { isIP } from 'node:net';
import type {
  ConnectionOptions as PlatformaticConnection,
  SASLOptions as PlatformaticSasl,
} from '@platformatic/kafka';
import type { SASLOptions as KafkajsSasl } from 'kafkajs';
import { z } from 'zod';

/**
 * How to reach a Kafka cluster, whichever client talks to it: bootstrap servers, TLS, SASL.
 *
 * Parsed once at start from KAFKA_BROKERS, KAFKA_SSL, KAFKA_SASL_MECHANISM, KAFKA_USERNAME and
 * KAFKA_PASSWORD (what stacks/Pipeline.ts gives the producer task; ECS injects the SCRAM credentials
 * from the Secrets Manager secret), then mapped to each client's own option shape below.
 */
export interface KafkaConnection {
  readonly brokers: readonly string[];
  readonly ssl: boolean;
  readonly sasl: KafkaSasl;
}

export type ScramMechanism = 'scram-sha-256' | 'scram-sha-512';

export type KafkaSasl =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'scram';
      readonly mechanism: ScramMechanism;
      readonly username: string;
      // Never logged: connectionSummary() is what goes into logs.
      readonly password: string;
    }
  | { readonly kind: 'msk-iam'; readonly region: string };

/** A signed MSK IAM token and when it expires (ms since the epoch), as aws-msk-iam-sasl-signer-js returns it. */
export interface MskToken {
  readonly token: string;
  readonly expiryTime: number;
}
export type MskSigner = (region: string) => Promise<MskToken>;

/** What the token providers need; tests pass a stubbed signer so nothing calls AWS. */
export interface TokenDeps {
  readonly signer?: MskSigner;
  readonly now?: () => number;
}

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const BROKER = /^[^\s:,]+:\d{1,5}$/;

/**
 * The Kafka variables, as a zod shape to spread into a service's env schema. Blank values count as
 * unset: the stacks write `KAFKA_SASL_MECHANISM=''` when the cluster has no authentication.
 */
export const KafkaConnectionShape = {
  KAFKA_BROKERS: z
    .string()
    .min(1)
    .refine(
      (v) =>
        v
          .split(',')
          .map((b) => b.trim())
          .every((b) => BROKER.test(b)),
      'comma-separated host:port list, e.g. b-1.example:9098,b-2.example:9098',
    ),
  KAFKA_SSL: z.preprocess(blankToUndefined, z.enum(['true', 'false', '1', '0']).optional()),
  KAFKA_SASL_MECHANISM: z.preprocess(
    (v) => (typeof blankToUndefined(v) === 'string' ? (v as string).trim().toLowerCase() : undefined),
    z.enum(['aws-msk-iam', 'scram-sha-256', 'scram-sha-512', 'none']).optional(),
  ),
  KAFKA_USERNAME: z.preprocess(blankToUndefined, z.string().optional()),
  KAFKA_PASSWORD: z.preprocess(blankToUndefined, z.string().optional()),
};

type KafkaConnectionValues = z.infer<z.ZodObject<typeof KafkaConnectionShape>>;

/**
 * The rules between the variables, so a wrong combination fails at start with the variable's name
 * instead of as an authentication error from the broker mid-job.
 */
export function checkKafkaConnection(env: KafkaConnectionValues, ctx: z.RefinementCtx): void {
  const mechanism = env.KAFKA_SASL_MECHANISM;
  const issue = (path: keyof KafkaConnectionValues, message: string) =>
    ctx.addIssue({ code: 'custom', path: [path], message });
  if (mechanism === 'scram-sha-256' || mechanism === 'scram-sha-512') {
    const from = "(on ECS, injected from the Kafka secret's";
    if (!env.KAFKA_USERNAME)
      issue('KAFKA_USERNAME', `required when KAFKA_SASL_MECHANISM=${mechanism} ${from} "username")`);
    if (!env.KAFKA_PASSWORD)
      issue('KAFKA_PASSWORD', `required when KAFKA_SASL_MECHANISM=${mechanism} ${from} "password")`);
    return;
  }
  for (const name of ['KAFKA_USERNAME', 'KAFKA_PASSWORD'] as const) {
    if (!env[name]) continue;
    // A forgotten mechanism would connect without authentication and fail later, far from the cause.
    issue(
      name,
      mechanism === 'aws-msk-iam'
        ? 'not used with KAFKA_SASL_MECHANISM=aws-msk-iam (the IAM role signs in); remove it'
        : `set, but KAFKA_SASL_MECHANISM is ${mechanism ?? 'unset'}: set it to scram-sha-512 or scram-sha-256`,
    );
  }
  if (mechanism === 'aws-msk-iam' && (env.KAFKA_SSL === 'false' || env.KAFKA_SSL === '0')) {
    issue(
      'KAFKA_SSL',
      'MSK IAM authentication is TLS-only (port 9098): set KAFKA_SSL=true or leave it unset',
    );
  }
}

/** The Kafka variables alone, for callers other than the producer (the CLI). */
export const KafkaConnectionEnv = z.object(KafkaConnectionShape).superRefine(checkKafkaConnection);

/**
 * Builds the connection from parsed (and checked) variables. `region` is the signing region for MSK
 * IAM when the broker names do not tell it (MSK broker names carry their region, and the token must be
 * signed for that one, so they win over AWS_REGION).
 */
export function kafkaConnectionFrom(env: KafkaConnectionValues, region: string): KafkaConnection {
  const brokers = env.KAFKA_BROKERS.split(',')
    .map((b) => b.trim())
    .filter(Boolean);
  const mechanism = env.KAFKA_SASL_MECHANISM;
  const sslSet = env.KAFKA_SSL === undefined ? null : env.KAFKA_SSL === 'true' || env.KAFKA_SSL === '1';
  if (mechanism === 'aws-msk-iam') {
    return { brokers, ssl: true, sasl: { kind: 'msk-iam', region: mskRegion(brokers) ?? region } };
  }
  const ssl = sslSet ?? false;
  if (mechanism === 'scram-sha-256' || mechanism === 'scram-sha-512') {
    return {
      brokers,
      ssl,
      sasl: {
        kind: 'scram',
        mechanism,
        username: env.KAFKA_USERNAME ?? '',
        password: env.KAFKA_PASSWORD ?? '',
      },
    };
  }
  return { brokers, ssl, sasl: { kind: 'none' } };
}

/** No TLS, no SASL: the local broker, and callers (bench) that only know the brokers. */
export function plaintextConnection(brokers: readonly string[]): KafkaConnection {
  return { brokers: [...brokers], ssl: false, sasl: { kind: 'none' } };
}

/** The connection a client settings object names, or plaintext to its brokers when it names none. */
export function connectionOf(settings: {
  readonly brokers: readonly string[];
  readonly connection?: KafkaConnection | undefined;
}): KafkaConnection {
  return settings.connection ?? plaintextConnection(settings.brokers);
}

/** `b-1.x.c2.kafka.eu-west-1.amazonaws.com:9098` → `eu-west-1` (MSK provisioned and serverless). */
export function mskRegion(brokers: readonly string[]): string | null {
  for (const b of brokers) {
    const m = /\.kafka(?:-serverless)?\.([a-z0-9-]+)\.amazonaws\.com(?::\d+)?$/i.exec(b.trim());
    if (m?.[1]) return m[1].toLowerCase();
  }
  return null;
}

/** For logs: what the connection is, without the password. */
export function connectionSummary(c: KafkaConnection): Record<string, unknown> {
  const sasl =
    c.sasl.kind === 'none'
      ? 'none'
      : c.sasl.kind === 'scram'
        ? `${c.sasl.mechanism} (user ${c.sasl.username})`
        : `aws-msk-iam (${c.sasl.region})`;
  return { brokers: c.brokers.join(','), ssl: c.ssl, sasl };
}

const defaultSigner: MskSigner = async (region) => {
  // Loaded only when MSK IAM is used: it pulls in the STS client and the credential provider chain.
  const { generateAuthToken } = await import('aws-msk-iam-sasl-signer-js');
  return generateAuthToken({ region });
};

/**
 * A token provider for MSK IAM over SASL/OAUTHBEARER. The signer takes the credentials from the
 * default chain (the ECS task role in the cloud) and signs locally: no AWS API call, so no IAM
 * permission beyond the kafka-cluster:* grants. A token (valid 15 min) is reused by every connection
 * until a minute before it expires; the clients re-authenticate before the broker's session ends and
 * then get a fresh one.
 */
export function mskIamTokenProvider(region: string, deps: TokenDeps = {}): () => Promise<string> {
  const signer = deps.signer ?? defaultSigner;
  const now = deps.now ?? Date.now;
  let cached: MskToken | null = null;
  let pending: Promise<MskToken> | null = null;
  return async () => {
    if (cached && cached.expiryTime - now() > 60_000) return cached.token;
    // Connections to several brokers start at once: sign once for all of them.
    pending ??= signer(region).finally(() => {
      pending = null;
    });
    cached = await pending;
    return cached.token;
  };
}

export interface KafkajsConnectionOptions {
  brokers: string[];
  ssl: boolean;
  sasl?: KafkajsSasl;
}

/** Options for `new Kafka({...})` of kafkajs 2.2.4 (it sets the TLS server name from each host itself). */
export function kafkajsConnectionOptions(c: KafkaConnection, deps: TokenDeps = {}): KafkajsConnectionOptions {
  const base = { brokers: [...c.brokers], ssl: c.ssl };
  switch (c.sasl.kind) {
    case 'none':
      return base;
    case 'scram':
      return {
        ...base,
        sasl: { mechanism: c.sasl.mechanism, username: c.sasl.username, password: c.sasl.password },
      };
    case 'msk-iam': {
      const token = mskIamTokenProvider(c.sasl.region, deps);
      return {
        ...base,
        sasl: { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: await token() }) },
      };
    }
  }
}

export type PlatformaticConnectionOptions = Pick<PlatformaticConnection, 'tls' | 'tlsServerName' | 'sasl'> & {
  bootstrapBrokers: string[];
};

/**
 * Options for the clients of @platformatic/kafka 2.x (Producer, Consumer, Admin). It supports
 * SCRAM-SHA-256/512 and OAUTHBEARER with a token provider (re-authenticating at 80% of the session
 * lifetime the broker announces), so MSK IAM works with it as with kafkajs.
 */
export function platformaticConnectionOptions(
  c: KafkaConnection,
  deps: TokenDeps = {},
): PlatformaticConnectionOptions {
  const options: PlatformaticConnectionOptions = { bootstrapBrokers: [...c.brokers] };
  if (c.ssl) {
    options.tls = {};
    // Node's tls.connect(port, host) sends no SNI by itself; MSK and most hosted clusters need it.
    // An IP address is not a valid SNI name (RFC 6066), so brokers given as IPs go without.
    if (c.brokers.every((b) => isIP(hostOf(b)) === 0)) options.tlsServerName = true;
  }
  const sasl = platformaticSasl(c.sasl, deps);
  if (sasl) options.sasl = sasl;
  return options;
}

function platformaticSasl(s: KafkaSasl, deps: TokenDeps): PlatformaticSasl | undefined {
  switch (s.kind) {
    case 'none':
      return undefined;
    case 'scram':
      return {
        mechanism: s.mechanism === 'scram-sha-256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-512',
        username: s.username,
        password: s.password,
      };
    case 'msk-iam':
      return { mechanism: 'OAUTHBEARER', token: mskIamTokenProvider(s.region, deps) };
  }
}

function hostOf(broker: string): string {
  const i = broker.lastIndexOf(':');
  const host = i > 0 ? broker.slice(0, i) : broker;
  return host.replace(/^\[|\]$/g, '');
}
