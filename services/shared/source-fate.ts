import { PREFIXES } from '../../topology/topology.ts';
import type { MovedSource } from './jobs.ts';
import type { Log } from './logger.ts';

/**
 * The source object's fate: when a job ends, the service that ends it (the producer on COMPLETED or
 * FAILED, the planner on JobRejected) tags the exact object version it read with the job id and the
 * outcome (docs/planner.md, "The source object's fate"). With ROWSTREAM_SOURCE_FATE=move the tagged
 * version is then moved to processed/ (COMPLETED) or failed/ (FAILED, REJECTED): copied, the copy
 * recorded in the job record (`movedTo`), the source version deleted (see {@link settleSourceFate}).
 *
 * Best effort and idempotent: a failure to tag or move is logged with the job id and never changes the
 * job's outcome; every step is safe to run again (a replay, a redelivery), and changes nothing once done.
 */

/** `tag` (the default): tags only, the object stays in inbound/. `move`: tags, then moves. */
export const SOURCE_FATE_MODES = ['tag', 'move'] as const;
export type SourceFateMode = (typeof SOURCE_FATE_MODES)[number];

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

// ---- moving ----------------------------------------------------------------------------------------

/** Where a finished object goes: processed/ when its rows are in Kafka, failed/ otherwise. */
export function fateDestination(
  originalKey: string,
  outcome: SourceOutcome,
  inboundPrefix: string = PREFIXES.inbound,
): string {
  const rest = originalKey.startsWith(inboundPrefix) ? originalKey.slice(inboundPrefix.length) : originalKey;
  return `${outcome === 'COMPLETED' ? PREFIXES.processed : PREFIXES.failed}${rest}`;
}

/** Copies and deletes exact object versions (adapters/object-move-s3.ts). */
export interface ObjectMovePort {
  /**
   * Copies the version to `toKey` in the same bucket, with its metadata and tags; the copy's version.
   * `size` (bytes, when known) lets the adapter copy a large object in parts.
   */
  copy(
    from: SourceRef & { readonly versionId: string },
    toKey: string,
    size?: number,
  ): Promise<{ versionId: string }>;
  /**
   * The current version of `key` when it is a copy this job made (tags `rowstream-job` = jobId and
   * `rowstream-outcome` = outcome): a copy made by an attempt that stopped before recording it.
   */
  findCopy(bucket: string, key: string, fate: SourceFate): Promise<string | null>;
  /** Deletes exactly this version (never a delete marker); a version already gone is not an error. */
  deleteVersion(ref: SourceRef & { readonly versionId: string }): Promise<void>;
}

/** The job record's `movedTo` (adapters/move-record-dynamo.ts). */
export interface MoveRecordPort {
  /**
   * Sets `movedTo` if the job is still in a terminal status and its `movedTo` is still `expected`
   * (null: never moved). false when not: the job was resumed meanwhile, or another run recorded a move.
   */
  recordMove(jobId: string, moved: MovedSource, expected: MovedSource | null): Promise<boolean>;
}

/** What a service needs to move sources (absent: ROWSTREAM_SOURCE_FATE=tag). */
export interface SourceMoveDeps {
  readonly objects: ObjectMovePort;
  readonly records: MoveRecordPort;
  readonly inboundPrefix?: string;
  readonly now?: () => Date;
}

/** The job as the fate step sees it: its identity, the version the planner saw, and any earlier move. */
export interface FateJob {
  readonly jobId: string;
  readonly bucket: string;
  readonly key: string;
  readonly versionId: string | null;
  readonly movedTo?: MovedSource | undefined;
  /** The object's size (a copy above 5 GiB goes in parts). */
  readonly size?: number | undefined;
}

export type SettleResult =
  | { readonly kind: 'tagged'; readonly tags: FateResult }
  | { readonly kind: 'moved'; readonly to: MovedSource }
  | { readonly kind: 'already-moved'; readonly to: MovedSource }
  | { readonly kind: 'not-moved'; readonly why: string };

