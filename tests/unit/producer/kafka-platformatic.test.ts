import * as kafka from '@platformatic/kafka';
import { kGetApi, murmur2, Producer, produceV11 } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchEncoder } from '../../../services/producer/adapters/kafka-batch.ts';
import {
  choosePlacement,
  javaPartitionOf,
  Partitioner,
} from '../../../services/producer/adapters/kafka-placement.ts';
import {
  assertFastProduceAvailable,
  batchCrc32c,
  FAST_PRODUCE_VERSIONS,
  installFastProduce,
} from '../../../services/producer/adapters/kafka-platformatic.ts';
import type { OutRecord } from '../../../services/producer/ports.ts';

type AnyApi = ((...args: unknown[]) => void) & { version: number };
type GetApi = (name: string, cb: (e: Error | null, api?: AnyApi) => void) => void;

const producers: Producer[] = [];
afterEach(async () => {
  for (const p of producers.splice(0)) await p.close().catch(() => {});
});

/** A producer that never connects, whose library API lookup answers `api` for every request. */
function producerAnswering(api: AnyApi): Producer {
  const producer = new Producer({ clientId: 'unit', bootstrapBrokers: ['127.0.0.1:1'] });
  producers.push(producer);
  (producer as unknown as Record<symbol, GetApi>)[kGetApi] = (_name, cb) => cb(null, api);
  return producer;
}

function getApi(producer: Producer, name: string): Promise<AnyApi> {
  return new Promise((resolve, reject) =>
    (producer as unknown as Record<symbol, GetApi>)[kGetApi]!(name, (e, api) =>
      e ? reject(e) : resolve(api!),
    ),
  );
}

/** Calls an API with a connection that only captures the request the API builds. */
function requestBytes(api: AnyApi, ...args: unknown[]): Buffer {
  let built: { buffer: Buffer } | null = null;
  const connection = {
    send(_key: number, _version: number, create: () => { buffer: Buffer }) {
      built = create();
    },
  };
  api(connection, ...args, () => {});
  if (!built) throw new Error('the API built no request');
  return (built as { buffer: Buffer }).buffer;
}

const record = (i: number): OutRecord => ({
  key: null,
  value: `{"id":${i}}`,
  headers: {
    'rowstream-job': 'j',
    'rowstream-source': 's',
    'rowstream-row': String(i),
    'rowstream-offset': '0',
  },
});

