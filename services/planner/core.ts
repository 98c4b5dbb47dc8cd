import type { BusPort } from '../../events/bus.ts';
import { event, publish } from '../../events/bus.ts';
import type { JobOptions, RejectionReason } from '../../events/catalog.ts';
import { eventIdFor, jobIdFor } from '../../events/ids.ts';
import type { JobRecord } from '../shared/jobs.ts';
import type { Log } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import { countRegion } from './count.ts';
import { NotCsvError, type Position, RejectedObjectError } from './errors.ts';
import { type HeaderInfo, MAX_HEADER_BYTES, readHeader } from './header.ts';
import type { ObjectCreated } from './notification.ts';
import { type OptionDefaults, rawOverrides, resolveDelimiter, resolveOptions } from './options.ts';
import type { CountCachePort, JobStorePort, ObjectHead, ObjectStorePort, ObjectVersionRef } from './ports.ts';

export interface PlannerSettings {
  readonly inboundPrefix: string;
  readonly defaults: OptionDefaults;
  readonly partSize: number;
  readonly concurrency: number;
}

export interface PlannerDeps {
  readonly store: ObjectStorePort;
  readonly cache: CountCachePort;
  readonly jobs: JobStorePort;
  readonly bus: BusPort;
  readonly metrics: MetricsPort;
  readonly log: Log;
  readonly settings: PlannerSettings;
  readonly now?: () => Date;
}

// ---- outcomes -------------------------------------------------------------------------------------

export type PlanOutcome =
  | { readonly kind: 'ignored'; readonly reason: string }
  | {
      readonly kind: 'planned';
      readonly jobId: string;
      readonly totalRows: number;
      readonly cacheHit: boolean;
    }
  | { readonly kind: 'duplicate'; readonly jobId: string; readonly republished: boolean }
  | { readonly kind: 'rejected'; readonly jobId: string; readonly reason: RejectionReason };

/** Which keys become jobs. gzip is rejected, not ignored, so the uploader hears why nothing happened. */
export function classifyKey(key: string, inboundPrefix: string): 'csv' | 'gzip' | 'other' {
  if (!key.startsWith(inboundPrefix) || key.endsWith('/')) return 'other';
  const lower = key.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.csv.gz')) return 'gzip';
  return 'other';
}

export const cacheKeyFor = (bucket: string, key: string, etag: string) => `${bucket}/${key}/${etag}`;

/**
 * Plans one created object: HEAD, header, row count (cached by ETag), job record, JobStarted. Bad
 * input becomes a JobRejected and a REJECTED record; anything else that throws (AWS errors after the
 * SDK's retries) propagates so the message goes back to the queue.
 */
export async function planObject(deps: PlannerDeps, n: ObjectCreated): Promise<PlanOutcome> {
  const { log, settings } = deps;
  const now = deps.now ?? (() => new Date());
  if (!n.eventName.startsWith('ObjectCreated:')) {
    log.info('ignored: not an ObjectCreated event', { bucket: n.bucket, key: n.key, eventName: n.eventName });
    return { kind: 'ignored', reason: 'not ObjectCreated' };
  }
  const kind = classifyKey(n.key, settings.inboundPrefix);
  if (kind === 'other') {
    log.info('ignored: not a .csv under the inbound prefix', { bucket: n.bucket, key: n.key });
    return { kind: 'ignored', reason: 'not an inbound .csv' };
  }

  const head = await deps.store.head({ bucket: n.bucket, key: n.key, versionId: n.versionId });
  if (!head) {
    const jobId = jobIdFor(n.bucket, n.key, { versionId: n.versionId, etag: n.etag ?? 'unknown' });
    return reject(deps, now(), {
      jobId,
      bucket: n.bucket,
      key: n.key,
      etag: n.etag,
      versionId: n.versionId,
      size: n.size ?? 0,
      contentType: null,
      error: new RejectedObjectError(
        'OBJECT_NOT_FOUND',
        `s3://${n.bucket}/${n.key}${n.versionId ? ` (version ${n.versionId})` : ''} no longer exists: it was deleted or overwritten before it could be read`,
      ),
    });
  }
  const ref: ObjectVersionRef = { bucket: n.bucket, key: n.key, versionId: head.versionId };
  const jobId = jobIdFor(n.bucket, n.key, { versionId: head.versionId, etag: head.etag });
  const jobLog = { jobId, bucket: n.bucket, key: n.key, etag: head.etag, versionId: head.versionId };

  // A duplicate notification (or an archive replay) lands here before any reading.
  const existing = await deps.jobs.get(jobId);
  if (existing) return onExisting(deps, existing, now());

  const base = {
    jobId,
    bucket: n.bucket,
    key: n.key,
    etag: head.etag,
    versionId: head.versionId,
    size: head.size,
    contentType: head.contentType,
  };
  try {
    if (kind === 'gzip') throw new NotCsvError('gzip is not supported: upload the plain .csv');
    const tags = await deps.store.tags(ref);
    const overrides = rawOverrides(head.metadata, tags);
    const delimiter = resolveDelimiter(overrides, settings.defaults);
    const counted = await countObject(deps, ref, head, delimiter);
    const { topic, options } = resolveOptions(overrides, settings.defaults, counted.header);
    return await createPlanned(deps, now(), { ...base, ...counted, topic, options });
  } catch (e) {
    if (e instanceof RejectedObjectError) return reject(deps, now(), { ...base, error: e });
    log.error('planning failed; the message goes back to the queue', { ...jobLog, error: e as Error });
    throw e;
  }
}

