import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';

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
