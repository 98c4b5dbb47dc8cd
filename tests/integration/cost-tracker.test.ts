/**
 * cost-tracker against the local stack: two RUNNING jobs in the stage's jobs table, Cost Explorer
 * seeded on moto, one run; the EMF it writes is read back and checked against a hand calculation, and
 * crossing 80% of the budget is announced once, not again on the next runs.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyClients, type LocalClients, localClients } from '../../local/clients.ts';
import { seedCostExplorer } from '../../local/cost-explorer.ts';
import { monthToDatePeriod } from '../../services/cost-tracker/core.ts';
import { createCostTracker } from '../../services/cost-tracker/handler.ts';
import { CostTrackerEnv } from '../../services/cost-tracker/settings.ts';
import { loadConfig } from '../../services/shared/config.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { receiveUntil, tapBus } from '../../testkit/sqs.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

const GIB = 1024 ** 3;
const MIB = 1024 ** 2;
// Round prices, so the expected figures below can be worked out by hand.
const PRICES = {
  fargateVcpuHourUsd: 0.04,
  fargateGbHourUsd: 0.005,
  producerVcpu: 1,
  producerMemoryGb: 2,
  s3GetPer1000Usd: 0.0004,
  s3TransferPerGbUsd: 0,
  plannerPartBytes: 64 * MIB,
  kafkaIngressPerGbUsd: 0.1,
  kafkaBytesPerSourceByte: 1.5,
  eventBridgePerMillionUsd: 1,
  progressEventSeconds: 60,
  sqsPerMillionUsd: 0.4,
  sqsRequestsPerJob: 6,
  sqsRequestsPerMinute: 1,
};

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: LocalClients;
let doc: DynamoDBDocumentClient;
let tmp: string;
let emfPath: string;
let crossedUrl: string;
const now = new Date(Math.floor(Date.now() / 1000) * 1000);
const ago = (s: number) => new Date(now.getTime() - s * 1000).toISOString();

function runningJob(
  jobId: string,
  o: { startedSecondsAgo: number; size: number; read: number; rows: number },
): JobRecord {
  return {
    jobId,
    status: 'RUNNING',
    createdAt: ago(o.startedSecondsAgo + 60),
    updatedAt: ago(30),
    startedAt: ago(o.startedSecondsAgo),
    bucket: outputs.bucket,
    key: `inbound/${jobId}.csv`,
    etag: 'etag',
    versionId: null,
    sourceUri: `s3://${outputs.bucket}/inbound/${jobId}.csv`,
    size: o.size,
    totalRows: o.rows * 2,
    attempts: 1,
    checkpoint: {
      rowsDone: o.rows,
      rowsDelivered: o.rows,
      rowsRejected: 0,
      nextByteOffset: o.read,
      partitions: [],
      updatedAt: ago(30),
    },
  };
}

function tracker() {
  const config = loadConfig(CostTrackerEnv, {
    ...env,
    LOG_LEVEL: 'WARN',
    ROWSTREAM_METRICS_SINK: `file:${emfPath}`,
    ROWSTREAM_COST_PRICES: JSON.stringify(PRICES),
    ROWSTREAM_MONTHLY_BUDGET_USD: '500',
  });
  return createCostTracker(config);
}

async function emf(): Promise<Record<string, unknown>[]> {
  return (await readFile(emfPath, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  ({ outputs, env } = await freshStack('ct'));
  aws = localClients({ endpoint: env.AWS_ENDPOINT_URL! });
  doc = DynamoDBDocumentClient.from(aws.dynamodb);
  tmp = await mkdtemp(join(tmpdir(), 'rowstream-ct-'));
  emfPath = join(tmp, 'cost-tracker.emf.jsonl');
  crossedUrl = (
    await tapBus(aws, outputs.busName, `${outputs.stage}-budget-crossed`, {
      'detail-type': ['BudgetThresholdCrossed.v1'],
    })
  ).url;
});

afterAll(async () => {
  if (aws) destroyClients(aws);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('cost-tracker on the local stack', () => {
  it('estimates two RUNNING jobs; the EMF it writes matches the hand calculation', async () => {
    // Prepare
    const a = runningJob('j-cost-a', { startedSecondsAgo: 3600, size: 2 * GIB, read: GIB, rows: 10_000_000 });
    const b = runningJob('j-cost-b', {
      startedSecondsAgo: 1800,
      size: 512 * MIB,
      read: 256 * MIB,
      rows: 2_000_000,
    });
    for (const item of [a, b]) await doc.send(new PutCommand({ TableName: outputs.tables.jobs, Item: item }));
    const period = monthToDatePeriod(now);
    await seedCostExplorer(env.AWS_ENDPOINT_URL!, [
      {
        ResultsByTime: [
          {
            TimePeriod: { Start: period.start, End: period.end },
            Total: { UnblendedCost: { Amount: '425.00', Unit: 'USD' } },
            Groups: [],
            Estimated: true,
          },
        ],
      },
    ]);
    // Act
    const summary = await tracker().runOnce(now);
    // Assess
    expect(summary.running).toBe(2);
    const records = await emf();
    const perJob = (name: string, jobId: string) =>
      records.filter((r) => r.JobId === jobId && r[name] !== undefined).map((r) => r[name]);
    // A: 1 h; fargate 0.05 + s3 (32+1)/1000*0.0004 + kafka 1 GiB*1.5*0.1 = 0.15 + events 62/1e6 + sqs 66*0.4/1e6
    //    = 0.2001016 -> 0.200102 (6 decimals); per 1M rows: 0.2001016 / 10 = 0.02001016 -> 0.02001
    expect(perJob('EstimatedCostUsd', 'j-cost-a')).toEqual([0.200102]);
    expect(perJob('CostPerMillionRows', 'j-cost-a')).toEqual([0.02001]);
    // B: 30 min; fargate 0.025 + s3 (8+1)/1000*0.0004 + kafka 0.25 GiB*1.5*0.1 = 0.0375 + events 32/1e6
    //    + sqs 36*0.4/1e6 = 0.06255; per 1M rows: 0.06255 / 2 = 0.031275
    expect(perJob('EstimatedCostUsd', 'j-cost-b')).toEqual([0.06255]);
    expect(perJob('CostPerMillionRows', 'j-cost-b')).toEqual([0.031275]);
    const dims = records.find((r) => r.EstimatedCostUsd !== undefined)?._aws as {
      CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[];
    };
    expect(dims.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'Rowstream',
      Dimensions: [['Service', 'Stage', 'JobId']],
    });
    // The estimate is on the job record, and the record's own fields are untouched.
    const stored = await doc.send(
      new GetCommand({ TableName: outputs.tables.jobs, Key: { jobId: 'j-cost-a' } }),
    );
    expect(stored.Item).toMatchObject({
      estimatedCostUsd: 0.200102,
      status: 'RUNNING',
      updatedAt: a.updatedAt,
    });
    expect(stored.Item?.finalCostUsd).toBeUndefined();
    // Month-to-date from the seeded Cost Explorer: 425 of 500 = 85%.
    expect(records.find((r) => r.MonthToDateCostUsd !== undefined)?.MonthToDateCostUsd).toBe(425);
    expect(records.find((r) => r.BudgetUtilizationPercent !== undefined)?.BudgetUtilizationPercent).toBe(85);
  });

  it('crossing 80% of the budget emits BudgetThresholdCrossed once, not again on later runs', async () => {
    // Act: two more runs (one by a fresh instance, as after a cold start)
    await tracker().runOnce(new Date(now.getTime() + 300_000));
    await tracker().runOnce(new Date(now.getTime() + 600_000));
    // Assess: the first run (previous test) announced 50 and 80; nothing since
    const messages = await receiveUntil(aws.sqs, crossedUrl, (m) => m.length > 2, 4000);
    const details = messages.map(
      (m) => JSON.parse(m.Body!).detail as { thresholdPercent: number; utilizationPercent: number },
    );
    expect(details.map((d) => d.thresholdPercent).sort((x, y) => x - y)).toEqual([50, 80]);
    expect(details.find((d) => d.thresholdPercent === 80)?.utilizationPercent).toBe(85);
  });
});
