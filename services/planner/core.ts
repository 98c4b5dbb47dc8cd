import { createHash } from 'node:crypto';
import type { BusPort } from '../../events/bus.ts';
import { event, publish } from '../../events/bus.ts';
import type { JobOptions, JobSchema, RejectionReason } from '../../events/catalog.ts';
import { eventIdFor, jobIdFor } from '../../events/ids.ts';
import { type JobRecord, withoutDefinition } from '../shared/jobs.ts';
import type { Log } from '../shared/logger.ts';
import type { MetricsPort } from '../shared/metrics.ts';
import { encodePlan, INLINE_PLAN_BYTES, type PlanStorePort, planNeedsRef } from '../shared/plan.ts';
import { type ObjectTagsPort, type SourceMoveDeps, settleSourceFate } from '../shared/source-fate.ts';
import { countRegion } from './count.ts';
import {
  BadHeaderError,
  HeaderLooksLikeDataError,
  NotCsvError,
  type Position,
  RejectedObjectError,
} from './errors.ts';
import {
  dataLikeHeader,
  type HeaderInfo,
  MAX_HEADER_BYTES,
  MAX_HEADER_JSON_BYTES,
  readHeader,
} from './header.ts';
import type { ObjectCreated } from './notification.ts';
import {
  type HeaderMode,
  type OptionDefaults,
  rawOverrides,
  resolveDelimiter,
  resolveHeaderMode,
  resolveOptions,
} from './options.ts';
import type {
  CachedCount,
  CountCachePort,
  HeaderRef,
  JobStorePort,
  ObjectHead,
  ObjectStorePort,
  ObjectVersionRef,
} from './ports.ts';
import { type JobSchemaPort, schemaForEvent } from './schema.ts';

/**
 * The header checks that do not depend on the count: a first row that looks like data (unless the
 * uploader said the file has a header, or none), and the header's size.
 */
function checkHeader(header: readonly string[], headerStart: number, headerMode: HeaderMode): void {
  if (headerMode === 'auto') {
    const why = dataLikeHeader(header);
    if (why) throw new HeaderLooksLikeDataError(why, headerStart);
  }
  checkHeaderSize(header, headerStart);
}

function checkHeaderSize(header: readonly string[], headerStart: number): void {
  const bytes = Buffer.byteLength(JSON.stringify(header));
  if (bytes > MAX_HEADER_JSON_BYTES) {
    throw new BadHeaderError(
      `the header is too large: ${header.length} columns, ${bytes} bytes as JSON (limit ${MAX_HEADER_JSON_BYTES}: every JSON record repeats the column names, so no row would fit in a Kafka record)`,
      headerStart,
    );
  }
}

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
  /** Where plans too large to travel inline are written (plans/<jobId>.json in the object's bucket). */
  readonly plans: PlanStorePort;
  readonly metrics: MetricsPort;
  readonly log: Log;
  readonly settings: PlannerSettings;
  /** The job's schema (schema.ts); absent: no schemas, values stay strings. */
  readonly schemas?: JobSchemaPort;
  /** Tags a rejected object version with its job id and REJECTED (best effort); absent: no tags. */
  readonly sourceTags?: ObjectTagsPort | null;
  /** Moves a rejected object to failed/ after tagging it (ROWSTREAM_SOURCE_FATE=move); null: tags only. */
  readonly sourceMove?: SourceMoveDeps | null;
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

/**
 * What happens to a key: outside the inbound prefix it is not ours (ignored); under it, a `.csv` (any
 * case) is read, anything else becomes a JobRejected NOT_CSV saying why, so no upload goes unanswered.
 */
export type KeyClass =
  | { readonly kind: 'outside' }
  | { readonly kind: 'csv' }
  | { readonly kind: 'refused'; readonly message: string };

const COMPRESSED = [
  '.gz',
  '.gzip',
  '.zst',
  '.zstd',
  '.zip',
  '.bz2',
  '.xz',
  '.lz4',
  '.snappy',
  '.7z',
  '.tar',
  '.tgz',
];

