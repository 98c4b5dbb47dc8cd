import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { NotificationMessage, NotifierPort } from '../ports.ts';

/** {@link NotifierPort} over SNS Publish; attributes become String message attributes (filter policies). */
export function snsNotifier(client: SNSClient): NotifierPort {
  return {
    async publish(message: NotificationMessage) {
      const out = await client.send(
        new PublishCommand({
          TopicArn: message.topicArn,
          Subject: message.subject,
          Message: message.body,
          MessageAttributes: Object.fromEntries(
            Object.entries(message.attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }]),
          ),
        }),
      );
      return { messageId: out.MessageId ?? null };
    },
  };
}
