import type { RejectionReason } from '../../events/catalog.ts';

/** Where in the object a problem is: `row` 0 = the header, `byte` = offset in the object. */
export interface Position {
  readonly row?: number;
  readonly byte?: number;
}

/** Base class of every planner error. */
export class PlannerError extends Error {
  override readonly name: string = 'PlannerError';
}

/**
 * The object cannot become a job: the core turns this into a JobRejected.v1 and a REJECTED record,
 * and acknowledges the message (retrying would fail the same way).
 */
export class RejectedObjectError extends PlannerError {
  override readonly name: string = 'RejectedObjectError';
  constructor(
    readonly reason: RejectionReason,
    message: string,
    readonly position?: Position,
  ) {
    super(message);
  }
}

export class EmptyObjectError extends RejectedObjectError {
  override readonly name = 'EmptyObjectError';
  constructor() {
    super('EMPTY_OBJECT', 'the object is empty (0 bytes): upload a CSV with a header row', { byte: 0 });
  }
}

export class NoHeaderError extends RejectedObjectError {
  override readonly name = 'NoHeaderError';
  constructor(size: number) {
    super('NO_HEADER', `no header row: the object (${size} bytes) holds only blank lines or a BOM`, {
      row: 0,
      byte: size,
    });
  }
}

export class NotTextError extends RejectedObjectError {
  override readonly name = 'NotTextError';
  constructor(message: string, byte: number) {
    super('NOT_TEXT', message, { row: 0, byte });
  }
}

export class BadHeaderError extends RejectedObjectError {
  override readonly name = 'BadHeaderError';
  constructor(message: string, byte: number) {
    super('BAD_HEADER', message, { row: 0, byte });
  }
}

/** The first row looks like data (a headerless file): rejected so row data never travels in events. */
export class HeaderLooksLikeDataError extends RejectedObjectError {
  override readonly name = 'HeaderLooksLikeDataError';
  constructor(why: string, byte: number) {
    super(
      'BAD_HEADER',
      `the first row looks like data, not a header (${why}): set rowstream-header=none if the file has no header row, or rowstream-header=present to use it as the header`,
      { row: 0, byte },
    );
  }
}

export class BadOptionsError extends RejectedObjectError {
  override readonly name = 'BadOptionsError';
  constructor(message: string) {
    super('BAD_OPTIONS', message);
  }
}

export class NotCsvError extends RejectedObjectError {
  override readonly name = 'NotCsvError';
  constructor(message: string) {
    super('NOT_CSV', message);
  }
}

/** The SQS message is not an S3 notification we understand: it goes back and on to the DLQ. */
export class NotificationParseError extends PlannerError {
  override readonly name = 'NotificationParseError';
}
