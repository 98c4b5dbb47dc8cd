import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { JobStarted } from '../../../events/catalog.ts';
import { isTerminal, type JobRecord } from '../../shared/jobs.ts';
import { LeaseLostError } from '../errors.ts';
import type { ClaimResult, JobsStore } from '../ports.ts';

const isConditionFailed = (e: unknown) =>
  e instanceof ConditionalCheckFailedException || (e as Error)?.name === 'ConditionalCheckFailedException';

/** {@link JobsStore} over the jobs table: every transition a conditional write on status and lease owner. */
export function dynamoJobs(
  doc: DynamoDBDocumentClient,
  table: string,
  now: () => number = Date.now,
): JobsStore & { expiredLeases(limit: number): Promise<JobRecord[]> } {
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
    async claim(job: JobStarted, owner: string, leaseMs: number): Promise<ClaimResult> {
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          const record = await tryClaim(job.jobId, owner, leaseMs);
          // attempts > 1: someone (maybe a dead producer, maybe me before a restart) had it.
          return { kind: 'claimed', record, resumed: (record.attempts ?? 1) > 1 };
        } catch (e) {
          if (!isConditionFailed(e)) throw e;
        }
        const got = await doc.send(
          new GetCommand({ TableName: table, Key: { jobId: job.jobId }, ConsistentRead: true }),
        );
        const item = got.Item as JobRecord | undefined;
        if (item) {
          if (isTerminal(item.status)) return { kind: 'terminal', status: item.status };
          if (item.status === 'RUNNING')
            return { kind: 'busy', owner: item.leaseOwner ?? '?', expiresAt: item.leaseExpiresAt ?? 0 };
          return { kind: 'busy', owner: 'none', expiresAt: 0 };
        }
        // No record (an event replayed after the table was emptied, or a test sending JobStarted alone):
        // the event carries everything the record needs.
        const record: JobRecord = {
          jobId: job.jobId,
          status: 'PLANNED',
          createdAt: iso(),
          updatedAt: iso(),
          bucket: job.bucket,
          key: job.key,
          etag: job.etag,
          versionId: job.versionId,
          sourceUri: job.sourceUri,
          size: job.size,
          header: job.header,
          dataOffset: job.dataOffset,
          totalRows: job.totalRows,
          topic: job.topic,
          options: job.options,
          startedEventPublished: true,
        };
        await doc
          .send(
            new PutCommand({
              TableName: table,
              Item: record,
              ConditionExpression: 'attribute_not_exists(jobId)',
            }),
          )
          .catch((err: unknown) => {
            if (!isConditionFailed(err)) throw err;
          });
      }
      return { kind: 'busy', owner: 'unknown', expiresAt: 0 };
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
  };
}
