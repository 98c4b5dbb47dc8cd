import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './config.ts';

export interface LocalClientOptions {
  readonly endpoint: string;
  readonly region?: string;
  /** SDK attempts per call; readiness probes use 1 so a dead port fails fast. */
  readonly maxAttempts?: number;
  readonly requestTimeoutMs?: number;
}

/**
 * AWS SDK clients for the emulator. The local stack talks only to moto, so it always uses the
 * dummy credentials and never picks up a developer's real AWS profile.
 */
export function localClients(opts: LocalClientOptions) {
  const config = {
    endpoint: opts.endpoint,
    region: opts.region ?? LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: { requestTimeout: opts.requestTimeoutMs ?? 30_000, connectionTimeout: 2_000 },
  };
  return {
    s3: new S3Client({ ...config, forcePathStyle: true }),
    sqs: new SQSClient(config),
    sns: new SNSClient(config),
    dynamodb: new DynamoDBClient(config),
    events: new EventBridgeClient(config),
    cloudwatch: new CloudWatchClient(config),
    logs: new CloudWatchLogsClient(config),
  };
}

export type LocalClients = ReturnType<typeof localClients>;

export function destroyClients(clients: LocalClients): void {
  for (const client of Object.values(clients)) client.destroy();
}
