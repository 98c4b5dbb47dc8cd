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

  const ownerCondition = {
    ConditionExpression: 'leaseOwner = :me AND #s = :running',
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
      try {
        await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: { jobId },
            UpdateExpression: 'SET leaseExpiresAt = :exp',
            ...ownerCondition,
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':exp': now() + leaseMs, ':me': owner, ':running': 'RUNNING' },
          }),
        );
      } catch (e) {
        if (isConditionFailed(e))
          throw new LeaseLostError(jobId, 'renewal refused: another owner or not RUNNING');
        throw e;
      }
    },

    async checkpoint(jobId, owner, checkpoint, view) {
      try {
        await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: { jobId },
            UpdateExpression:
              'SET #cp = :cp, rowsDelivered = :d, rowsRejected = :r, #p = :p, ' +
              'rowsPerSecond = :rps, etaSeconds = :eta, updatedAt = :iso',
            ...ownerCondition,
            ExpressionAttributeNames: { '#s': 'status', '#cp': 'checkpoint', '#p': 'partitions' },
            ExpressionAttributeValues: {
              ':cp': checkpoint,
              ':d': checkpoint.rowsDelivered,
              ':r': checkpoint.rowsRejected,
              ':p': checkpoint.partitions,
              ':rps': Math.round(view.rowsPerSecond),
              ':eta': view.etaSeconds === null ? null : Math.round(view.etaSeconds),
              ':iso': iso(),
              ':me': owner,
              ':running': 'RUNNING',
            },
          }),
        );
      } catch (e) {
        if (isConditionFailed(e)) throw new LeaseLostError(jobId, 'checkpoint refused');
        throw e;
      }
    },

    async finish(jobId, owner, result) {
      try {
        await doc.send(
          new UpdateCommand({
            TableName: table,
            Key: { jobId },
            UpdateExpression:
              'SET #s = :status, finishedAt = :iso, updatedAt = :iso, #cp = :cp, rowsDelivered = :d, ' +
              'rowsRejected = :r, rejectsUri = :uri, #p = :p' +
              (result.failure ? ', #f = :f' : '') +
              ' REMOVE leaseOwner, leaseExpiresAt',
            ...ownerCondition,
            ExpressionAttributeNames: {
              '#s': 'status',
              '#cp': 'checkpoint',
              '#p': 'partitions',
              ...(result.failure ? { '#f': 'failure' } : {}),
            },
            ExpressionAttributeValues: {
              ':status': result.status,
              ':iso': iso(),
              ':cp': result.checkpoint ?? undefined,
              ':d': result.rowsDelivered,
              ':r': result.rowsRejected,
              ':uri': result.rejectsUri,
              ':p': result.partitions,
              ':me': owner,
              ':running': 'RUNNING',
              ...(result.failure ? { ':f': result.failure } : {}),
            },
          }),
        );
      } catch (e) {
        if (isConditionFailed(e)) throw new LeaseLostError(jobId, 'terminal write refused');
        throw e;
      }
    },

    async release(jobId, owner) {
      await doc
        .send(
          new UpdateCommand({
            TableName: table,
            Key: { jobId },
            UpdateExpression: 'SET leaseExpiresAt = :zero, updatedAt = :iso REMOVE leaseOwner',
            ...ownerCondition,
            ExpressionAttributeNames: { '#s': 'status' },
            ExpressionAttributeValues: { ':zero': 0, ':iso': iso(), ':me': owner, ':running': 'RUNNING' },
          }),
        )
        .catch((e: unknown) => {
          if (!isConditionFailed(e)) throw e;
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
