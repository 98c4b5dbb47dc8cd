import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CostExplorerClient } from '@aws-sdk/client-cost-explorer';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
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
  readonly maxAttempts?: number;
}

export function awsSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsSettings {
  return {
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1',
    endpoint: env.AWS_ENDPOINT_URL || undefined,
  };
}

function base(s: AwsSettings) {
  return {
    region: s.region,
    maxAttempts: s.maxAttempts ?? 5,
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
      return once('s3', () => new S3Client({ ...base(s), forcePathStyle: Boolean(s.endpoint) }));
    },
    get sqs() {
      return once('sqs', () => new SQSClient(base(s)));
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
  };
}

export type AwsClients = ReturnType<typeof awsClients>;
