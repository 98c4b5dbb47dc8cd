import { readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { Duration, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as glue from 'aws-cdk-lib/aws-glue';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import { type StackContext, use } from 'sst/constructs';
import { useProject } from 'sst/project.js';
import { RUNBOOK_PATH, RUNBOOKS_KEY } from '../monitoring/alarms.ts';
import { registryNameFor } from '../services/shared/schema/registry.ts';
import { PREFIXES, resourceNames, TABLES, type TableName } from '../topology/topology.ts';
import { Bus, S3_NOTIFICATION_QUEUE } from './Bus.ts';
import { skipChecks } from './checkov.ts';
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
      {
        // Plans too large for events and job records (services/shared/plan.ts): needed while the job
        // can still run or be resumed, i.e. while its source object is kept; see the setting.
        id: 'plans',
        prefix: PREFIXES.plans,
        expiration: Duration.days(settings.lifecycle.plansExpireDays),
      },
      // Versioning keeps overwritten objects; without this they would be stored (and billed) forever.
      // Moved sources (ROWSTREAM_SOURCE_FATE=move): nothing writes these prefixes otherwise. processed/
      // holds what is in Kafka (kept for audits and re-runs); failed/ what awaits an operator (a FAILED job
      // is resumed from there), so it is kept longer by default.
      ...(settings.sourceFate === 'move'
        ? [
            {
              id: 'processed',
              prefix: PREFIXES.processed,
              expiration: Duration.days(settings.lifecycle.processedExpireDays),
            },
            {
              id: 'failed',
              prefix: PREFIXES.failed,
              expiration: Duration.days(settings.lifecycle.failedExpireDays),
            },
          ]
        : []),
      { id: 'noncurrent', noncurrentVersionExpiration: Duration.days(30) },
      { id: 'multipart', abortIncompleteMultipartUploadAfter: Duration.days(7) },
    ].filter((r) => !r.expiration || r.expiration.toDays() > 0),
  });

  skipChecks(bucket, [
    {
      id: 'CKV_AWS_18',
      comment:
        'No server access logs: they need a second bucket (which this check then flags too) and are best effort. Every object the pipeline reads becomes a job record (key, version, ETag) and events in the archive; for an audit of who wrote or read which object, enable CloudTrail S3 data events on the account.',
    },
  ]);

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
    skipChecks(table, [
      {
        id: 'CKV_AWS_119',
        comment:
          'Encrypted at rest with the AWS managed key (aws/dynamodb). A customer managed key adds a key policy to maintain and a monthly fee without changing who can read: IAM on the table decides that (each service role names the tables it uses).',
      },
    ]);
    tables[def.name] = table;
  }

  // The runbooks ship with the deployed version: alarm descriptions, alert messages and the dashboard
  // link this object (monitoring/alarms.ts runbookUrl), so the page matches the alarms deployed with it.
  const runbooks = new s3deploy.BucketDeployment(stack, 'Runbooks', {
    destinationBucket: bucket,
    destinationKeyPrefix: `${posix.dirname(RUNBOOKS_KEY)}/`,
    sources: [
      s3deploy.Source.data(
        posix.basename(RUNBOOKS_KEY),
        readFileSync(join(useProject().paths.root, RUNBOOK_PATH), 'utf8'),
      ),
    ],
    contentType: 'text/markdown; charset=utf-8',
    // Only runbooks/ is replaced (pruned) on each deploy; nothing else in the bucket is touched.
    prune: true,
    memoryLimit: 256,
  });

  // The Glue Schema Registry of the stage's Avro record schemas (`<topic>-value`): the planner
  // registers, the producer reads by version id, consumers get the read-only policy below. A stage
  // may name an existing registry instead (ROWSTREAM_SCHEMA_REGISTRY): AWS allows 10 registries per
  // account and Region by default, so one per development stage runs out.
  const registryName = settings.schemaRegistry ?? registryNameFor(app.stage);
  let registryArn = `arn:${stack.partition}:glue:${stack.region}:${stack.account}:registry/${registryName}`;
  if (!settings.schemaRegistry) {
    const registry = new glue.CfnRegistry(stack, 'Schemas', {
      name: registryName,
      description: 'Kafka record schemas written by rowstream',
    });
    registry.applyRemovalPolicy(removalPolicy);
    registryArn = registry.attrArn;
  }
  const schemaArns = [
    registryArn,
    `arn:${stack.partition}:glue:${stack.region}:${stack.account}:schema/${registryName}/*`,
  ];
  const schemaReaders = new iam.ManagedPolicy(stack, 'SchemaReaders', {
    description: 'Read the Avro schemas of rowstream topics (attach to Kafka consumers)',
    statements: [
      new iam.PolicyStatement({
        sid: 'ReadSchemas',
        actions: [
          'glue:GetSchemaVersion',
          'glue:GetSchema',
          'glue:GetSchemaByDefinition',
          'glue:ListSchemaVersions',
        ],
        resources: schemaArns,
      }),
    ],
  });

  stack.addOutputs({
    Bucket: bucket.bucketName,
    Runbooks: `s3://${bucket.bucketName}/${RUNBOOKS_KEY}`,
    SchemaRegistry: registryName,
    SchemaReadersPolicyArn: schemaReaders.managedPolicyArn,
  });
  return { bucket, tables, runbooks, schemaArns, registryName };
}