export function classifyKey(key: string, inboundPrefix: string): KeyClass {
  if (!key.startsWith(inboundPrefix)) return { kind: 'outside' };
  if (key.endsWith('/')) {
    return { kind: 'refused', message: 'a folder marker (key ending in /) is not a file: nothing to stream' };
  }
  const lower = key.toLowerCase();
  if (lower.endsWith('.csv')) return { kind: 'csv' };
  const ext = COMPRESSED.find((x) => lower.endsWith(x));
  if (ext) {
    return {
      kind: 'refused',
      message: `compressed files (${ext}) are not supported: upload the plain .csv (resume needs byte offsets in the plain text)`,
    };
  }
  return {
    kind: 'refused',
    message: 'only keys ending in .csv are read: rename the file to .csv if it is CSV',
  };
}

/** Bumped when the row grammar changes, so counts cached under an older grammar are not reused. */
const GRAMMAR_TAG = 'g2';

export const cacheKeyFor = (bucket: string, key: string, etag: string, headerMode: HeaderMode = 'auto') =>
  `${bucket}/${key}/${etag}/${GRAMMAR_TAG}${headerMode === 'none' ? '-noheader' : ''}`;

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
  const keyClass = classifyKey(n.key, settings.inboundPrefix);
  if (keyClass.kind === 'outside') {
    log.info('ignored: not under the inbound prefix', { bucket: n.bucket, key: n.key });
    return { kind: 'ignored', reason: 'not under the inbound prefix' };
  }

  const notified: ObjectVersionRef = { bucket: n.bucket, key: n.key, versionId: n.versionId };
  let head = await deps.store.head(notified);
  if (head && n.versionId && deps.store.deletedSince && (await deps.store.deletedSince(notified)))
    head = null;
  if (!head) {
    const jobId = jobIdFor(n.bucket, n.key, { versionId: n.versionId, etag: n.etag ?? 'unknown' });
    // Gone from inbound/ because its job ended and moved it: the same job, not a vanished object.
    const moved = n.versionId ? await deps.jobs.get(jobId) : null;
    if (moved?.movedTo) return onExisting(deps, moved, now());
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
        `s3://${n.bucket}/${n.key}${n.versionId ? ` (version ${n.versionId})` : ''} no longer exists: it was deleted (or overwritten) before it could be read`,
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
    if (keyClass.kind === 'refused') throw new NotCsvError(keyClass.message);
    const tags = await deps.store.tags(ref);
    const overrides = rawOverrides(head.metadata, tags);
    const delimiter = resolveDelimiter(overrides, settings.defaults);
    const headerMode = resolveHeaderMode(overrides);
    const counted = await countObject(deps, ref, head, delimiter, headerMode);
    // Again on a cache hit: the same bytes may have been counted under rowstream-header=present.
    checkHeader(counted.header, counted.headerStart, headerMode);
    const { topic, options } = resolveOptions(overrides, settings.defaults, counted.header);
    const schema = deps.schemas
      ? await deps.schemas.resolve({
          ref,
          size: head.size,
          metadata: head.metadata,
          tags,
          header: counted.header,
          dataOffset: counted.dataOffset,
          delimiter,
          topic,
          format: options.format,
        })
      : null;
    return await createPlanned(deps, now(), { ...base, ...counted, topic, options, schema });
  } catch (e) {
    if (e instanceof RejectedObjectError) return reject(deps, now(), { ...base, error: e });
    log.error('planning failed; the message goes back to the queue', { ...jobLog, error: e as Error });
    throw e;
  }
}

interface Counted {
  readonly header: string[];
  /** Where the header record starts (for positions in rejections). */
  readonly headerStart: number;
  readonly dataOffset: number;
  readonly totalRows: number;
  readonly cacheHit: boolean;
}