/**
 * The end-of-job step: tags the object where it is now, then (move mode) moves it. The order makes
 * every crash point safe and every step repeatable:
 *
 * 1. copy the version to processed/ or failed/ (a copy left by an earlier attempt is found and reused);
 * 2. record `movedTo` in the job record, conditional on the job being terminal and not moved since:
 *    from here on every reader reads the copy;
 * 3. delete the source version (by VersionId: only that version, no delete marker).
 *
 * A crash after 1 leaves the source where the record says (an earlier copy is adopted on the next run);
 * after 2 the record names the copy and the next run only deletes. Never throws.
 */
export async function settleSourceFate(
  deps: { readonly tags?: ObjectTagsPort | null; readonly move?: SourceMoveDeps | null },
  job: FateJob,
  outcome: SourceOutcome,
  log: Log,
): Promise<SettleResult> {
  const fate = { jobId: job.jobId, outcome };
  const here = job.movedTo
    ? { bucket: job.bucket, key: job.movedTo.key, versionId: job.movedTo.versionId }
    : { bucket: job.bucket, key: job.key, versionId: job.versionId };
  const tags = await recordSourceFate(deps.tags, here, fate, log);
  const move = deps.move;
  if (!move) return { kind: 'tagged', tags };
  const fields = { jobId: job.jobId, outcome, bucket: job.bucket, key: here.key, versionId: here.versionId };
  const toKey = fateDestination(job.key, outcome, move.inboundPrefix);
  if (job.movedTo && job.movedTo.key === toKey && job.movedTo.outcome === outcome) {
    // Copied and recorded before: only the delete may be missing (a crash, a failed call).
    try {
      await move.objects.deleteVersion({ bucket: job.bucket, ...job.movedTo.from });
      return { kind: 'already-moved', to: job.movedTo };
    } catch (e) {
      log.warn('could not delete the moved source version; the next run of the step retries', {
        ...fields,
        from: job.movedTo.from,
        error: (e as Error).message,
      });
      return { kind: 'not-moved', why: 'delete failed' };
    }
  }
  const versionId = here.versionId;
  if (!versionId) {
    log.warn(
      'not moving the source object: moving needs a versioned bucket (the job pins a version)',
      fields,
    );
    return { kind: 'not-moved', why: 'unversioned' };
  }
  const from = { bucket: job.bucket, key: here.key, versionId };
  try {
    const copied =
      (await move.objects.findCopy(job.bucket, toKey, fate)) ??
      (await move.objects.copy(from, toKey, job.size)).versionId;
    const moved: MovedSource = {
      key: toKey,
      versionId: copied,
      outcome,
      from: { key: from.key, versionId },
      movedAt: (move.now?.() ?? new Date()).toISOString(),
    };
    if (!(await move.records.recordMove(job.jobId, moved, job.movedTo ?? null))) {
      // Resumed meanwhile (it reads the source from where it was) or moved by a concurrent run: the
      // source stays; the copy just made is an unreferenced duplicate, never the job's only copy.
      log.warn('not moving the source object: the job record changed meanwhile (resumed or moved)', {
        ...fields,
        copy: { key: toKey, versionId: copied },
      });
      return { kind: 'not-moved', why: 'record changed' };
    }
    log.info('source object moved', { ...fields, to: { key: toKey, versionId: copied } });
    await move.objects.deleteVersion(from).catch((e: unknown) => {
      log.warn('source moved but its old version could not be deleted; the next run of the step retries', {
        ...fields,
        error: (e as Error).message,
      });
    });
    return { kind: 'moved', to: moved };
  } catch (e) {
    log.warn('could not move the source object; it stays where the job record says', {
      ...fields,
      to: toKey,
      error: (e as Error).message,
    });
    return { kind: 'not-moved', why: (e as Error).message };
  }
}
