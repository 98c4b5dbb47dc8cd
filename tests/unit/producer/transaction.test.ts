import { describe, expect, it } from 'vitest';
import { TransactionWriter } from '../../../services/producer/job/transaction.ts';
import type { JobProducer, OutRecord, PartitionAck } from '../../../services/producer/ports.ts';
import type { RawRow } from '../../../services/shared/rows.ts';

/** A producer whose sends stay in flight until the test answers them, in any order it likes. */
class ManualProducer implements JobProducer {
  readonly pending: { rows: number[]; resolve: (a: PartitionAck[]) => void; reject: (e: Error) => void }[] =
    [];
  readonly calls: string[] = [];
  maxSeen = 0;
  private inflight = 0;
  constructor(readonly maxInflight: number) {}
  async begin() {
    this.calls.push('begin');
  }
  send(records: readonly OutRecord[]): Promise<PartitionAck[]> {
    const rows = records.map((r) => Number(r.headers['rowstream-row']));
    this.calls.push(`send ${rows[0]}-${rows.at(-1)}`);
    this.inflight++;
    this.maxSeen = Math.max(this.maxSeen, this.inflight);
    return new Promise((resolve, reject) => {
      this.pending.push({
        rows,
        resolve: (a) => {
          this.inflight--;
          resolve(a);
        },
        reject: (e) => {
          this.inflight--;
          reject(e);
        },
      });
    });
  }
  async commit() {
    this.calls.push(`commit (in flight ${this.inflight})`);
  }
  async abort() {}
  async close() {}
}

const raw = (row: number): RawRow => ({
  row,
  offset: row * 10,
  nextOffset: (row + 1) * 10,
  bytes: Buffer.from(`r${row}`),
  hasQuote: false,
  unterminated: false,
  oversized: false,
});
const rec = (row: number): OutRecord => ({
  key: null,
  value: `v${row}`,
  headers: { 'rowstream-row': String(row) },
});

function writer(p: JobProducer, acks: number[][]) {
  return new TransactionWriter(
    p,
    { batchRows: 2, batchBytes: 1e9, transactionRows: 1e9, transactionMs: 1e9, rejectsPerTransaction: 1e9 },
    {
      now: () => 0,
      onAcks: (a) => acks.push(a.map((x) => x.count)),
      writeRejects: async () => {},
      checkLease: () => {},
    },
    { row: 0, nextByteOffset: 0 },
  );
}

/** Lets pending promise callbacks run. */
const tick = () => new Promise((r) => setImmediate(r));

describe('TransactionWriter with several sends in flight', () => {
  it("keeps up to the producer's maxInflight sends in flight, in row order, and commits only after all are answered", async () => {
    // Prepare
    const p = new ManualProducer(3);
    const acks: number[][] = [];
    const tx = writer(p, acks);
    // Act: 4 full batches of 2 rows; the 4th has to wait for the 1st answer.
    const adding = (async () => {
      for (let row = 1; row <= 8; row++) await tx.add(raw(row), rec(row), 10);
    })();
    await tick();
    // Assess: three in flight, the fourth not yet sent.
    expect(p.pending.map((x) => x.rows)).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    p.pending[0]!.resolve([{ partition: 0, baseOffset: '0', count: 2 }]);
    await adding;
    expect(p.pending.map((x) => x.rows[0])).toEqual([1, 3, 5, 7]);
    const committing = tx.commit();
    await tick();
    expect(p.calls).not.toContain('commit (in flight 0)');
    for (const x of p.pending.slice(1)) x.resolve([{ partition: 0, baseOffset: '0', count: x.rows.length }]);
    const done = await committing;
    // Assess
    expect(p.maxSeen).toBe(3);
    expect(p.calls).toEqual([
      'begin',
      'send 1-2',
      'send 3-4',
      'send 5-6',
      'send 7-8',
      'commit (in flight 0)',
    ]);
    expect(acks).toEqual([[2], [2], [2], [2]]);
    expect(done.position).toEqual({ row: 8, nextByteOffset: 90 });
  });

  it('fails the commit when a send in the middle fails, and drain waits for every send still in flight', async () => {
    // Prepare
    const p = new ManualProducer(5);
    const tx = writer(p, []);
    for (let row = 1; row <= 6; row++) await tx.add(raw(row), rec(row), 10);
    // Act: the 2nd of 3 in-flight sends fails; the 1st and 3rd succeed.
    p.pending[0]!.resolve([]);
    p.pending[1]!.reject(new Error('OUT_OF_ORDER_SEQUENCE_NUMBER'));
    const commit = tx.commit();
    // Assess: the failure surfaces as a Kafka step error, and no commit is sent.
    await expect(commit).rejects.toThrow(/send: OUT_OF_ORDER_SEQUENCE_NUMBER/);
    let drained = false;
    const draining = tx.drain().then(() => {
      drained = true;
    });
    await tick();
    expect(drained).toBe(false); // the 3rd is still in flight
    p.pending[2]!.resolve([]);
    await draining;
    expect(p.calls.some((c) => c.startsWith('commit'))).toBe(false);
  });

  it('keeps one send in flight for a producer that does not say otherwise', async () => {
    // Prepare: no maxInflight (the library's own path, the fakes).
    const p = new ManualProducer(1);
    Object.defineProperty(p, 'maxInflight', { value: undefined });
    const tx = writer(p, []);
    // Act
    const adding = (async () => {
      for (let row = 1; row <= 4; row++) await tx.add(raw(row), rec(row), 10);
    })();
    await tick();
    // Assess
    expect(p.pending).toHaveLength(1);
    p.pending[0]!.resolve([]);
    await adding;
    p.pending[1]!.resolve([]);
    await tx.commit();
    expect(p.maxSeen).toBe(1);
  });
});
