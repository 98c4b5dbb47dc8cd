import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import {
  type KafkaConnection,
  KafkaConnectionEnv,
  kafkaConnectionFrom,
  kafkajsConnectionOptions,
  plaintextConnection,
} from '../services/producer/adapters/kafka-connection.ts';
import { EnvironmentError, type Target } from './context.ts';

/**
 * The Kafka connection of a target. The local stack's broker (from its stack file) is plaintext; any
 * other stage takes KAFKA_BROKERS, KAFKA_SSL, KAFKA_SASL_MECHANISM, KAFKA_USERNAME and KAFKA_PASSWORD
 * from the environment, checked by the producer's own rules, so the CLI reads MSK (IAM) or a SCRAM
 * cluster exactly as the producer writes to it. The security variables describe the cluster that
 * KAFKA_BROKERS names, so they are not applied to the local broker.
 */
export function kafkaConnectionFor(
  target: Pick<Target, 'brokers' | 'outputs' | 'region'>,
  env: NodeJS.ProcessEnv = process.env,
): KafkaConnection {
  if (target.outputs) return plaintextConnection(target.brokers);
  const parsed = KafkaConnectionEnv.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new EnvironmentError(`invalid Kafka connection settings:\n${lines.join('\n')}`);
  }
  return kafkaConnectionFrom(parsed.data, target.region);
}

/**
 * Prints records of a topic from the beginning, read_committed (what a downstream consumer would see),
 * with the rowstream headers. A throwaway consumer group, so nothing is committed for anyone else.
 * The connection (TLS, SCRAM, MSK IAM) is the producer's: see kafkaConnectionFor in cli/program.ts.
 */
export async function readTopic(
  connection: KafkaConnection,
  topic: string,
  opts: {
    limit: number;
    job?: string | undefined;
    follow: boolean;
    idleMs?: number;
    /** Turns a binary value (Avro) into something printable; null: print the value as text. */
    decode?: (value: Buffer) => Promise<Record<string, unknown> | null>;
  },
): Promise<number> {
  const kafka = new Kafka({
    clientId: 'rowstream-cli',
    ...kafkajsConnectionOptions(connection),
    logLevel: logLevel.NOTHING,
  });
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
          const decoded = message.value && opts.decode ? await opts.decode(message.value) : null;
          console.log(
            JSON.stringify({
              partition,
              offset: message.offset,
              key: message.key?.toString() ?? null,
              row: headers['rowstream-row'] ? Number(headers['rowstream-row']) : null,
              job: headers['rowstream-job'] ?? null,
              ...(decoded ?? { value: message.value?.toString() ?? null }),
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
