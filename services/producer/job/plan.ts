import type { JobStarted, JobStartedEvent } from '../../../events/catalog.ts';
import { decodePlan, PLAN_FAILURES, PlanError, planNotFound } from '../../shared/plan.ts';
import { ProducerError } from '../errors.ts';

/**
 * The job's plan cannot be had (PLAN_NOT_FOUND, PLAN_MISMATCH, PLAN_UNREADABLE): the job fails with
 * the plan object named, since no row can be read without the header.
 */
export class PlanUnavailableError extends ProducerError {
  override readonly name = 'PlanUnavailableError';
}

/**
 * The job with its plan at hand: an inline plan as it is; a referenced one read from S3 (`fetch`:
 * the object's bytes or null when it does not exist; the caller retries transient errors) and checked
 * against its SHA-256, its header and schema definition put back. The reference is kept, so a record
 * written from the result stays small. Throws {@link PlanUnavailableError} naming the object.
 */
export async function withPlan(
  job: JobStartedEvent,
  fetch: ((key: string) => Promise<Uint8Array | null>) | null,
): Promise<JobStarted> {
  if (job.header) return { ...job, header: job.header };
  const ref = job.planRef;
  if (!ref) {
    throw new PlanUnavailableError(
      PLAN_FAILURES.mismatch,
      'the job has neither a header nor a plan reference',
    );
  }
  const where = `s3://${job.bucket}/${ref.key}`;
  try {
    if (!fetch) throw new Error('this producer has no plan store to read it from');
    const body = await fetch(ref.key);
    if (!body) throw planNotFound(job.bucket, ref.key);
    const plan = decodePlan(body, ref, job.bucket, job.jobId);
    const schema =
      job.schema && plan.schemaDefinition !== undefined
        ? { ...job.schema, definition: plan.schemaDefinition }
        : job.schema;
    return { ...job, header: plan.header, ...(schema ? { schema } : {}) };
  } catch (e) {
    if (e instanceof PlanError) throw new PlanUnavailableError(e.reason, e.message);
    // Transient errors arrive here only once the caller's retries are spent (a ProducerError then).
    if (e instanceof ProducerError) throw e;
    throw new PlanUnavailableError(
      PLAN_FAILURES.unreadable,
      `the job's plan ${where} could not be read: ${(e as Error)?.message ?? String(e)}`,
    );
  }
}