interface Counted {
  readonly header: string[];
  readonly dataOffset: number;
  readonly totalRows: number;
  readonly cacheHit: boolean;
}

async function countObject(
  deps: PlannerDeps,
  ref: ObjectVersionRef,
  head: ObjectHead,
  delimiter: string,
): Promise<Counted> {
  const cacheKey = cacheKeyFor(ref.bucket, ref.key, head.etag);
  const cached = await deps.cache.get(cacheKey);
  const props = { bucket: ref.bucket, key: ref.key, etag: head.etag };
  if (cached && cached.size === head.size && cached.delimiter === delimiter) {
    deps.metrics.record('CacheHits', 1, 'Count', { properties: props });
    deps.log.info('row count from cache', { ...props, totalRows: cached.totalRows });
    return {
      header: cached.header,
      dataOffset: cached.dataOffset,
      totalRows: cached.totalRows,
      cacheHit: true,
    };
  }
  const started = performance.now();
  const info: HeaderInfo = readHeader(
    await readPrefix(deps.store, ref, Math.min(head.size, MAX_HEADER_BYTES)),
    head.size,
    delimiter,
  );
  const totalRows = await countRegion(
    (start, end) => deps.store.read(ref, start, end),
    { dataOffset: info.dataOffset, size: head.size },
    { partSize: deps.settings.partSize, concurrency: deps.settings.concurrency },
  );
  const ms = performance.now() - started;
  deps.metrics.record('RowsCounted', totalRows, 'Count', { properties: props });
  deps.metrics.record('CountDurationMs', ms, 'Milliseconds', { properties: props });
  if (ms > 0) deps.metrics.record('CountBytesPerSecond', (head.size / ms) * 1000, 'Bytes/Second');
  deps.log.info('rows counted', { ...props, totalRows, bytes: head.size, ms: Math.round(ms) });
  await deps.cache.put(cacheKey, {
    totalRows,
    header: info.header,
    dataOffset: info.dataOffset,
    size: head.size,
    delimiter,
    countedAt: new Date().toISOString(),
  });
  return { header: info.header, dataOffset: info.dataOffset, totalRows, cacheHit: false };
}

async function readPrefix(store: ObjectStorePort, ref: ObjectVersionRef, n: number): Promise<Uint8Array> {
  if (n === 0) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let got = 0;
  for await (const chunk of store.read(ref, 0, n)) {
    parts.push(chunk);
    got += chunk.length;
  }
  return Buffer.concat(parts, got);
}

interface PlannedInput {
  readonly jobId: string;
  readonly bucket: string;
  readonly key: string;
  readonly etag: string;
  readonly versionId: string | null;
  readonly size: number;
  readonly contentType: string | null;
  readonly header: string[];
  readonly dataOffset: number;
  readonly totalRows: number;
  readonly cacheHit: boolean;
  readonly topic: string;
  readonly options: JobOptions;
}

async function createPlanned(deps: PlannerDeps, at: Date, p: PlannedInput): Promise<PlanOutcome> {
  const iso = at.toISOString();
  const record: JobRecord = {
    jobId: p.jobId,
    status: 'PLANNED',
    createdAt: iso,
    updatedAt: iso,
    bucket: p.bucket,
    key: p.key,
    etag: p.etag,
    versionId: p.versionId,
    sourceUri: `s3://${p.bucket}/${p.key}`,
    size: p.size,
    contentType: p.contentType,
    header: p.header,
    dataOffset: p.dataOffset,
    totalRows: p.totalRows,
    topic: p.topic,
    options: p.options,
    startedEventPublished: false,
  };
  if (!(await deps.jobs.create(record))) {
    // Lost a race with a concurrent delivery of the same notification (duplicates in one batch are
    // processed in parallel). The winner wrote the record a moment ago and is publishing right now;
    // publishing here too would put a second JobStarted on the producer queue. If the winner fails
    // before its flag is set, its own message is retried and takes the outbox path in onExisting.
    const existing = await deps.jobs.get(p.jobId);
    if (existing) {
      deps.log.info('duplicate notification (lost the create race)', {
        jobId: p.jobId,
        status: existing.status,
      });
      return { kind: 'duplicate', jobId: p.jobId, republished: false };
    }
  }
  await publishStarted(deps, record, at);
  deps.metrics.record('FilesPlanned', 1, 'Count', { properties: { jobId: p.jobId, key: p.key } });
  deps.log.info('job planned', { jobId: p.jobId, key: p.key, totalRows: p.totalRows, topic: p.topic });
  return { kind: 'planned', jobId: p.jobId, totalRows: p.totalRows, cacheHit: p.cacheHit };
}

