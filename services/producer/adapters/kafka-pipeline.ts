import { type ClusterMetadata, Connection, kGetApi, type Producer } from '@platformatic/kafka';
import type { PartitionAck } from '../ports.ts';
import type { PlatformaticConnectionOptions } from './kafka-connection.ts';

/**
 * Several Produce requests in flight for one job's transactional producer.
 *
 * @platformatic/kafka's `Producer` forces `maxInflights = 1` on its connections when it is idempotent
 * (a transactional producer always is), so a job waited for each produce round trip before sending
 * the next batch (~30% of the producer's time idle in the profile). Kafka keeps an idempotent
 * producer's order with up to 5 requests in flight per connection: the broker checks each batch's
 * base sequence against the last one it wrote for the partition and refuses a gap
 * (OUT_OF_ORDER_SEQUENCE_NUMBER) or a replay (DUPLICATE_SEQUENCE_NUMBER). The adapter owns the sequence
 * numbers already (the batches are our own encoding), so it can pipeline:
 *
 * - The Produce requests go on a {@link Connection} of our own per partition leader (the library's
 *   exported connection class, `maxInflights` up to 5, TLS and SASL as the job's producer), written in
 *   the order the job hands over its batches; a batch's base sequence is taken when it is submitted.
 * - The library keeps everything transactional: InitProducerId (the fence, in openJob), the
 *   partitions of the transaction (`Transaction.addPartitions`, public, before the first batch to a
 *   partition), EndTxn (commit/abort), metadata (partition leaders).
 * - Any failure is final for the pipeline: later sends are refused at once, the core aborts the
 *   transaction, re-opens the producer (new epoch, sequences from 0) and resumes from the last commit
 *   read back from Kafka. So a failed batch in the middle never leaves a gap in the topic: the whole
 *   transaction is aborted and written again.
 */

const EMPTY = Buffer.alloc(0);
type ProduceApi = ((...args: unknown[]) => void) & { version: number };
type GetApi = (name: string, callback: (error: Error | null, api?: ProduceApi) => void) => void;
type Transaction = Awaited<ReturnType<Producer['beginTransaction']>>;

interface ProduceResponse {
  responses?: { name?: string; partitionResponses?: { index: number; baseOffset: bigint }[] }[];
}

export interface PipelineBatch {
  readonly partition: number;
  readonly buffer: Buffer;
  readonly count: number;
}

export interface PipelineOptions {
  readonly clientId: string;
  readonly topic: string;
  readonly transactionalId: string;
  /** Produce requests in flight per connection: 1..5. */
  readonly maxInflight: number;
  /** Produce request timeout (also the connection's request timeout). */
  readonly timeoutMs: number;
  readonly connection: PlatformaticConnectionOptions;
  /** Registers a batch's session fields so the fast Produce API can seal it (see installFastProduce). */
  readonly register: (buffer: Buffer, baseSequence: number, timestamp: bigint) => void;
}

export class ProducePipeline {
  private readonly connections = new Map<number, Promise<Connection>>();
  private readonly sequences = new Map<number, number>();
  /** Partitions added to the open transaction. */
  private added = new Set<number>();
  private metadata: ClusterMetadata | null = null;
  private api: ProduceApi | null = null;
  /** Serializes submissions (not responses): batches go on the wire in the order they were sent. */
  private chain: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  private closed = false;

  constructor(
    private readonly producer: Producer,
    private readonly opts: PipelineOptions,
  ) {}

  /**
   * A new transaction: its partitions must be added again before the first batch to each. `expected`
   * (an un-keyed job's one partition) are added at once, overlapping the first batch's encoding: right
   * after a commit the coordinator often answers CONCURRENT_TRANSACTIONS while it writes the markers,
   * and the library retries after a delay.
   */
  beginTransaction(tx: Transaction, expected: readonly number[] = []): void {
    this.added = new Set();
    this.metadata = null;
    if (expected.length === 0 || this.failure) return;
    const adding = this.chain.then(() => this.addPartitions(tx, expected));
    this.chain = adding.then(
      () => {},
      (e: unknown) => {
        this.failure ??= e;
      },
    );
  }

  private async addPartitions(tx: Transaction, partitions: readonly number[]): Promise<ClusterMetadata> {
    const { topic } = this.opts;
    this.metadata ??= await this.producer.metadata({ topics: [topic] });
    const fresh = partitions.filter((p) => !this.added.has(p));
    if (fresh.length > 0) {
      await tx.addPartitions(
        this.metadata,
        fresh.map((partition) => ({ topic, partition, value: EMPTY })),
      );
      for (const p of fresh) this.added.add(p);
    }
    return this.metadata;
  }

