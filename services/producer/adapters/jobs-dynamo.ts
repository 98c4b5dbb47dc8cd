import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { JobStartedEvent } from '../../../events/catalog.ts';
import { isTerminal, type JobRecord, recordFromJobStarted } from '../../shared/jobs.ts';
import { LeaseLostError } from '../errors.ts';
import type { ClaimResult, JobsStore } from '../ports.ts';

const isConditionFailed = (e: unknown) =>
  e instanceof ConditionalCheckFailedException || (e as Error)?.name === 'ConditionalCheckFailedException';

/** {@link JobsStore} over the jobs table: every transition a conditional write on status and lease owner. */
export function dynamoJobs(
  doc: DynamoDBDocumentClient,
  table: string,
  now: () => number = Date.now,
): JobsStore & {
  expiredLeases(limit: number): Promise<JobRecord[]>;
  unannouncedPlanned(limit: number, graceMs: number): Promise<JobRecord[]>;
} {
  const iso = () => new Date(now()).toISOString();

  const tryClaim = async (jobId: string, owner: string, leaseMs: number) => {
    const t = now();
    const out = await doc.send(
      new UpdateCommand({
        TableName: table,
        Key: { jobId },
        UpdateExpression:
          'SET #s = :running, leaseOwner = :me, leaseExpiresAt = :exp, updatedAt = :iso, ' +
          'startedAt = if_not_exists(startedAt, :iso), attempts = if_not_exists(attempts, :zero) + :one',
        ConditionExpression:
          'attribute_exists(jobId) AND (#s = :planned OR (#s = :running AND ' +
          '(attribute_not_exists(leaseOwner) OR leaseOwner = :me OR leaseExpiresAt < :t)))',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: {
          ':running': 'RUNNING',
          ':planned': 'PLANNED',
          ':me': owner,
          ':exp': t + leaseMs,
          ':t': t,
          ':iso': iso(),
          ':zero': 0,
          ':one': 1,
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return out.Attributes as JobRecord;
  };

  /** FAILED -> RUNNING (a resume): attempts start again, the failure moves to `lastFailure`. */
  const tryResume = async (jobId: string, owner: string, leaseMs: number) => {
    const t = now();
    try {
      const out = await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { jobId },
          UpdateExpression:
            'SET #s = :running, leaseOwner = :me, leaseExpiresAt = :exp, updatedAt = :iso, attempts = :one, ' +
            'resumes = if_not_exists(resumes, :zero) + :one, lastFailure = if_not_exists(#f, :nil) REMOVE finishedAt, #f',
          ConditionExpression: '#s = :failed',
          ExpressionAttributeNames: { '#s': 'status', '#f': 'failure' },
          ExpressionAttributeValues: {
            ':running': 'RUNNING',
            ':failed': 'FAILED',
            ':nil': null,
            ':me': owner,
            ':exp': t + leaseMs,
            ':iso': iso(),
            ':zero': 0,
            ':one': 1,
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return out.Attributes as JobRecord;
    } catch (e) {
      if (isConditionFailed(e)) return null;
      throw e;
    }
  };

  /**
   * An update only the lease owner of a RUNNING job may make. A refused condition means the lease is
   * lost (another producer took the job, or it is no longer RUNNING): {@link LeaseLostError}.
   */
  const leasedUpdate = async (
    jobId: string,
    owner: string,
    refused: string,
    update: {
      readonly expression: string;
      readonly names?: Record<string, string>;
      readonly values: Record<string, unknown>;
    },
  ): Promise<void> => {
    try {
      await doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { jobId },
          UpdateExpression: update.expression,
          ConditionExpression: 'leaseOwner = :me AND #s = :running',
          ExpressionAttributeNames: { '#s': 'status', ...update.names },
          ExpressionAttributeValues: { ...update.values, ':me': owner, ':running': 'RUNNING' },
        }),
      );
    } catch (e) {
      if (isConditionFailed(e)) throw new LeaseLostError(jobId, refused);
      throw e;
    }
  };

  return {
    async claim(job: JobStartedEvent, owner: string, leaseMs: number): Promise<ClaimResult> {
      try {
        const record = await tryClaim(job.jobId, owner, leaseMs);
        // attempts > 1: someone (maybe a dead producer, maybe me before a restart) had it; resumes or a
        // checkpoint: rows may already be in Kafka. Then the producer reads the topic back first.
        const resumed =
          (record.attempts ?? 1) > 1 || (record.resumes ?? 0) > 0 || record.checkpoint !== undefined;
        return { kind: 'claimed', record, resumed };
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
      }
      const got = await doc.send(
        new GetCommand({ TableName: table, Key: { jobId: job.jobId }, ConsistentRead: true }),
      );
      const item = got.Item as JobRecord | undefined;
      // No record: never planned (a JobStarted from somewhere else) or lost; the core decides.
      if (!item) return { kind: 'no-record' };
      if (item.status === 'FAILED') {
        const record = await tryResume(job.jobId, owner, leaseMs);
        if (record) return { kind: 'claimed', record, resumed: true };
        return { kind: 'busy', owner: 'unknown', expiresAt: 0 };
      }
      if (isTerminal(item.status)) return { kind: 'terminal', status: item.status, record: item };
      if (item.status === 'RUNNING')
        return { kind: 'busy', owner: item.leaseOwner ?? '?', expiresAt: item.leaseExpiresAt ?? 0 };
      return { kind: 'busy', owner: 'none', expiresAt: 0 };
    },

    async recover(job, owner, leaseMs, checkpoint, movedTo) {
      const t = now();
      const record: JobRecord = {
        ...recordFromJobStarted(job, 'RUNNING', iso()),
        startedAt: iso(),
        startedEventPublished: true,
        recoveredFrom: 'kafka',
        leaseOwner: owner,
        leaseExpiresAt: t + leaseMs,
        attempts: 1,
        checkpoint,
        rowsDelivered: checkpoint.rowsDelivered,
        rowsRejected: checkpoint.rowsRejected,
        partitions: checkpoint.partitions,
        ...(movedTo ? { movedTo } : {}),
      };
      try {
        await doc.send(
          new PutCommand({
            TableName: table,
            Item: record,
            ConditionExpression: 'attribute_not_exists(jobId)',
          }),
        );
        return { kind: 'claimed', record, resumed: true };
      } catch (e) {
        if (!isConditionFailed(e)) throw e;
        return { kind: 'busy', owner: 'unknown', expiresAt: 0 };
      }
    },

    async renew(jobId, owner, leaseMs) {
      await leasedUpdate(jobId, owner, 'renewal refused: another owner or not RUNNING', {
        expression: 'SET leaseExpiresAt = :exp',
        values: { ':exp': now() + leaseMs },
      });
    },

    async checkpoint(jobId, owner, checkpoint, view) {
      await leasedUpdate(jobId, owner, 'checkpoint refused', {
        expression:
          'SET #cp = :cp, rowsDelivered = :d, rowsRejected = :r, #p = :p, ' +
          'rowsPerSecond = :rps, etaSeconds = :eta, updatedAt = :iso',
        names: { '#cp': 'checkpoint', '#p': 'partitions' },
        values: {
          ':cp': checkpoint,
          ':d': checkpoint.rowsDelivered,
          ':r': checkpoint.rowsRejected,
          ':p': checkpoint.partitions,
          ':rps': Math.round(view.rowsPerSecond),
          ':eta': view.etaSeconds === null ? null : Math.round(view.etaSeconds),
          ':iso': iso(),
        },
      });
    },

    async finish(jobId, owner, result) {
      await leasedUpdate(jobId, owner, 'terminal write refused', {
        expression:
          'SET #s = :status, finishedAt = :iso, updatedAt = :iso, #cp = :cp, rowsDelivered = :d, ' +
          'rowsRejected = :r, rejectsUri = :uri, #p = :p' +
          (result.failure ? ', #f = :f' : '') +
          ' REMOVE leaseOwner, leaseExpiresAt',
        names: { '#cp': 'checkpoint', '#p': 'partitions', ...(result.failure ? { '#f': 'failure' } : {}) },
        values: {
          ':status': result.status,
          ':iso': iso(),
          ':cp': result.checkpoint ?? undefined,
          ':d': result.rowsDelivered,
          ':r': result.rowsRejected,
          ':uri': result.rejectsUri,
          ':p': result.partitions,
          ...(result.failure ? { ':f': result.failure } : {}),
        },
      });
    },

    async release(jobId, owner) {
      // Releasing a lease that is already gone is fine: someone else owns the job now.
      await leasedUpdate(jobId, owner, 'release refused', {
        expression: 'SET leaseExpiresAt = :zero, updatedAt = :iso REMOVE leaseOwner',
        values: { ':zero': 0, ':iso': iso() },
      }).catch((e: unknown) => {
        if (!(e instanceof LeaseLostError)) throw e;
      });
    },

    /** RUNNING jobs whose lease ran out (their producer died): the sweeper takes them over. */
    async expiredLeases(limit: number): Promise<JobRecord[]> {
      const out = await doc.send(
        new QueryCommand({
          TableName: table,
          IndexName: 'byStatus',
          KeyConditionExpression: '#s = :running',
          FilterExpression: 'attribute_not_exists(leaseExpiresAt) OR leaseExpiresAt < :t',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: { ':running': 'RUNNING', ':t': now() },
          Limit: 100,
        }),
      );
      return ((out.Items ?? []) as JobRecord[]).slice(0, limit);
    },

    /**
     * PLANNED jobs whose JobStarted never went out (the planner's outbox flag still false) for longer
     * than `graceMs`: the planner crashed or PutEvents kept failing between the record and the event.
     * The record is the planner's, so the sweeper runs the job from it (no event needed; see
     * docs/producer.md "Sweeper").
     */
    async unannouncedPlanned(limit: number, graceMs: number): Promise<JobRecord[]> {
      const out = await doc.send(
        new QueryCommand({
          TableName: table,
          IndexName: 'byStatus',
          KeyConditionExpression: '#s = :planned AND updatedAt < :cutoff',
          FilterExpression: 'startedEventPublished = :no',
          ExpressionAttributeNames: { '#s': 'status' },
          ExpressionAttributeValues: {
            ':planned': 'PLANNED',
            ':cutoff': new Date(now() - graceMs).toISOString(),
            ':no': false,
          },
          Limit: 100,
        }),
      );
      return ((out.Items ?? []) as JobRecord[]).slice(0, limit);
    },
  };
}

/**
 * `rowstream resume`: a FAILED job becomes RUNNING with no owner and an expired lease, so the next
 * producer sweep takes it over and resumes after its last committed row (attempts start again; the
 * failure is kept as `lastFailure`). Returns the record's status before, or null when there is no job.
 */
export async function reopenFailedJob(
  doc: DynamoDBDocumentClient,
  table: string,
  jobId: string,
  now: () => number = Date.now,
): Promise<{ reopened: boolean; status: JobRecord['status'] } | null> {
  try {
    await doc.send(
      new UpdateCommand({
        TableName: table,
        Key: { jobId },
        UpdateExpression:
          'SET #s = :running, leaseExpiresAt = :zero, updatedAt = :iso, attempts = :zero, ' +
          'resumes = if_not_exists(resumes, :zero) + :one, lastFailure = if_not_exists(#f, :nil) ' +
          'REMOVE finishedAt, #f, leaseOwner',
        ConditionExpression: '#s = :failed',
        ExpressionAttributeNames: { '#s': 'status', '#f': 'failure' },
        ExpressionAttributeValues: {
          ':running': 'RUNNING',
          ':failed': 'FAILED',
          ':zero': 0,
          ':one': 1,
          ':nil': null,
          ':iso': new Date(now()).toISOString(),
        },
      }),
    );
    return { reopened: true, status: 'FAILED' };
  } catch (e) {
    if (!isConditionFailed(e)) throw e;
  }
  const got = await doc.send(new GetCommand({ TableName: table, Key: { jobId }, ConsistentRead: true }));
  const item = got.Item as JobRecord | undefined;
  return item ? { reopened: false, status: item.status } : null;
}
