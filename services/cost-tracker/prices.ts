import { z } from 'zod';
import type { JobRecord } from '../shared/jobs.ts';
import { isTerminal } from '../shared/jobs.ts';
import { PriceConfigError } from './errors.ts';

/**
 * Unit prices and usage model of one job. Defaults: public on-demand prices of us-east-1 (Linux/x86
 * Fargate, S3 Standard, MSK Serverless, EventBridge custom events, SQS standard). Override any field
 * with ROWSTREAM_COST_PRICES (JSON). An estimate, not a bill: the month-to-date figure from Cost
 * Explorer is the truth, a day late.
 */
export const PriceTable = z.strictObject({
  fargateVcpuHourUsd: z.number().nonnegative().default(0.04048),
  fargateGbHourUsd: z.number().nonnegative().default(0.004445),
  /** Size of one producer task (the task works on one job at a time). */
  producerVcpu: z.number().positive().default(1),
  producerMemoryGb: z.number().positive().default(2),
  s3GetPer1000Usd: z.number().nonnegative().default(0.0004),
  /** S3 to compute in the same region is free; set for cross-region buckets. */
  s3TransferPerGbUsd: z.number().nonnegative().default(0),
  /** The planner counts rows with ranged GETs of this size (ROWSTREAM_PLANNER_PART_MB, 64 MiB). */
  plannerPartBytes: z
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  kafkaIngressPerGbUsd: z.number().nonnegative().default(0.1),
  /** Kafka bytes per source byte: JSON records repeat the header names, headers add ~100 bytes a row. */
  kafkaBytesPerSourceByte: z.number().positive().default(1.5),
  eventBridgePerMillionUsd: z.number().nonnegative().default(1),
  /** JobProgress.v1 cadence of the producer (ROWSTREAM_PRODUCER_PROGRESS_MS, 60 s). */
  progressEventSeconds: z.number().positive().default(60),
  sqsPerMillionUsd: z.number().nonnegative().default(0.4),
  /** S3 notification (send, receive, delete) + JobStarted (send, receive, delete). */
  sqsRequestsPerJob: z.number().nonnegative().default(6),
  /** The producer extends the JobStarted message's visibility while it works. */
  sqsRequestsPerMinute: z.number().nonnegative().default(1),
});
export type PriceTable = z.infer<typeof PriceTable>;

export const DEFAULT_PRICES: PriceTable = PriceTable.parse({});

export function priceTable(overrides: unknown): PriceTable {
  let raw = overrides ?? {};
  if (typeof raw === 'string') {
    try {
      raw = raw.trim() === '' ? {} : JSON.parse(raw);
    } catch (e) {
      throw new PriceConfigError(`ROWSTREAM_COST_PRICES is not JSON: ${(e as Error).message}`);
    }
  }
  const parsed = PriceTable.safeParse(raw);
  if (!parsed.success) throw new PriceConfigError(`ROWSTREAM_COST_PRICES: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

const GIB = 1024 ** 3;

export interface CostBreakdown {
  readonly elapsedSeconds: number;
  readonly rowsDone: number;
  readonly bytesRead: number;
  readonly s3Requests: number;
  readonly events: number;
  readonly sqsRequests: number;
  readonly fargateUsd: number;
  readonly s3Usd: number;
  readonly kafkaUsd: number;
  readonly eventBridgeUsd: number;
  readonly sqsUsd: number;
  readonly totalUsd: number;
  /** null until a row is done. */
  readonly costPerMillionRows: number | null;
}

/**
 * Cost of a job so far (RUNNING: up to `now`; finished: up to finishedAt). Pure.
 *
 * - Fargate: elapsed hours x (vCPU x vCPU-hour + GB x GB-hour) of one producer task.
 * - S3: the planner's count (ceil(size / plannerPartBytes) GETs, size bytes) plus one ranged GET per
 *   producer attempt (a resume opens a new range) over the bytes read so far.
 * - Kafka ingress: bytes read x kafkaBytesPerSourceByte.
 * - EventBridge: JobStarted + JobCompleted/Failed + one JobProgress per progress interval.
 * - SQS: fixed requests per job + visibility extensions per minute.
 */
export function estimateCost(job: JobRecord, now: Date, p: PriceTable): CostBreakdown {
  const terminal = isTerminal(job.status);
  const start = Date.parse(job.startedAt ?? job.createdAt);
  const end = terminal && job.finishedAt ? Date.parse(job.finishedAt) : now.getTime();
  const elapsedSeconds =
    Number.isFinite(start) && Number.isFinite(end) ? Math.max(0, (end - start) / 1000) : 0;
  const rowsDone = terminal
    ? (job.rowsDelivered ?? job.checkpoint?.rowsDelivered ?? 0) +
      (job.rowsRejected ?? job.checkpoint?.rowsRejected ?? 0)
    : (job.checkpoint?.rowsDone ?? 0);
  const producerBytes =
    terminal && job.status !== 'FAILED' ? job.size : (job.checkpoint?.nextByteOffset ?? 0);
  const bytesRead = job.size + producerBytes;
  const attempts = Math.max(1, job.attempts ?? 1);
  const s3Requests = Math.ceil(job.size / p.plannerPartBytes) + (job.status === 'PLANNED' ? 0 : attempts);
  const events = 2 + Math.floor(elapsedSeconds / p.progressEventSeconds);
  const sqsRequests = p.sqsRequestsPerJob + Math.floor(elapsedSeconds / 60) * p.sqsRequestsPerMinute;

  const fargateUsd =
    (elapsedSeconds / 3600) *
    (p.producerVcpu * p.fargateVcpuHourUsd + p.producerMemoryGb * p.fargateGbHourUsd);
  const s3Usd = (s3Requests / 1000) * p.s3GetPer1000Usd + (bytesRead / GIB) * p.s3TransferPerGbUsd;
  const kafkaUsd = ((producerBytes * p.kafkaBytesPerSourceByte) / GIB) * p.kafkaIngressPerGbUsd;
  const eventBridgeUsd = (events / 1e6) * p.eventBridgePerMillionUsd;
  const sqsUsd = (sqsRequests / 1e6) * p.sqsPerMillionUsd;
  const totalUsd = fargateUsd + s3Usd + kafkaUsd + eventBridgeUsd + sqsUsd;
  return {
    elapsedSeconds,
    rowsDone,
    bytesRead,
    s3Requests,
    events,
    sqsRequests,
    fargateUsd,
    s3Usd,
    kafkaUsd,
    eventBridgeUsd,
    sqsUsd,
    totalUsd,
    costPerMillionRows: rowsDone > 0 ? (totalUsd / rowsDone) * 1e6 : null,
  };
}
