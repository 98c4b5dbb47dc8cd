import type { JobStatus } from '../../events/catalog.ts';
import type { JobRecord } from '../shared/jobs.ts';

/** The small interfaces the cost-tracker core talks through; adapters/ implements them. */

export interface CostJobsPort {
  /** Jobs with this status through the GSI byStatus (never a scan), optionally updated after a time. */
  byStatus(status: JobStatus, options?: { updatedAfter?: string }): AsyncIterable<JobRecord>;
  /** Writes the cost fields only (never status or updatedAt, which belong to the producer). */
  setCost(
    jobId: string,
    cost: { estimatedCostUsd: number; finalCostUsd?: number; costUpdatedAt: string },
  ): Promise<void>;
}

/** Month-to-date cost as Cost Explorer tells it, or why it cannot. */
export type MonthToDate =
  | { readonly available: true; readonly amountUsd: number; readonly estimated: boolean }
  | { readonly available: false; readonly reason: string };

export interface CostExplorerPort {
  /** Cost of resources tagged `tags` from `start` (inclusive) to `end` (exclusive), YYYY-MM-DD. */
  monthToDate(input: {
    start: string;
    end: string;
    tags: Readonly<Record<string, string>>;
  }): Promise<MonthToDate>;
}

export interface MtdState {
  readonly month: string;
  readonly amountUsd: number | null;
  readonly estimated: boolean;
  /** When Cost Explorer answered (ISO); null after a failure. */
  readonly fetchedAt: string | null;
  /** When it last failed or had no data (ISO), to back off. */
  readonly failedAt: string | null;
  readonly reason: string | null;
}

export interface CostStatePort {
  getMtd(): Promise<MtdState | null>;
  putMtd(state: MtdState): Promise<void>;
  /** Whether the crossing of `thresholdPercent` in `month` was already announced. */
  thresholdAnnounced(month: string, thresholdPercent: number): Promise<boolean>;
  markThresholdAnnounced(month: string, thresholdPercent: number, at: string): Promise<void>;
}
