/**
 * Measures EventBridge PutEvents calls per second on an emulator, the way the services use it:
 * batches of 10 entries (events/ publishes 10 per call) that a rule routes to a queue and the
 * archive keeps, on rowstream's bus; and the same batches on the default bus.
 *
 *   tsx local/measure-put-events.ts [endpoint] [seconds]
 *
 * Used to size the launcher's PutEvents fix: run it against `launcher.py --no-fixes` and against
 * the local stack, and compare. It provisions a throwaway stage `m<random>` on that endpoint.
 */
import { randomBytes } from 'node:crypto';
import { PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { destroyClients, localClients } from './clients.ts';
import { LOCAL_REGION, localEndpoints } from './config.ts';
import { provision } from './provision.ts';

export async function measurePutEvents(
  endpoint: string,
  seconds: number,
): Promise<{ customBus: number; defaultBus: number }> {
  const stage = `m${randomBytes(3).toString('hex')}`;
  const outputs = await provision({ stage, region: LOCAL_REGION, endpoint, brokers: [] });
  const clients = localClients({ endpoint });
  const rate = async (busName: string) => {
    let calls = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await clients.events.send(
        new PutEventsCommand({
          Entries: Array.from({ length: 10 }, (_, i) => ({
            EventBusName: busName,
            Source: 'rowstream.planner',
            DetailType: 'JobStarted.v1',
            Detail: JSON.stringify({
              eventId: `e${calls}-${i}`,
              jobId: 'j1',
              occurredAt: new Date().toISOString(),
            }),
          })),
        }),
      );
      calls++;
    }
    return calls / ((performance.now() - t0) / 1000);
  };
  try {
    return { customBus: await rate(outputs.busName), defaultBus: await rate('default') };
  } finally {
    destroyClients(clients);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const endpoint = process.argv[2] ?? localEndpoints().endpoint;
  const seconds = Number(process.argv[3] ?? 5);
  const result = await measurePutEvents(endpoint, seconds);
  console.log(
    `PutEvents on ${endpoint}: rowstream bus ${result.customBus.toFixed(1)} calls/s, default bus ${result.defaultBus.toFixed(1)} calls/s`,
  );
}
