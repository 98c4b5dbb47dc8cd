import { z } from 'zod';
import { NotificationParseError } from './errors.ts';

/** One object from an S3 event notification, key already URL-decoded. */
export interface ObjectCreated {
  readonly bucket: string;
  readonly key: string;
  readonly eventName: string;
  readonly size: number | null;
  /** As S3 sent it (no quotes); may be absent. */
  readonly etag: string | null;
  readonly versionId: string | null;
  readonly sequencer: string | null;
}

export type Notification = { kind: 'test' } | { kind: 'records'; records: ObjectCreated[] };

const S3Record = z.looseObject({
  eventSource: z.literal('aws:s3'),
  eventName: z.string().min(1),
  s3: z.looseObject({
    bucket: z.looseObject({ name: z.string().min(1) }),
    object: z.looseObject({
      key: z.string().min(1),
      size: z.number().int().nonnegative().optional(),
      eTag: z.string().optional(),
      versionId: z.string().optional(),
      sequencer: z.string().optional(),
    }),
  }),
});

const S3Notification = z.union([
  z.looseObject({ Event: z.literal('s3:TestEvent') }),
  z.looseObject({ Records: z.array(S3Record) }),
]);

/** S3 URL-encodes keys in notifications, with `+` for a space (form encoding). */
export function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    throw new NotificationParseError(`object key is not valid URL encoding: ${raw}`);
  }
}

/** Parses an SQS message body holding an S3 notification. Throws {@link NotificationParseError}. */
export function parseNotification(body: string): Notification {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (e) {
    throw new NotificationParseError(`message body is not JSON: ${(e as Error).message}`);
  }
  const parsed = S3Notification.safeParse(raw);
  if (!parsed.success) {
    throw new NotificationParseError(`not an S3 event notification: ${z.prettifyError(parsed.error)}`);
  }
  const n = parsed.data;
  if ('Event' in n) return { kind: 'test' };
  return {
    kind: 'records',
    records: n.Records.map((r) => ({
      bucket: r.s3.bucket.name,
      key: decodeKey(r.s3.object.key),
      eventName: r.eventName,
      size: r.s3.object.size ?? null,
      etag: r.s3.object.eTag ? r.s3.object.eTag.replace(/"/g, '') : null,
      versionId: r.s3.object.versionId || null,
      sequencer: r.s3.object.sequencer ?? null,
    })),
  };
}
