import {
  DescribeArchiveCommand,
  DescribeReplayCommand,
  type EventBridgeClient,
  StartReplayCommand,
} from '@aws-sdk/client-eventbridge';
import type { ReplayPort, ReplayState, ReplayStatus, StartReplayInput } from '../core.ts';

/** {@link ReplayPort} over EventBridge StartReplay / DescribeReplay. */
export function eventBridgeReplays(client: EventBridgeClient): ReplayPort {
  return {
    async start(input: StartReplayInput) {
      const out = await client.send(
        new StartReplayCommand({
          ReplayName: input.name,
          Description: input.description.slice(0, 512),
          EventSourceArn: input.archiveArn,
          EventStartTime: input.from,
          EventEndTime: input.to,
          Destination: {
            Arn: input.destinationBusArn,
            ...(input.filterArns ? { FilterArns: [...input.filterArns] } : {}),
          },
        }),
      );
      return { arn: out.ReplayArn ?? null, state: (out.State ?? 'STARTING') as ReplayState };
    },
    async describe(name: string): Promise<ReplayStatus> {
      const out = await client.send(new DescribeReplayCommand({ ReplayName: name }));
      return {
        name,
        state: (out.State ?? 'STARTING') as ReplayState,
        reason: out.StateReason ?? null,
        lastReplayedTime: out.EventLastReplayedTime ?? null,
        startTime: out.ReplayStartTime ?? null,
        endTime: out.ReplayEndTime ?? null,
      };
    },
  };
}

/** The archive's ARN (and the bus it archives) from its name. */
export async function describeArchive(
  client: EventBridgeClient,
  archiveName: string,
): Promise<{ archiveArn: string; busArn: string; eventCount: number | null }> {
  const out = await client.send(new DescribeArchiveCommand({ ArchiveName: archiveName }));
  if (!out.ArchiveArn || !out.EventSourceArn) throw new Error(`archive ${archiveName} has no ARN or source`);
  return { archiveArn: out.ArchiveArn, busArn: out.EventSourceArn, eventCount: out.EventCount ?? null };
}
