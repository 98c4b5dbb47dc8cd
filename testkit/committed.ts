/** The tests' read-back of a topic: the CLI's read_committed reader on the local (plaintext) broker. */
import { type CommittedRecord, committedRecords } from '../services/shared/kafka-committed.ts';

export { CommittedFilter, type CommittedRecord, type LogBatch } from '../services/shared/kafka-committed.ts';

/**
 * Every committed record of `topic` up to its end at the time of the call, partition by partition in
 * offset order; `visit` gets them one by one instead of a returned array (big topics).
 */
export async function readCommitted(
  brokers: readonly string[],
  topic: string,
  visit?: (r: CommittedRecord) => void,
): Promise<CommittedRecord[]> {
  const out: CommittedRecord[] = [];
  for await (const r of committedRecords({ bootstrapBrokers: [...brokers] }, topic, {
    clientId: 'rowstream-verify',
  })) {
    if (visit) visit(r);
    else out.push(r);
  }
  return out;
}