async function countObject(
  deps: PlannerDeps,
  ref: ObjectVersionRef,
  head: ObjectHead,
  delimiter: string,
  headerMode: HeaderMode,
): Promise<Counted> {
  const cacheKey = cacheKeyFor(ref.bucket, ref.key, head.etag, headerMode);
  const cached = await deps.cache.get(cacheKey);
  const props = { bucket: ref.bucket, key: ref.key, etag: head.etag };
  const cachedHeader =
    cached && cached.size === head.size && cached.delimiter === delimiter
      ? await headerOfCached(deps, ref, head, cached, delimiter, headerMode)
      : null;
  if (cached && cachedHeader) {
    deps.metrics.record('CacheHits', 1, 'Count', { properties: props });
    deps.log.info('row count from cache', { ...props, totalRows: cached.totalRows });
    return {
      header: cachedHeader,
      // Not cached: only used in rejection positions, and the data starts after the header anyway.
      headerStart: headerMode === 'none' ? cached.dataOffset : 0,
      dataOffset: cached.dataOffset,
      totalRows: cached.totalRows,
      cacheHit: true,
    };
  }
  const started = performance.now();
  const info = await headerOf(deps.store, ref, head, delimiter, headerMode);
  // Before counting and caching: a rejected header (possibly a data row) is never stored.
  checkHeader(info.header, info.headerStart, headerMode);
  const totalRows = await countRegion(
    (start, end) => deps.store.read(ref, start, end),
    { dataOffset: info.dataOffset, size: head.size },
    { partSize: deps.settings.partSize, concurrency: deps.settings.concurrency, delimiter },
  );
  const ms = performance.now() - started;
  deps.metrics.record('RowsCounted', totalRows, 'Count', { properties: props });
  deps.metrics.record('CountDurationMs', ms, 'Milliseconds', { properties: props });
  if (ms > 0) deps.metrics.record('CountBytesPerSecond', (head.size / ms) * 1000, 'Bytes/Second');
  deps.log.info('rows counted', { ...props, totalRows, bytes: head.size, ms: Math.round(ms) });
  // A large header stays out of the item (DynamoDB: 400 KB, billed by size): a hit re-reads it.
  const headerJson = JSON.stringify(info.header);
  await deps.cache.put(cacheKey, {
    totalRows,
    ...(Buffer.byteLength(headerJson) > INLINE_PLAN_BYTES
      ? { headerRef: headerRefOf(info.header, headerJson) }
      : { header: info.header }),
    dataOffset: info.dataOffset,
    size: head.size,
    delimiter,
    countedAt: new Date().toISOString(),
  });
  return {
    header: info.header,
    headerStart: info.headerStart,
    dataOffset: info.dataOffset,
    totalRows,
    cacheHit: false,
  };
}

/** The header and where data starts, read from the object's first bytes. */
async function headerOf(
  store: ObjectStorePort,
  ref: ObjectVersionRef,
  head: ObjectHead,
  delimiter: string,
  headerMode: HeaderMode,
): Promise<HeaderInfo> {
  const read: HeaderInfo = readHeader(
    await readPrefix(store, ref, Math.min(head.size, MAX_HEADER_BYTES)),
    head.size,
    delimiter,
    { checkNames: headerMode !== 'none' },
  );
  // No header: the first record is data, its columns are named col_1..col_N.
  return headerMode === 'none'
    ? { ...read, header: read.header.map((_, i) => `col_${i + 1}`), dataOffset: read.headerStart }
    : read;
}

function headerRefOf(header: readonly string[], json = JSON.stringify(header)): HeaderRef {
  return {
    sha256: createHash('sha256').update(json).digest('hex'),
    bytes: Buffer.byteLength(json),
    columns: header.length,
  };
}

/**
 * The header of a cache hit: inline, or (a large one) read again from the object, one ranged GET of
 * at most MAX_HEADER_BYTES instead of a recount. null when the re-read header is not the cached one
 * (then the object is counted again).
 */
