import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type JobStartedEvent, JobStartedV1 } from '../../../events/catalog.ts';
import { jobIdFor } from '../../../events/ids.ts';
import { jobStartedFromRecord, runJob } from '../../../services/producer/core.ts';
import { withPlan } from '../../../services/producer/job/plan.ts';
import { recordFromJobStarted } from '../../../services/shared/jobs.ts';
import { encodePlan, type PlanStorePort } from '../../../services/shared/plan.ts';
import { csvOf, jobFor, makeDeps, settings } from './fakes.ts';

/** A CSV whose header is `n` long column names, and its JobStarted with the plan referenced. */
function wideJob(rows: number, n = 3000) {
  const header = Array.from({ length: n }, (_, i) => `column_with_a_long_name_${i}`);
  const csv = Buffer.from(
    `${header.join(',')}\n${Array.from({ length: rows }, (_, r) => header.map((_, c) => `${r + 1}.${c}`).join(',')).join('\n')}\n`,
  );
  const jobId = jobIdFor('b', 'inbound/x.csv', { versionId: null, etag: 'etag' });
  const inline = jobFor(csv, { jobId, totalRows: rows });
  const { body, ref } = encodePlan(inline.jobId, header);
  const { header: _inS3, ...rest } = inline;
  const event: JobStartedEvent = { ...rest, planRef: ref };
  return { csv, header, body, ref, event };
}

function planStore(objects: Map<string, Uint8Array>): PlanStorePort & { gets: string[] } {
  const gets: string[] = [];
  return {
    gets,
    put: async (bucket, key, body) => void objects.set(`${bucket}/${key}`, body),
    get: async (bucket, key) => {
      gets.push(`${bucket}/${key}`);
      return objects.get(`${bucket}/${key}`) ?? null;
    },
  };
}

describe('withPlan (the producer intake of a referenced plan)', () => {
  it('passes an inline plan through without reading anything', async () => {
    const job = jobFor(csvOf(2));
    expect(await withPlan(job, null)).toEqual(job);
  });

  it('reads a referenced plan, checks it and puts back the header and the schema definition', async () => {
    const { header, ref, event } = wideJob(1, 10);
    const { body } = encodePlan(event.jobId, header, '{"type":"record"}');
    const ref2 = { ...ref, sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length };
    const schema = {
      source: 'inferred',
      registry: null,
      schemaName: null,
      version: null,
      versionId: null,
    } as const;
    const job = await withPlan({ ...event, planRef: ref2, schema }, async () => body);
    expect(job.header).toEqual(header);
    expect(job.schema?.definition).toBe('{"type":"record"}');
    // The reference stays: a record written from the job keeps the plan in S3.
    expect(job.planRef).toEqual(ref2);
    const record = recordFromJobStarted(job, 'RUNNING', job.occurredAt);
    expect(record.header).toBeUndefined();
    expect(record.schema?.definition).toBeUndefined();
    expect(record.planRef).toEqual(ref2);
  });
});

