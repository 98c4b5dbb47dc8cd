/**
 * The benches' admin of the local broker, and how they create a topic before a run is timed.
 */
import { type Admin, Kafka, logLevel } from 'kafkajs';

export interface BenchTopics {
  readonly admin: Admin;
  /**
   * Creates the topic and waits for its leader, before the clock starts: whether kcat's run or a job's,
   * no measured time includes creating its topic. Left to the broker's auto-creation, kcat's 1M-row run
   * took ~1.1 s longer (librdkafka waits for a new topic's leader; `npm run bench:kcat-topic`), which
   * made bench:producer's 1M-row ratios look about twice as good as they were (docs/producer.md,
   * "Speed round 8").
   */
  createTopic(topic: string, partitions?: number): Promise<void>;
}

/** A connected kafkajs admin (disconnect it when done) and {@link BenchTopics.createTopic} on it. */
export async function benchTopics(brokers: readonly string[], clientId: string): Promise<BenchTopics> {
  const admin = new Kafka({ clientId, brokers: [...brokers], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  return {
    admin,
    async createTopic(topic, partitions = 1) {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    },
  };
}
