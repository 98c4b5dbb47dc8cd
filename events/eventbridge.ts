import { type EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { BusEntry, BusEntryResult, BusPort } from './bus.ts';

/** {@link BusPort} over EventBridge PutEvents on one bus. */
export function eventBridgeBus(client: EventBridgeClient, busName: string): BusPort {
  return {
    async putEntries(entries: readonly BusEntry[]): Promise<readonly BusEntryResult[]> {
      const out = await client.send(
        new PutEventsCommand({
          Entries: entries.map((e) => ({
            EventBusName: busName,
            Source: e.source,
            DetailType: e.detailType,
            Detail: e.detail,
            Time: e.time,
          })),
        }),
      );
      return (out.Entries ?? []).map((r) => ({
        eventId: r.EventId,
        errorCode: r.ErrorCode,
        errorMessage: r.ErrorMessage,
      }));
    },
  };
}