  /**
   * Sends the batches (one per partition) as Produce requests; resolves with the acks when the broker
   * has answered for all of them. Returns without waiting for earlier sends' answers.
   */
  send(tx: Transaction, batches: readonly PipelineBatch[]): Promise<PartitionAck[]> {
    const submitted = this.chain.then(() => this.submit(tx, batches));
    this.chain = submitted.then(
      () => {},
      (e: unknown) => {
        this.failure ??= e;
      },
    );
    return submitted.then((s) => s.answer);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.connections.values()];
    this.connections.clear();
    await Promise.all(
      all.map(async (c) => {
        const conn = await c.catch(() => null);
        if (conn) await new Promise<void>((r) => conn.close(() => r()));
      }),
    );
  }

  /** Queues the requests; resolves once they are queued (not answered), with the answer to await. */
  private async submit(
    tx: Transaction,
    batches: readonly PipelineBatch[],
  ): Promise<{ answer: Promise<PartitionAck[]> }> {
    if (this.failure)
      throw new Error('an earlier produce request of this transaction failed', { cause: this.failure });
    if (this.closed) throw new Error('producer closed');
    const { topic } = this.opts;
    const metadata = await this.addPartitions(
      tx,
      batches.map((b) => b.partition),
    );
    this.api ??= await produceApi(this.producer);
    const api = this.api;
    const byLeader = new Map<number, PipelineBatch[]>();
    for (const b of batches) {
      const leader = metadata.topics.get(topic)?.partitions[b.partition]?.leader;
      if (leader === undefined || leader < 0) throw new Error(`no leader for ${topic}/${b.partition}`);
      const list = byLeader.get(leader);
      if (list) list.push(b);
      else byLeader.set(leader, [b]);
    }
    const connections = new Map<number, Connection>();
    for (const leader of byLeader.keys()) connections.set(leader, await this.connectionTo(leader, metadata));
    // From here on nothing awaits before the requests are queued on their connections.
    if (this.failure)
      throw new Error('an earlier produce request of this transaction failed', { cause: this.failure });
    const timestamp = BigInt(Date.now());
    const producerId = this.producer.producerId;
    const producerEpoch = this.producer.producerEpoch;
    if (producerId === undefined || producerEpoch === undefined)
      throw new Error('producer has no producer id');
    const answers: Promise<PartitionAck[]>[] = [];
    for (const [leader, list] of byLeader) {
      const counts = new Map<number, number>();
      for (const b of list) {
        const baseSequence = this.sequences.get(b.partition) ?? 0;
        this.sequences.set(b.partition, (baseSequence + b.count) % 2 ** 31);
        this.opts.register(b.buffer, baseSequence, timestamp);
        counts.set(b.partition, b.count);
      }
      const conn = connections.get(leader)!;
      answers.push(
        new Promise<PartitionAck[]>((resolve, reject) => {
          api(
            conn,
            -1,
            this.opts.timeoutMs,
            list.map((b) => ({ topic, partition: b.partition, value: b.buffer })),
            { transactionalId: this.opts.transactionalId, producerId, producerEpoch },
            (error: Error | null, response?: ProduceResponse) => {
              if (error) {
                this.failure ??= error;
                reject(error);
                return;
              }
              const acks: PartitionAck[] = [];
              for (const t of response?.responses ?? [])
                for (const p of t.partitionResponses ?? [])
                  acks.push({
                    partition: p.index,
                    baseOffset: p.baseOffset.toString(),
                    count: counts.get(p.index) ?? 0,
                  });
              resolve(acks);
            },
          );
        }),
      );
    }
    const answer = Promise.all(answers).then((a) => a.flat());
    answer.catch(() => {});
    // The submission is done (the chain moves on); the caller awaits the answer.
    return { answer };
  }

  private connectionTo(leader: number, metadata: ClusterMetadata): Promise<Connection> {
    let c = this.connections.get(leader);
    if (!c) {
      const broker = metadata.brokers.get(leader);
      if (!broker) throw new Error(`broker ${leader} not in the metadata`);
      const { tls, tlsServerName, sasl } = this.opts.connection;
      const conn = new Connection(this.opts.clientId, {
        maxInflights: this.opts.maxInflight,
        requestTimeout: this.opts.timeoutMs,
        ...(tls ? { tls } : {}),
        ...(tlsServerName !== undefined ? { tlsServerName } : {}),
        ...(sasl ? { sasl } : {}),
      });
      // A connection error surfaces on the requests (their callbacks); keep the emitter quiet.
      conn.on('error', () => {});
      c = new Promise<Connection>((resolve, reject) =>
        conn.connect(broker.host, broker.port, (e) => (e ? reject(e) : resolve(conn))),
      );
      c.catch(() => {});
      this.connections.set(leader, c);
    }
    return c;
  }
}

function produceApi(producer: Producer): Promise<ProduceApi> {
  const getApi = (producer as unknown as Record<symbol, GetApi>)[kGetApi]!;
  return new Promise((resolve, reject) =>
    getApi.call(producer, 'Produce', (e, api) =>
      e || !api ? reject(e ?? new Error('no Produce API')) : resolve(api),
    ),
  );
}
