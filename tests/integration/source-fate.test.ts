/**
 * The source object's fate on the real local stack: the planner (in process, wired from the stage's
 * environment) and a real producer process tag the exact object version a job read with its job id and
 * outcome (S3 object tags on moto, per version); other versions of the key keep their own tags, and a
 * replayed JobStarted for a finished job changes nothing.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { GetObjectTaggingCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobIdFor } from '../../events/ids.ts';
import { jobStartedFromRecord } from '../../services/producer/core.ts';
import { awsClients } from '../../services/shared/aws.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { type InProcessPlanner, inProcessPlanner } from '../../testkit/planner.ts';
import {
  type ProducerProcess,
  REPO,
  sendJobStarted,
  startProducer,
  waitForJob,
} from '../../testkit/producer.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

let outputs: StackOutputs;
let aws: ReturnType<typeof awsClients>;
let planner: InProcessPlanner;
const drainPlanner = () => planner.drain();
let producer: ProducerProcess;
const logDir = join(REPO, '.local', 'test-logs');

beforeAll(async () => {
  const stack = await freshStack('sf');
  outputs = stack.outputs;
  aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  planner = inProcessPlanner(stack.env, aws);
  await drainPlanner(); // the s3:TestEvent of the fresh bucket notification
  producer = startProducer(
    {
      ...stack.env,
      ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
      ROWSTREAM_METRICS_SINK: `file:${join(logDir, `producer-emf-${outputs.stage}.log`)}`,
    },
    join(logDir, `producer-${outputs.stage}.log`),
  );
  await producer.waitForLog(/producer started/);
});

afterAll(async () => {
  producer?.kill('SIGTERM');
  await producer?.exited;
});

interface Uploaded {
  readonly jobId: string;
  readonly versionId: string;
}

/** Uploads into inbound/ (tagged by the uploader), runs the planner on the notification. */
async function drop(key: string, body: string, metadata: Record<string, string> = {}): Promise<Uploaded> {
  const put = await aws.s3.send(
    new PutObjectCommand({
      Bucket: outputs.bucket,
      Key: key,
      Body: body,
      Metadata: metadata,
      Tagging: 'team=ingest',
    }),
  );
  await drainPlanner();
  expect(put.VersionId).toBeTruthy();
  return {
    jobId: jobIdFor(outputs.bucket, key, {
      versionId: put.VersionId ?? null,
      etag: (put.ETag ?? '').replaceAll('"', ''),
    }),
    versionId: put.VersionId!,
  };
}

async function tagsOf(key: string, versionId: string): Promise<Record<string, string>> {
  const out = await aws.s3.send(
    new GetObjectTaggingCommand({ Bucket: outputs.bucket, Key: key, VersionId: versionId }),
  );
  return Object.fromEntries((out.TagSet ?? []).map((t) => [t.Key!, t.Value!]));
}

/** The tags are written just after the job's terminal record: poll until the outcome tag shows. */
async function waitForTags(key: string, versionId: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tags = await tagsOf(key, versionId);
    if (tags['rowstream-outcome'] || Date.now() > deadline) return tags;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const finished = (r: JobRecord) =>
  ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED', 'REJECTED'].includes(r.status);

describe('source object fate', () => {
  it('tags the completed version only; a replayed JobStarted changes nothing', async () => {
    // Prepare
    const topic = `it-fate-${randomBytes(3).toString('hex')}`;
    const key = `inbound/fate-${randomBytes(3).toString('hex')}.csv`;
    const first = await drop(key, 'id,name\n1,a\n2,b\n', { 'rowstream-topic': topic });
    await waitForJob(aws.doc, outputs.tables.jobs, first.jobId, finished);
    const firstTags = await waitForTags(key, first.versionId);
    // Act: a second version of the same key is uploaded and fails (a bad row with fail-on-bad-row)
    const second = await drop(key, 'id,name\n1,a\n2\n', {
      'rowstream-topic': topic,
      'rowstream-fail-on-bad-row': 'true',
    });
    const secondJob = await waitForJob(aws.doc, outputs.tables.jobs, second.jobId, finished);
    const secondTags = await waitForTags(key, second.versionId);
    // and the first job's JobStarted is delivered again
    const record = await waitForJob(aws.doc, outputs.tables.jobs, first.jobId, finished);
    const replay = jobStartedFromRecord(record, new Date());
    expect(replay).not.toBeNull();
    const sawReplay = producer.waitForLog(new RegExp(`already terminal.*${first.jobId}`), 60_000);
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, replay!);
    await sawReplay;
    // Assess
    expect(record.status).toBe('COMPLETED');
    expect(firstTags).toEqual({
      team: 'ingest',
      'rowstream-job': first.jobId,
      'rowstream-outcome': 'COMPLETED',
    });
    expect(secondJob.status).toBe('FAILED');
    expect(secondTags).toEqual({
      team: 'ingest',
      'rowstream-job': second.jobId,
      'rowstream-outcome': 'FAILED',
    });
    expect(await tagsOf(key, first.versionId)).toEqual(firstTags);
  });

  it('tags a rejected object version REJECTED with its own job id, each version apart', async () => {
    // Prepare
    const key = `inbound/fate-${randomBytes(3).toString('hex')}.txt`;
    // Act: two versions of a key that is not a CSV
    const v1 = await drop(key, 'id\n1\n');
    const v2 = await drop(key, 'id\n2\n');
    const jobs = [
      await waitForJob(aws.doc, outputs.tables.jobs, v1.jobId, finished),
      await waitForJob(aws.doc, outputs.tables.jobs, v2.jobId, finished),
    ];
    // Assess
    expect(jobs.map((j) => [j.status, j.rejection?.reason])).toEqual([
      ['REJECTED', 'NOT_CSV'],
      ['REJECTED', 'NOT_CSV'],
    ]);
    expect(v1.jobId).not.toBe(v2.jobId);
    for (const v of [v1, v2]) {
      expect(await tagsOf(key, v.versionId)).toEqual({
        team: 'ingest',
        'rowstream-job': v.jobId,
        'rowstream-outcome': 'REJECTED',
      });
    }
  });
});
