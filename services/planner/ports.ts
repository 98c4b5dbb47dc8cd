import type { JobRecord } from '../shared/jobs.ts';

/** The small interfaces the planner core talks through; adapters/ implements them. */

export interface ObjectHead {
  readonly size: number;
  /** Without quotes. */
  readonly etag: string;
  readonly versionId: string | null;
  readonly contentType: string | null;
  /** User metadata, names without `x-amz-meta-`, lower case. */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface ObjectVersionRef {
  readonly bucket: string;
  readonly key: string;
  readonly versionId: string | null;
}

export interface ObjectStorePort {
  /**
   * null when the object (or that version) does not exist. On AWS a HEAD of a missing key answers 403
   * instead of 404 when the caller has no s3:ListBucket: that is null too (the object vanished).
   */
  head(ref: ObjectVersionRef): Promise<ObjectHead | null>;
  /**
   * True when the key's current version is a delete marker (or the key is gone): in a versioned bucket a
   * plain DELETE keeps the notified version readable, but the uploader meant it gone. Optional: a store
   * without versions never needs it.
   */
  deletedSince?(ref: ObjectVersionRef): Promise<boolean>;
  /** Bytes [start, end) of the object version, streamed. */
  read(ref: ObjectVersionRef, start: number, end: number): AsyncIterable<Uint8Array>;
  /** Object tags; {} when tags are not read. */
  tags(ref: ObjectVersionRef): Promise<Readonly<Record<string, string>>>;
}

/** A header too large for the cache item, named by its JSON's digest: re-read from the object itself. */
export interface HeaderRef {
  readonly sha256: string;
  readonly bytes: number;
  readonly columns: number;
}

export interface CachedCount {
  readonly totalRows: number;
  /** Absent when the header is above INLINE_PLAN_BYTES: then `headerRef` names it. */
  readonly header?: string[];
  readonly headerRef?: HeaderRef;
  readonly dataOffset: number;
  readonly size: number;
  readonly delimiter: string;
  readonly countedAt: string;
}

export interface CountCachePort {
  get(cacheKey: string): Promise<CachedCount | null>;
  put(cacheKey: string, value: CachedCount): Promise<void>;
}

export interface JobStorePort {
  get(jobId: string): Promise<JobRecord | null>;
  /** Conditional put (the job must not exist): false when it already did. */
  create(record: JobRecord): Promise<boolean>;
  /** Sets the outbox flag if it is still false; a lost race is a no-op. */
  markStartedPublished(jobId: string, at: string): Promise<void>;
}
