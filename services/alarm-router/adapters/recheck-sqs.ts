import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { RecheckPort } from '../ports.ts';

/**
 * {@link RecheckPort} over the router's own queue: a delayed message (SQS DelaySeconds, at most 900)
 * that comes back to the router like any alarm change, so no timer has to outlive an invocation.
 */
export function sqsRechecks(client: SQSClient, queueUrl: string): RecheckPort {
  return {
    async schedule(recheck, delaySeconds) {
      await client.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(recheck),
          DelaySeconds: Math.max(0, Math.min(900, Math.round(delaySeconds))),
        }),
      );
    },
  };
}