async function headerOfCached(
  deps: PlannerDeps,
  ref: ObjectVersionRef,
  head: ObjectHead,
  cached: CachedCount,
  delimiter: string,
  headerMode: HeaderMode,
): Promise<string[] | null> {
  if (cached.header) return cached.header;
  if (!cached.headerRef) return null;
  const info = await headerOf(deps.store, ref, head, delimiter, headerMode);
  const again = headerRefOf(info.header);
  if (again.sha256 === cached.headerRef.sha256 && info.dataOffset === cached.dataOffset) return info.header;
  deps.log.warn('cached header does not match the object; counting again', {
    bucket: ref.bucket,
    key: ref.key,
    etag: head.etag,
  });
  return null;
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
  readonly schema: JobSchema | null;
}

async function createPlanned(deps: PlannerDeps, at: Date, p: PlannedInput): Promise<PlanOutcome> {
  const iso = at.toISOString();
  // A plan too large for the event and the record goes to S3 first, so no record or event ever names
  // a plan that is not there; the same job rewrites the same bytes (a retried or duplicate delivery).
  let planned: Pick<JobRecord, 'header' | 'planRef' | 'schema'>;
  if (planNeedsRef(p.header, p.schema)) {
    const { body, ref } = encodePlan(p.jobId, p.header, p.schema?.definition);
    await deps.plans.put(p.bucket, ref.key, body);
    deps.log.info('plan kept in S3 (too large to travel inline)', {
      jobId: p.jobId,
      plan: `s3://${p.bucket}/${ref.key}`,
      bytes: ref.bytes,
      columns: ref.columns,
      sha256: ref.sha256,
    });
    planned = { planRef: ref, ...(p.schema ? { schema: withoutDefinition(p.schema) } : {}) };
  } else {
    planned = { header: p.header, ...(p.schema ? { schema: p.schema } : {}) };
  }
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
    ...planned,
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
  deps.log.info('duplicate notification', {
    jobId: job.jobId,
    status: job.status,
    movedTo: job.movedTo?.key,
  });
  // Finishes an end-of-job step a crash or an error interrupted (a no-op once tagged and moved).
  if (job.status === 'REJECTED' && job.rejection?.reason !== 'OBJECT_NOT_FOUND')
    await settleSourceFate({ tags: deps.sourceTags, move: deps.sourceMove }, job, 'REJECTED', deps.log);
  return { kind: 'duplicate', jobId: job.jobId, republished: false };
}

async function publishStarted(deps: PlannerDeps, job: JobRecord, at: Date): Promise<void> {
  const { header, planRef, totalRows, dataOffset, topic, options, etag } = job;
  if (
    (!header && !planRef) ||
    totalRows === undefined ||
    dataOffset === undefined ||
    !topic ||
    !options ||
    !etag
  ) {
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
      // The plan by reference when the record has it so (its header and definition are in S3).
      ...(planRef ? { planRef } : { header }),
      dataOffset,
      topic,
      options,
      ...(job.schema ? { schema: planRef ? withoutDefinition(job.schema) : schemaForEvent(job.schema) } : {}),
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
  let movedTo = record.movedTo;
  if (!created) {
    const existing = await deps.jobs.get(r.jobId);
    movedTo = existing?.movedTo;
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
  // A redelivered notification re-tags the same values (a no-op); a vanished object has nothing to tag.
  if (r.error.reason !== 'OBJECT_NOT_FOUND') {
    await settleSourceFate(
      { tags: deps.sourceTags, move: deps.sourceMove },
      { jobId: r.jobId, bucket: r.bucket, key: r.key, versionId: r.versionId, movedTo, size: r.size },
      'REJECTED',
      deps.log,
    );
  }
  if (created) {
    deps.metrics.record('FilesRejected', 1, 'Count', {
      properties: { jobId: r.jobId, key: r.key, reason: r.error.reason },
    });
  }
  deps.log.warn('object rejected', {
    jobId: r.jobId,
    key: r.key,
    reason: r.error.reason,
    // Not `message`: the logger keeps that key for the line's own message and drops the attribute.
    why: r.error.message,
    position,
  });
  return { kind: 'rejected', jobId: r.jobId, reason: r.error.reason };
}
