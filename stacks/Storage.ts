import { Duration, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { type StackContext, use } from 'sst/constructs';
import { PREFIXES, resourceNames, TABLES, type TableName } from '../topology/topology.ts';
import { Bus, S3_NOTIFICATION_QUEUE } from './Bus.ts';
import { bucketNameFor, removalFor, tagService } from './common.ts';
import { DeploySettingsError, isProd, settingsOf } from './settings.ts';

/**
 * Data: the bucket and the tables. Production retains both (and protects the tables from deletion);
 * every other stage deletes them, objects included, on `sst remove`.
 */
export function Storage({ stack, app }: StackContext) {
  tagService(stack, 'storage');
  const names = resourceNames(app.stage);
  const settings = settingsOf(app);
  const prod = isProd(app.stage);
  const removalPolicy = removalFor(app.stage);
  const { queues } = use(Bus);

  const bucketName = bucketNameFor(stack, app.stage, settings);
  if (!Token.isUnresolved(bucketName) && bucketName.length > 63) {
    throw new DeploySettingsError(
      `bucket name ${bucketName} is longer than S3's 63 characters: set ROWSTREAM_BUCKET_NAME`,
    );
  }
  const bucket = new s3.Bucket(stack, 'Data', {
    bucketName,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    encryption: s3.BucketEncryption.S3_MANAGED,
    enforceSSL: true,
    // Versioned: a job is named by the object's version, so an overwrite is a new job, never a mix.
    versioned: true,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    removalPolicy,
    autoDeleteObjects: !prod,
    lifecycleRules: [
      {
        id: 'rejected',
        prefix: PREFIXES.rejected,
        expiration: Duration.days(settings.lifecycle.rejectedExpireDays),
      },
      {
        // Dropped files: the job reads them within hours; kept for re-runs and audits, then expired.
        id: 'inbound',
        prefix: PREFIXES.inbound,
        expiration: Duration.days(settings.lifecycle.inboundExpireDays),
      },
      // Versioning keeps overwritten objects; without this they would be stored (and billed) forever.
      { id: 'noncurrent', noncurrentVersionExpiration: Duration.days(30) },
      { id: 'multipart', abortIncompleteMultipartUploadAfter: Duration.days(7) },
    ].filter((r) => !r.expiration || r.expiration.toDays() > 0),
  });

  // The queue's policy (granting S3) lives in the Bus stack, written by bucket name; a plain
  // SqsDestination would add it there from here and tie the two stacks in a cycle.
  const plannerQueue = queues[S3_NOTIFICATION_QUEUE].queue;
  bucket.addEventNotification(
    s3.EventType.OBJECT_CREATED,
    {
      bind: () => ({
        arn: plannerQueue.queueArn,
        type: s3.BucketNotificationDestinationType.QUEUE,
      }),
    },
    { prefix: PREFIXES.inbound },
  );

  const tables = {} as Record<TableName, dynamodb.Table>;
  for (const def of TABLES) {
    const table = new dynamodb.Table(stack, `${def.name}Table`, {
      tableName: names.tables[def.name],
      partitionKey: { name: def.partitionKey, type: dynamodb.AttributeType.STRING },
      ...(def.sortKey ? { sortKey: { name: def.sortKey, type: dynamodb.AttributeType.STRING } } : {}),
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: prod },
      deletionProtection: prod,
      removalPolicy,
      ...(def.ttlAttribute ? { timeToLiveAttribute: def.ttlAttribute } : {}),
    });
    for (const index of def.indexes) {
      table.addGlobalSecondaryIndex({
        indexName: index.name,
        partitionKey: { name: index.partitionKey, type: dynamodb.AttributeType.STRING },
        ...(index.sortKey ? { sortKey: { name: index.sortKey, type: dynamodb.AttributeType.STRING } } : {}),
        projectionType: dynamodb.ProjectionType.ALL,
      });
    }
    tables[def.name] = table;
  }

  stack.addOutputs({ Bucket: bucket.bucketName });
  return { bucket, tables };
}