async function onExisting(deps: PlannerDeps, job: JobRecord, at: Date): Promise<PlanOutcome> {
  if (job.status === 'PLANNED' && job.startedEventPublished === false) {
    // Outbox: the record was written but the event may never have left (crash, PutEvents failure).
    deps.log.info('re-publishing JobStarted (record exists, event not yet confirmed)', { jobId: job.jobId });
    await publishStarted(deps, job, at);
    return { kind: 'duplicate', jobId: job.jobId, republished: true };
  }
  deps.log.info('duplicate notification', { jobId: job.jobId, status: job.status });
  return { kind: 'duplicate', jobId: job.jobId, republished: false };
}

async function publishStarted(deps: PlannerDeps, job: JobRecord, at: Date): Promise<void> {
  const { header, totalRows, dataOffset, topic, options, etag } = job;
  if (!header || totalRows === undefined || dataOffset === undefined || !topic || !options || !etag) {
    throw new Error(`job ${job.jobId} is PLANNED but incomplete; cannot publish JobStarted`);
  }
  await publish(deps.bus, [
    event('JobStarted.v1', {
      // Same id and timestamp on every re-publish: the producer de-duplicates on eventId and jobId.
      eventId: eventIdFor('JobStarted', job.jobId),
      occurredAt: job.createdAt,
      jobId: job.jobId,
      bucket: job.bucket,
      key: job.key,
      etag,
      versionId: job.versionId,
      sourceUri: job.sourceUri,
      size: job.size,
      totalRows,
      header,
      dataOffset,
      topic,
      options,
    }),
  ]);
  await deps.jobs.markStartedPublished(job.jobId, at.toISOString());
}

interface RejectInput {
  readonly jobId: string;
  readonly bucket: string;
  readonly key: string;
  readonly etag: string | null;
  readonly versionId: string | null;
  readonly size: number;
  readonly contentType: string | null;
  readonly error: RejectedObjectError;
}

async function reject(deps: PlannerDeps, at: Date, r: RejectInput): Promise<PlanOutcome> {
  const iso = at.toISOString();
  const position: Position | undefined = r.error.position;
  const record: JobRecord = {
    jobId: r.jobId,
    status: 'REJECTED',
    createdAt: iso,
    updatedAt: iso,
    bucket: r.bucket,
    key: r.key,
    etag: r.etag,
    versionId: r.versionId,
    sourceUri: `s3://${r.bucket}/${r.key}`,
    size: r.size,
    contentType: r.contentType,
    rejection: { reason: r.error.reason, message: r.error.message, ...(position ? { position } : {}) },
  };
  const created = await deps.jobs.create(record);
  let occurredAt = iso;
  if (!created) {
    const existing = await deps.jobs.get(r.jobId);
    if (existing && existing.status !== 'REJECTED') {
      // The same object version already became a job; a late notification cannot undo that.
      deps.log.info('duplicate notification', { jobId: r.jobId, status: existing.status });
      return { kind: 'duplicate', jobId: r.jobId, republished: false };
    }
    if (existing) occurredAt = existing.createdAt;
  }
  // Published again on a duplicate notification (no outbox flag for rejections): the event is the
  // same, same eventId, and consumers de-duplicate on it. Better twice than never.
  await publish(deps.bus, [
    event('JobRejected.v1', {
      eventId: eventIdFor('JobRejected', r.jobId),
      occurredAt,
      jobId: r.jobId,
      bucket: r.bucket,
      key: r.key,
      etag: r.etag,
      versionId: r.versionId,
      reason: r.error.reason,
      message: r.error.message,
      ...(position ? { position } : {}),
    }),
  ]);
  if (created) {
    deps.metrics.record('FilesRejected', 1, 'Count', {
      properties: { jobId: r.jobId, key: r.key, reason: r.error.reason },
    });
  }
  deps.log.warn('object rejected', {
    jobId: r.jobId,
    key: r.key,
    reason: r.error.reason,
    message: r.error.message,
    position,
  });
  return { kind: 'rejected', jobId: r.jobId, reason: r.error.reason };
}
