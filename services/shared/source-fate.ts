import type { Log } from './logger.ts';

/**
 * The source object's fate: when a job ends, the service that ends it (the producer on COMPLETED or
 * FAILED, the planner on JobRejected) tags the exact object version it read with the job id and the
 * outcome (docs/planner.md, "The source object's fate"). The object is never moved: the count cache
 * (keyed by object version), resume and replay keep finding it; lifecycle rules can act on the tags.
 *
 * Best effort and idempotent: a failure to tag is logged with the job id and never changes the job's
 * outcome; tags already carrying these values are not written again (a replay changes nothing).
 */

export const FATE_TAGS = { job: 'rowstream-job', outcome: 'rowstream-outcome' } as const;

/** COMPLETED covers COMPLETED_WITH_REJECTS: the rows are in Kafka, the rejects in the job record. */
export type SourceOutcome = 'COMPLETED' | 'FAILED' | 'REJECTED';

/** S3 allows at most 10 tags on an object. */
export const MAX_OBJECT_TAGS = 10;

export interface SourceRef {
  readonly bucket: string;
  readonly key: string;
  /** The version the job read; null in an unversioned bucket (then the key's current object). */
  readonly versionId: string | null;
}

export interface SourceFate {
  readonly jobId: string;
  readonly outcome: SourceOutcome;
}

/** An object version's tags (adapters/object-tags-s3.ts). */
export interface ObjectTagsPort {
  get(ref: SourceRef): Promise<Readonly<Record<string, string>>>;
  /** Replaces the version's whole tag set. */
  put(ref: SourceRef, tags: Readonly<Record<string, string>>): Promise<void>;
}

/**
 * The tag set to write: the object's other tags kept, ours set. null when it already carries them.
 * Throws when the merge would exceed S3's 10 tags (the uploader's tags are never dropped for ours).
 */
export function fateTagSet(
  existing: Readonly<Record<string, string>>,
  fate: SourceFate,
): Record<string, string> | null {
  if (existing[FATE_TAGS.job] === fate.jobId && existing[FATE_TAGS.outcome] === fate.outcome) return null;
  const merged = { ...existing, [FATE_TAGS.job]: fate.jobId, [FATE_TAGS.outcome]: fate.outcome };
  if (Object.keys(merged).length > MAX_OBJECT_TAGS) {
    throw new Error(
      `the object already has ${Object.keys(existing).length} tags; adding ours would exceed S3's ${MAX_OBJECT_TAGS}`,
    );
  }
  return merged;
}

export type FateResult = 'tagged' | 'unchanged' | 'failed' | 'off';

/** Tags the source object version with the job's fate; never throws. */
export async function recordSourceFate(
  port: ObjectTagsPort | null | undefined,
  ref: SourceRef,
  fate: SourceFate,
  log: Log,
): Promise<FateResult> {
  if (!port) return 'off';
  try {
    const tags = fateTagSet(await port.get(ref), fate);
    if (!tags) return 'unchanged';
    await port.put(ref, tags);
    return 'tagged';
  } catch (e) {
    log.warn('could not tag the source object with the job outcome', {
      jobId: fate.jobId,
      outcome: fate.outcome,
      bucket: ref.bucket,
      key: ref.key,
      versionId: ref.versionId,
      error: (e as Error).message,
    });
    return 'failed';
  }
}
