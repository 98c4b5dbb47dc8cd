/** Base class of every producer error; `reason` is the machine-readable cause used in JobFailed.v1. */
export class ProducerError extends Error {
  override readonly name: string = 'ProducerError';
  constructor(
    readonly reason: string,
    message: string,
    readonly position?: { row?: number; byte?: number },
  ) {
    super(message);
  }
}

/** The lease on the job was taken by someone else or could not be renewed: stop at once, write nothing. */
export class LeaseLostError extends ProducerError {
  override readonly name = 'LeaseLostError';
  constructor(jobId: string, detail: string) {
    super('LEASE_LOST', `lease on ${jobId} lost: ${detail}`);
  }
}

/** A bad row while the job runs with failOnBadRow. */
export class BadRowError extends ProducerError {
  override readonly name = 'BadRowError';
  constructor(row: number, byte: number, why: string) {
    super('BAD_ROW', `bad row ${row} at byte ${byte}: ${why}`, { row, byte });
  }
}

/** Kafka sends/commits kept failing after the configured retries. */
export class KafkaRetriesExhaustedError extends ProducerError {
  override readonly name = 'KafkaRetriesExhaustedError';
  constructor(what: string, cause: unknown) {
    super('KAFKA_RETRIES_EXHAUSTED', `${what} failed after retries: ${(cause as Error)?.message ?? cause}`);
  }
}

/** A DynamoDB / S3 / EventBridge call of the job kept failing with transient errors past its budget. */
export class AwsRetriesExhaustedError extends ProducerError {
  override readonly name = 'AwsRetriesExhaustedError';
  constructor(what: string, attempts: number, cause: unknown) {
    super(
      'AWS_RETRIES_EXHAUSTED',
      `${what} failed ${attempts} times in a row: ${(cause as Error)?.name ?? ''} ${(cause as Error)?.message ?? cause}`,
    );
  }
}

/** The object could not be read (after retries), vanished or changed under the job. */
export class SourceReadError extends ProducerError {
  override readonly name = 'SourceReadError';
  constructor(message: string, byte?: number) {
    super('SOURCE_UNREADABLE', message, byte === undefined ? undefined : { byte });
  }
}

/** The job was taken over too many times (a poison job must not loop forever). */
export class AttemptsExhaustedError extends ProducerError {
  override readonly name = 'AttemptsExhaustedError';
  constructor(attempts: number) {
    super('ATTEMPTS_EXHAUSTED', `the job was started ${attempts} times without finishing`);
  }
}

/** The job names a topic this stage may not write to (ROWSTREAM_ALLOWED_TOPICS, or a Kafka internal one). */
export class TopicNotAllowedError extends ProducerError {
  override readonly name = 'TopicNotAllowedError';
  constructor(topic: string, why: string) {
    super('TOPIC_NOT_ALLOWED', `topic "${topic}" refused: ${why}`);
  }
}

/**
 * The object was deleted between planning and producing (its version gone, or a delete marker on the
 * key): the job is not streamed. Same reason as the planner's rejection of a vanished object.
 */
export class ObjectVanishedError extends ProducerError {
  override readonly name = 'ObjectVanishedError';
  constructor(sourceUri: string, versionId: string | null) {
    super(
      'OBJECT_NOT_FOUND',
      `${sourceUri}${versionId ? ` (version ${versionId})` : ''} no longer exists: it was deleted after it was planned, so no row of it is sent`,
    );
  }
}
