import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';

/**
 * Prints records of a topic from the beginning, read_committed (what a downstream consumer would see),
 * with the rowstream headers. A throwaway consumer group, so nothing is committed for anyone else.
 */
export async function readTopic(
  brokers: readonly string[],
  topic: string,
  opts: { limit: number; job?: string | undefined; follow: boolean; idleMs?: number },
): Promise<number> {
  const kafka = new Kafka({ clientId: 'rowstream-cli', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `rowstream-cli-${randomUUID()}`, readUncommitted: false });
  await consumer.connect();
  let printed = 0;
  let lastAt = Date.now();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ partition, message }) => {
          lastAt = Date.now();
          if (printed >= opts.limit) return;
          const headers = Object.fromEntries(
            Object.entries(message.headers ?? {}).map(([k, v]) => [k, v?.toString() ?? '']),
          );
          if (opts.job && headers['rowstream-job'] !== opts.job) return;
          printed++;
          console.log(
            JSON.stringify({
              partition,
              offset: message.offset,
              key: message.key?.toString() ?? null,
              row: headers['rowstream-row'] ? Number(headers['rowstream-row']) : null,
              job: headers['rowstream-job'] ?? null,
              value: message.value?.toString() ?? null,
            }),
          );
          if (printed >= opts.limit) resolve();
        },
      });
    });
    // Without --follow, stop once the topic has been quiet for a moment (the end is reached).
    const idle = new Promise<void>((resolve) => {
      if (opts.follow) return;
      const timer = setInterval(() => {
        if (Date.now() - lastAt > (opts.idleMs ?? 5000)) {
          clearInterval(timer);
          resolve();
        }
      }, 250);
    });
    await Promise.race([done, idle]);
  } finally {
    await consumer.disconnect();
  }
  return printed;
}
