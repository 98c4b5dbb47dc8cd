import { describe, expect, it } from 'vitest';
import { CommittedFilter, type LogBatch } from '../../../testkit/committed.ts';

const data = (
  firstOffset: number,
  producerId: number,
  records: string[],
  transactional = true,
): LogBatch<string> => ({
  firstOffset: BigInt(firstOffset),
  producerId: BigInt(producerId),
  transactional,
  control: null,
  records,
});
const marker = (firstOffset: number, producerId: number, type: 0 | 1): LogBatch<string> => ({
  firstOffset: BigInt(firstOffset),
  producerId: BigInt(producerId),
  transactional: true,
  control: type,
  records: ['marker'],
});

function run(batches: LogBatch<string>[]) {
  const f = new CommittedFilter<string>();
  const out = batches.flatMap((b) => f.push(b));
  return { out, pending: f.pending };
}

describe('CommittedFilter (read_committed decided from the log)', () => {
  it('drops both of two interleaved transactions aborted in the opposite order of their starts', () => {
    // Prepare: A starts at 0, B at 1, A again at 2; B's abort marker comes before A's.
    const log = [
      data(0, 1, ['a1']),
      data(1, 2, ['b1']),
      data(2, 1, ['a2']),
      marker(3, 2, 0),
      marker(4, 1, 0),
    ];
    // Act
    const { out, pending } = run(log);
    // Assess
    expect(out).toEqual([]);
    expect(pending).toBe(0);
  });

  it('keeps offset order: a committed batch waits for an earlier one still undecided', () => {
    const f = new CommittedFilter<string>();
    expect(f.push(data(0, 1, ['a1']))).toEqual([]);
    expect(f.push(data(1, 2, ['b1']))).toEqual([]);
    expect(f.push(marker(2, 2, 1))).toEqual([]);
    expect(f.pending).toBe(2);
    expect(f.push(marker(3, 1, 1))).toEqual(['a1', 'b1']);
  });

  it('commits one producer and aborts the other; non-transactional batches pass; an open tail stays unread', () => {
    const { out, pending } = run([
      data(0, 9, ['plain'], false),
      data(1, 1, ['a1', 'a2']),
      data(3, 2, ['b1']),
      marker(4, 1, 1),
      marker(5, 2, 0),
      data(6, 2, ['b2']),
      marker(7, 2, 1),
      data(8, 1, ['open']),
    ]);
    expect(out).toEqual(['plain', 'a1', 'a2', 'b2']);
    expect(pending).toBe(1);
  });
});
