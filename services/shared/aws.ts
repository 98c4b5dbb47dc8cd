import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CostExplorerClient } from '@aws-sdk/client-cost-explorer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { GlueClient } from '@aws-sdk/client-glue';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * AWS SDK v3 client settings. The endpoint comes from config (AWS_ENDPOINT_URL), so the same code
 * runs against moto, LocalStack or AWS; S3 uses path-style addressing when an endpoint is set,
 * because emulators on 127.0.0.1 have no virtual-host DNS.
 */
export interface AwsSettings {
  readonly region: string;
  readonly endpoint?: string | undefined;
  /** SDK tries per call, the first included (standard retry mode: backoff with jitter, throttles too). */
  readonly maxAttempts?: number;
  /** TCP connect timeout. */
  readonly connectionTimeoutMs?: number;
  /** Socket idle timeout per request (a stalled response or body fails after this long without bytes). */
  readonly requestTimeoutMs?: number;
}

/**
 * Retries and timeouts, explicit on every client (the SDK's defaults have no connection or request
 * timeout, so a hung call would hang forever). `requestTimeoutMs` is an idle timeout: a large S3 body
 * that keeps flowing is fine, one that stops for this long fails and is re-opened by the producer.
 * SQS needs more than its 20 s long poll. The producer retries past these with its own budget
 * (docs/producer.md, "Faults and budgets").
 */
export const AWS_CLIENT_DEFAULTS = {
  maxAttempts: 3,
  connectionTimeoutMs: 3_000,
  requestTimeoutMs: { default: 10_000, s3: 30_000, sqs: 30_000 },
} as const;

export function awsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsSettings {
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: env.AWS_ENDPOINT_URL || undefined,
  };
}

function base(s: AwsSettings, client: 'default' | 's3' | 'sqs' = 'default') {
  return {
    region: s.region,
    maxAttempts: s.maxAttempts ?? AWS_CLIENT_DEFAULTS.maxAttempts,
    retryMode: 'standard',
    requestHandler: {
      connectionTimeout: s.connectionTimeoutMs ?? AWS_CLIENT_DEFAULTS.connectionTimeoutMs,
      requestTimeout: s.requestTimeoutMs ?? AWS_CLIENT_DEFAULTS.requestTimeoutMs[client],
    },
    ...(s.endpoint
      ? {
          endpoint: s.endpoint,
          // Emulators accept any credentials; fall back to dummies so a fresh machine needs no AWS profile.
          credentials:
            process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY
              ? undefined
              : { accessKeyId: 'test', secretAccessKey: 'test' },
        }
      : {}),
  };
}

/** Clients are built lazily and once per settings object (module scope in handlers). */
export function awsClients(s: AwsSettings = awsSettingsFromEnv()) {
  const cache = new Map<string, unknown>();
  const once = <T>(name: string, make: () => T): T => {
    if (!cache.has(name)) cache.set(name, make());
    return cache.get(name) as T;
  };
  return {
    get s3() {
      return once('s3', () => new S3Client({ ...base(s, 's3'), forcePathStyle: Boolean(s.endpoint) }));
    },
    get sqs() {
      return once('sqs', () => new SQSClient(base(s, 'sqs')));
    },
    get dynamo() {
      return once('dynamo', () => new DynamoDBClient(base(s)));
    },
    get doc() {
      return once('doc', () =>
        DynamoDBDocumentClient.from(new DynamoDBClient(base(s)), {
          marshallOptions: { removeUndefinedValues: true },
        }),
      );
    },
    get events() {
      return once('events', () => new EventBridgeClient(base(s)));
    },
    get sns() {
      return once('sns', () => new SNSClient(base(s)));
    },
    get cloudwatch() {
      return once('cloudwatch', () => new CloudWatchClient(base(s)));
    },
    get costExplorer() {
      return once('ce', () => new CostExplorerClient(base(s)));
    },
    get glue() {
      return once('glue', () => new GlueClient(base(s)));
    },
  };
}

export type AwsClients = ReturnType<typeof awsClients>;
