import { type EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';

/**
 * Receives from `queueUrl` until `enough(messages so far)` holds or `timeoutMs` passes, then
 * returns what arrived (messages are not deleted: each test owns its fresh queues).
 */
export async function receiveUntil(
  sqs: SQSClient,
  queueUrl: string,
  enough: (messages: readonly Message[]) => boolean,
  timeoutMs = 10_000,
): Promise<Message[]> {
  const seen = new Map<string, Message>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        VisibilityTimeout: 60,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    for (const m of got.Messages ?? []) if (m.MessageId) seen.set(m.MessageId, m);
    if (enough([...seen.values()])) break;
  }
  return [...seen.values()];
}

/** The JSON bodies of messages. */
export function bodies<T = Record<string, unknown>>(messages: readonly Message[]): T[] {
  return messages.map((m) => JSON.parse(m.Body ?? 'null') as T);
}

/** Creates (or finds) a queue owned by a test and returns its URL and ARN. */
export async function createTestQueue(sqs: SQSClient, name: string): Promise<{ url: string; arn: string }> {
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
  const attrs = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
  );
  return { url, arn: attrs.Attributes!.QueueArn! };
}

/**
 * A test's own view of a bus: a queue named `name` and a rule of the same name copying every event
 * that matches `eventPattern` into it. Returns the queue.
 */
export async function tapBus(
  clients: { readonly sqs: SQSClient; readonly events: EventBridgeClient },
  busName: string,
  name: string,
  eventPattern: Record<string, unknown>,
): Promise<{ url: string; arn: string }> {
  const queue = await createTestQueue(clients.sqs, name);
  await clients.events.send(
    new PutRuleCommand({ Name: name, EventBusName: busName, EventPattern: JSON.stringify(eventPattern) }),
  );
  await clients.events.send(
    new PutTargetsCommand({ Rule: name, EventBusName: busName, Targets: [{ Id: 'tap', Arn: queue.arn }] }),
  );
  return queue;
}
