import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { JOB_STATUSES, type JobStatus } from '../events/catalog.ts';
import { JobRecord } from '../services/shared/jobs.ts';
import { jobsByStatus } from '../services/shared/jobs-table.ts';

/** What the CLI and the dashboard read about jobs. */
export interface JobsView {
  get(jobId: string): Promise<JobRecord | null>;
  /** Newest first (by updatedAt), at most `limit`. */
  list(options: { statuses?: readonly JobStatus[]; limit: number }): Promise<JobRecord[]>;
}

/** Items that do not match the shared shape are skipped (never crash a status view), not repaired. */
function parseJob(item: Record<string, unknown> | undefined): JobRecord | null {
  if (!item) return null;
  const parsed = JobRecord.safeParse(item);
  return parsed.success ? parsed.data : null;
}

/** {@link JobsView} over the jobs table and its byStatus GSI (no scans). */
export function dynamoJobsView(doc: DynamoDBDocumentClient, table: string): JobsView {
  return {
    async get(jobId) {
      const out = await doc.send(new GetCommand({ TableName: table, Key: { jobId }, ConsistentRead: true }));
      return parseJob(out.Item);
    },
    async list({ statuses = JOB_STATUSES, limit }) {
      const perStatus = await Promise.all(
        statuses.map(async (status) => {
          const jobs: JobRecord[] = [];
          for await (const item of jobsByStatus(doc, table, status, { newestFirst: true, limit })) {
            const job = parseJob(item);
            if (job) jobs.push(job);
          }
          return jobs;
        }),
      );
      return newestFirst(perStatus.flat()).slice(0, limit);
    },
  };
}

export function newestFirst(jobs: readonly JobRecord[]): JobRecord[] {
  return [...jobs].sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : 0));
}