describe('a job whose plan is referenced', () => {
  it('runs from the plan read in S3: every value under its column name', async () => {
    // Prepare
    const { csv, header, body, event } = wideJob(3);
    const objects = new Map([[`b/${event.planRef!.key}`, body as Uint8Array]]);
    const plans = planStore(objects);
    const { deps, kafka, jobs } = makeDeps(csv, { plans });
    // Act
    const outcome = await runJob(event, deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'completed', status: 'COMPLETED', rows: 3 });
    expect(plans.gets).toEqual([`b/${event.planRef!.key}`]);
    const values = kafka.log.map((r) => JSON.parse(String(r.value)) as Record<string, string>);
    expect(values).toHaveLength(3);
    values.forEach((v, r) => {
      expect(Object.keys(v)).toEqual(header);
      expect(v[header[2999]!]).toBe(`${r + 1}.2999`);
    });
    // The record the job ran from kept the reference, never the header.
    expect(jobs.record?.planRef).toEqual(event.planRef);
    expect(jobs.record?.header).toBeUndefined();
  });

  it('fails PLAN_MISMATCH, naming the object, when the plan was changed; nothing is sent', async () => {
    // Prepare: one byte of the stored plan changed
    const { csv, body, event } = wideJob(3);
    const tampered = Buffer.from(body);
    tampered[body.length - 10] = 0x41;
    const { deps, kafka, jobs, bus } = makeDeps(csv, {
      plans: planStore(new Map([[`b/${event.planRef!.key}`, tampered]])),
    });
    // Act
    const outcome = await runJob(event, deps, settings());
    // Assess
    expect(outcome).toEqual({ kind: 'failed', reason: 'PLAN_MISMATCH' });
    expect(kafka.log).toHaveLength(0);
    expect(jobs.finished?.status).toBe('FAILED');
    expect(jobs.finished?.failure?.message).toContain(`s3://b/${event.planRef!.key}`);
    const failed = bus.entries.find((e) => e.detailType === 'JobFailed.v1')!;
    expect(JSON.parse(failed.detail)).toMatchObject({
      reason: 'PLAN_MISMATCH',
      message: expect.stringMatching(/is not the one the job refers to/),
    });
  });

  it('fails PLAN_NOT_FOUND when the plan object is gone', async () => {
    const { csv, event } = wideJob(2);
    const { deps, jobs } = makeDeps(csv, { plans: planStore(new Map()) });
    const outcome = await runJob(event, deps, settings());
    expect(outcome).toEqual({ kind: 'failed', reason: 'PLAN_NOT_FOUND' });
    expect(jobs.finished?.failure?.message).toBe(
      `the job's plan s3://b/${event.planRef!.key} does not exist (deleted, or expired by the bucket's plans/ lifecycle rule); the job cannot run without its header`,
    );
  });

  it('retries a transient read of the plan, and fails PLAN_UNREADABLE with the cause on a refusal', async () => {
    // Prepare: a 503 then the plan; and another job where S3 refuses (403)
    const { csv, body, event } = wideJob(2);
    let calls = 0;
    const flaky: PlanStorePort = {
      put: async () => {},
      get: async () => {
        if (calls++ === 0) throw Object.assign(new Error('SlowDown'), { $metadata: { httpStatusCode: 503 } });
        return body;
      },
    };
    const denied: PlanStorePort = {
      put: async () => {},
      get: async () => {
        throw Object.assign(new Error('Access Denied'), {
          name: 'AccessDenied',
          $metadata: { httpStatusCode: 403 },
        });
      },
    };
    // Act
    const ok = await runJob(event, makeDeps(csv, { plans: flaky }).deps, settings());
    const refused = makeDeps(csv, { plans: denied });
    const failed = await runJob(event, refused.deps, settings());
    // Assess
    expect(ok).toMatchObject({ kind: 'completed', rows: 2 });
    expect(calls).toBe(2);
    expect(failed).toEqual({ kind: 'failed', reason: 'PLAN_UNREADABLE' });
    expect(refused.jobs.finished?.failure?.message).toBe(
      `the job's plan s3://b/${event.planRef!.key} could not be read: Access Denied`,
    );
  });

  it('the sweeper rebuilds a JobStarted.v1 carrying the reference from the record', () => {
    const { event } = wideJob(1, 5);
    const record = recordFromJobStarted(event, 'PLANNED', event.occurredAt);
    const again = jobStartedFromRecord(record, new Date('2026-11-25T12:10:00Z'));
    expect(JobStartedV1.safeParse(again).success).toBe(true);
    expect(again?.planRef).toEqual(event.planRef);
    expect(again?.header).toBeUndefined();
  });

  it('a lost record is re-created with the reference, not the header', async () => {
    // Prepare: a first run committed every row, then the record was lost
    const { csv, body, event } = wideJob(4);
    const objects = new Map([[`b/${event.planRef!.key}`, body as Uint8Array]]);
    const first = makeDeps(csv, { plans: planStore(objects) });
    await runJob(event, first.deps, settings());
    const { deps, kafka, jobs } = makeDeps(csv, { plans: planStore(objects) });
    kafka.log.push(...first.kafka.log);
    jobs.plannerRecord = false;
    // Act
    const outcome = await runJob(event, deps, settings());
    // Assess: nothing sent twice, the recovered record refers to the plan
    expect(outcome).toMatchObject({ kind: 'completed', rows: 4 });
    expect(kafka.log).toHaveLength(4);
    expect(jobs.record?.recoveredFrom).toBe('kafka');
    expect(jobs.record?.planRef).toEqual(event.planRef);
    expect(jobs.record?.header).toBeUndefined();
  });
});
