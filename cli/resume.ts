import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { reopenFailedJob } from '../services/producer/adapters/jobs-dynamo.ts';
import { isTerminal, type JobRecord } from '../services/shared/jobs.ts';
import { UsageError } from './context.ts';
import { EXIT, exitCodeFor } from './format.ts';
import type { JobsView } from './jobs.ts';

export interface ResumeDeps {
  readonly doc: DynamoDBDocumentClient;
  readonly table: string;
  readonly jobs: JobsView;
  readonly print: (line: string) => void;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/**
 * `rowstream resume <jobId>`: a FAILED job is reopened (RUNNING, no owner, lease expired); the next
 * producer sweep takes it and continues after the last row committed in Kafka. Nothing already on the
 * topic is sent again. Follows the job to its end unless `wait` is false; returns the exit code.
 */
export async function runResume(
  deps: ResumeDeps,
  o: { jobId: string; wait: boolean; timeoutMs: number },
): Promise<number> {
  const before = await deps.jobs.get(o.jobId);
  const reopened = await reopenFailedJob(deps.doc, deps.table, o.jobId, deps.now);
  if (!reopened) throw new UsageError(`no job ${o.jobId} in ${deps.table}`);
  if (!reopened.reopened) {
    throw new UsageError(
      `job ${o.jobId} is ${reopened.status}, not FAILED: only a failed job can be resumed` +
        (reopened.status === 'RUNNING' || reopened.status === 'PLANNED' ? ' (it is already going)' : ''),
    );
  }
  const from = before?.checkpoint?.rowsDone ?? 0;
  deps.print(
    `resumed ${o.jobId} (was FAILED: ${before?.failure?.reason ?? '?'}); a producer takes it over at its next sweep ` +
      `and continues after the last committed row (checkpoint: row ${from})`,
  );
  if (!o.wait) return EXIT.ok;
  const deadline = o.timeoutMs > 0 ? deps.now() + o.timeoutMs : Number.POSITIVE_INFINITY;
  let last: JobRecord | null = null;
  let lastRow = -1;
  while (deps.now() < deadline) {
    last = await deps.jobs.get(o.jobId);
    if (last && last.status !== 'RUNNING' && isTerminal(last.status)) break;
    const row = last?.checkpoint?.rowsDone ?? 0;
    if (row !== lastRow) {
      deps.print(`  ${last?.status ?? '?'}: row ${row}${last?.totalRows ? ` of ${last.totalRows}` : ''}`);
      lastRow = row;
    }
    await deps.sleep(1000);
  }
  if (!last || !isTerminal(last.status)) {
    deps.print(
      `still ${last?.status ?? 'unknown'} after the timeout; follow it with rowstream status ${o.jobId}`,
    );
    return EXIT.jobFailed;
  }
  deps.print(
    `${last.status}: ${last.rowsDelivered ?? 0} rows delivered, ${last.rowsRejected ?? 0} rejected` +
      (last.failure ? ` (${last.failure.reason}: ${last.failure.message})` : ''),
  );
  return exitCodeFor(last.status);
}