describe('the fast produce path on the pinned @platformatic/kafka', () => {
  it('finds what it needs among the exported symbols (kGetApi, the Produce API modules)', () => {
    // Act / Assess: throws, naming what is missing, if an upgrade removes or renames any of them.
    expect(() => assertFastProduceAvailable()).not.toThrow();
    expect(typeof kGetApi).toBe('symbol');
  });

  it("seals batches with the library's CRC-32C, the native function called without a copy", () => {
    // Prepare: the RFC 3720 check value, and a view into a larger buffer (how batches are sealed).
    const big = Buffer.alloc(3000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    // Act / Assess
    expect(batchCrc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(batchCrc32c(big.subarray(21, 2500))).toBe(kafka.crc32c(big.subarray(21, 2500)) >>> 0);
    // The native binding is installed here (the platform package of the pinned @node-rs/crc32), so
    // the fast function is the one in use, not the library's fallback.
    expect(batchCrc32c).not.toBe(kafka.crc32c);
  });

  it('writes every Produce version >= 9 the library can negotiate, up to its newest', () => {
    // Prepare: the Produce versions the library exports (produceV3 ... produceVn).
    const exported = Object.keys(kafka)
      .map((k) => /^produceV(\d+)$/.exec(k)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number);
    const newest = Math.max(...exported);
    // Assess: a library that negotiates a newer Produce version than the fast path writes fails here,
    // instead of making every job fail (or go slow) at its first send.
    expect(newest).toBeGreaterThanOrEqual(9);
    for (let v = 9; v <= newest; v++) expect(Object.keys(FAST_PRODUCE_VERSIONS)).toContain(String(v));
  });

  it("replaces the producer's Produce API through kGetApi and writes the pre-encoded batch into the request", async () => {
    // Prepare
    const producer = producerAnswering(produceV11.api as unknown as AnyApi);
    const fast = installFastProduce(producer);
    const { buffer } = new BatchEncoder(new Set(['rowstream-job', 'rowstream-source'])).encode(
      [record(1), record(2), record(3)],
      null,
    );
    fast.batches.set(buffer, { baseSequence: 7, timestamp: 1_790_000_000_000n });
    // Act
    const api = await getApi(producer, 'Produce');
    const bytes = requestBytes(api, -1, 5000, [{ topic: 't', partition: 2, value: buffer }], {
      transactionalId: 'rowstream-j',
      producerId: 11n,
      producerEpoch: 3,
    });
    // Assess: our API (not the library's) built it, and the request carries the sealed batch as is.
    expect(api).not.toBe(produceV11.api);
    expect(api.version).toBe(11);
    expect(fast.stats).toEqual({ fastRequests: 1, libraryRequests: 0 });
    expect(bytes.indexOf(buffer)).toBeGreaterThan(0);
    expect(buffer.readBigInt64BE(43)).toBe(11n); // producer id sealed in
    expect(buffer.readInt32BE(53)).toBe(7); // base sequence sealed in
  });

  it("leaves other APIs, and messages that are not pre-encoded batches, to the library's code", async () => {
    // Prepare
    const producer = producerAnswering(produceV11.api as unknown as AnyApi);
    const fast = installFastProduce(producer);
    // Act
    const api = await getApi(producer, 'Produce');
    requestBytes(api, -1, 5000, [{ topic: 't', partition: 0, value: Buffer.from('plain') }], {});
    const metadataApi = await getApi(producer, 'Metadata');
    // Assess
    expect(fast.stats).toEqual({ fastRequests: 0, libraryRequests: 1 });
    expect(metadataApi).toBe(produceV11.api); // whatever the library answered, untouched
  });

  it('fails the request (no quiet slow path) when a Produce version it does not write is negotiated', async () => {
    // Prepare
    const producer = producerAnswering(kafka.produceV8.api as unknown as AnyApi);
    installFastProduce(producer);
    // Act / Assess
    await expect(getApi(producer, 'Produce')).rejects.toThrow(/Produce v8/);
  });
});

describe('placement', () => {
  // Kafka's own test vectors for Utils.murmur2 (clients/src/test/.../UtilsTest.java, testMurmur2).
  const JAVA_MURMUR2: [string, number][] = [
    ['21', -973932308],
    ['foobar', -790332482],
    ['a-little-bit-long-string', -985981536],
    ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
    ['abc', 479470107],
  ];

  it("puts a key on the Java client's partition: toPositive(murmur2(key)) % partitions", () => {
    for (const [key, hash] of JAVA_MURMUR2) {
      for (const n of [1, 3, 6, 7]) {
        expect(javaPartitionOf(Buffer.from(key), n), `${key} over ${n}`).toBe((hash & 0x7fffffff) % n);
      }
    }
  });

  it('sends every un-keyed record of a job to one partition chosen from the job id at job start', () => {
    // Act
    const placement = choosePlacement('job-123', 6, false);
    const partitioner = new Partitioner(placement);
    // Assess
    expect(placement).toEqual({ partitions: 6, partition: (murmur2('job-123') >>> 0) % 6, keyed: false });
    expect(new Set(['a', 'b', null, 'c'].map((k) => partitioner.partitionOf(k)))).toEqual(
      new Set([placement.partition]),
    );
  });

  it('keeps a key on its partition under the recorded count, whatever the topic has now', () => {
    // Prepare: the job started on 3 partitions; the topic has 6 by the time it resumes.
    const recorded = choosePlacement('job-9', 3, true);
    // Act
    const resumed = new Partitioner(recorded);
    // Assess
    for (const [key, hash] of JAVA_MURMUR2) expect(resumed.partitionOf(key)).toBe((hash & 0x7fffffff) % 3);
    expect(resumed.partitionOf(null)).toBe(recorded.partition);
  });

  it('refuses a partition count that is not a positive integer', () => {
    expect(() => choosePlacement('j', 0, false)).toThrow(/positive integer/);
  });
});
