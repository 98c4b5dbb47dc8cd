import {
  type KafkaConnection,
  KafkaConnectionEnv,
  kafkaConnectionFrom,
  plaintextConnection,
  platformaticConnectionOptions,
} from '../services/producer/adapters/kafka-connection.ts';
import { committedRecords } from '../services/shared/kafka-committed.ts';
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
 * with the rowstream headers, then stops at the end the topic had when it started (`follow`: keeps
 * printing new records until interrupted). The read_committed rule is applied from the log itself
 * (services/shared/kafka-committed.ts): kafkajs's own filter hands out the records of an aborted
 * transaction when two transactions on a partition are aborted in the opposite order of their starts.
 * No consumer group offsets are committed. The connection (TLS, SCRAM, MSK IAM) is the producer's.
 */
export async function readTopic(
  connection: KafkaConnection,
  topic: string,
  opts: {
    limit: number;
    job?: string | undefined;
    follow: boolean;
    /** Turns a binary value (Avro) into something printable; null: print the value as text. */
    decode?: (value: Buffer) => Promise<Record<string, unknown> | null>;
    signal?: AbortSignal;
    print?: (line: string) => void;
  },
): Promise<number> {
  const print = opts.print ?? ((line: string) => console.log(line));
  let printed = 0;
  if (opts.limit <= 0) return 0;
  const records = committedRecords(platformaticConnectionOptions(connection), topic, {
    follow: opts.follow,
    clientId: 'rowstream-cli',
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  for await (const r of records) {
    if (opts.job && r.headers['rowstream-job'] !== opts.job) continue;
    const decoded = r.bytes.length > 0 && opts.decode ? await opts.decode(r.bytes) : null;
    print(
      JSON.stringify({
        partition: r.partition,
        offset: r.offset,
        key: r.key,
        row: r.headers['rowstream-row'] ? Number(r.headers['rowstream-row']) : null,
        job: r.headers['rowstream-job'] ?? null,
        ...(decoded ?? { value: r.bytes.length > 0 ? r.value : null }),
      }),
    );
    printed++;
    if (printed >= opts.limit) break;
  }
  return printed;
}
