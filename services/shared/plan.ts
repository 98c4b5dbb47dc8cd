import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { JobSchema, PlanRef } from '../../events/catalog.ts';
import { PREFIXES } from '../../topology/topology.ts';

/**
 * A job's plan: what the producer needs besides the object itself that can be large, i.e. the header
 * and the schema's definition. It travels inline in JobStarted.v1, the job record and the count-cache
 * item up to {@link INLINE_PLAN_BYTES}; above, the planner writes it to `plans/<jobId>.json` in the
 * job's bucket and those carry a {@link PlanRef} instead (docs/planner.md, "Large plans").
 */

/**
 * Above this many bytes (header as JSON + schema definition) the plan is kept in S3 and referenced.
 * Not the 256 KB of an EventBridge entry or the 400 KB of a DynamoDB item, but well under both: the job
 * record is rewritten by every lease renewal and checkpoint, and DynamoDB bills a write by the size of
 * the whole item (1 WCU per KB), so a 200 KB header would cost 200 WCUs a checkpoint; 32 KB leaves the
 * event and the item room for the other fields (checkpoint partitions, failure messages) as they grow.
 */
export const INLINE_PLAN_BYTES = 32 * 1024;

/** The plan object's content. Field order is fixed, so the same plan is always the same bytes. */
export const PlanDocument = z.object({
  version: z.literal(1),
  jobId: z.string().min(1),
  header: z.array(z.string()).min(1),
  /** The job schema's definition (Avro JSON text), when the job has one. */
  schemaDefinition: z.string().optional(),
});
export type PlanDocument = z.infer<typeof PlanDocument>;

/** Where a job's plan is written: one key per job, so a retried planner rewrites the same object. */
export function planKeyFor(jobId: string): string {
  return `${PREFIXES.plans}${jobId}.json`;
}

/** Bytes of the plan as it would travel inline: the header as JSON plus the schema definition. */
export function inlinePlanBytes(header: readonly string[], schema: JobSchema | null | undefined): number {
  return (
    Buffer.byteLength(JSON.stringify(header)) +
    (schema?.definition === undefined ? 0 : Buffer.byteLength(schema.definition))
  );
}

/** True when the plan is too large to travel inline (see {@link INLINE_PLAN_BYTES}). */
export function planNeedsRef(
  header: readonly string[],
  schema: JobSchema | null | undefined,
  limit = INLINE_PLAN_BYTES,
): boolean {
  return inlinePlanBytes(header, schema) > limit;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The plan object's bytes and the reference to it. Deterministic: same input, same bytes, same ref. */
export function encodePlan(
  jobId: string,
  header: readonly string[],
  schemaDefinition?: string,
): { readonly body: Buffer; readonly ref: PlanRef } {
  const doc: PlanDocument = {
    version: 1,
    jobId,
    header: [...header],
    ...(schemaDefinition === undefined ? {} : { schemaDefinition }),
  };
  const body = Buffer.from(JSON.stringify(doc));
  return {
    body,
    ref: { key: planKeyFor(jobId), sha256: sha256(body), bytes: body.length, columns: header.length },
  };
}

export const PLAN_FAILURES = {
  /** The plan object could not be read (access denied, no plan store): the cause is in the message. */
  unreadable: 'PLAN_UNREADABLE',
  /** The plan object does not exist (deleted, expired by the bucket's lifecycle, never written). */
  notFound: 'PLAN_NOT_FOUND',
  /** The plan object is not the one the job refers to (changed, truncated, another job's). */
  mismatch: 'PLAN_MISMATCH',
} as const;
export type PlanFailure = (typeof PLAN_FAILURES)[keyof typeof PLAN_FAILURES];

/** A referenced plan cannot be used; the message names the object. */
export class PlanError extends Error {
  override readonly name = 'PlanError';
  constructor(
    readonly reason: PlanFailure,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The plan a reference names, checked: its SHA-256 and size, then its content (the job, the column
 * count). Throws {@link PlanError} PLAN_MISMATCH naming the object when any of them differs.
 */
export function decodePlan(body: Uint8Array, ref: PlanRef, bucket: string, jobId: string): PlanDocument {
  const where = `s3://${bucket}/${ref.key}`;
  const mismatch = (why: string) =>
    new PlanError(PLAN_FAILURES.mismatch, `the job's plan ${where} ${why}; the job cannot run from it`);
  const actual = sha256(body);
  if (actual !== ref.sha256 || body.length !== ref.bytes) {
    throw mismatch(
      `is not the one the job refers to: ${body.length} bytes, SHA-256 ${actual} (expected ${ref.bytes} bytes, ${ref.sha256})`,
    );
  }
  let doc: PlanDocument;
  try {
    doc = PlanDocument.parse(JSON.parse(Buffer.from(body).toString('utf8')));
  } catch (e) {
    throw mismatch(`is not a plan document (${(e as Error).message.slice(0, 200)})`);
  }
  if (doc.jobId !== jobId) throw mismatch(`belongs to job ${doc.jobId}`);
  if (doc.header.length !== ref.columns) {
    throw mismatch(`has ${doc.header.length} columns, the reference says ${ref.columns}`);
  }
  return doc;
}

/** Reads and writes plan objects (services/shared/adapters/plan-store-s3.ts). */
export interface PlanStorePort {
  /** Writes (or rewrites) the object. */
  put(bucket: string, key: string, body: Buffer): Promise<void>;
  /** The object's bytes; null when it does not exist. */
  get(bucket: string, key: string): Promise<Uint8Array | null>;
}

/** The plan a reference names does not exist. */
export function planNotFound(bucket: string, key: string): PlanError {
  return new PlanError(
    PLAN_FAILURES.notFound,
    `the job's plan s3://${bucket}/${key} does not exist (deleted, or expired by the bucket's plans/ lifecycle rule); the job cannot run without its header`,
  );
}
