import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * What a service's code calls on AWS, found by reading its source: every `new XCommand(` (and
 * lib-storage's `new Upload(`) in services/<name>/** and in every repo module those files import,
 * transitively. Tests and the local runner are not part of a deployed service and are not followed.
 */

export const ROOT = resolve(import.meta.dirname, '../..');

/** The name the scan gives a DeleteObjectCommand with a VersionId (see COMMAND_ACTIONS). */
export const VERSIONED_DELETE = 'DeleteObjectCommand(VersionId)';

/**
 * SDK command -> IAM actions it needs. `implied` actions are needed by the call on our resources
 * (e.g. reading a pinned version of an object, or publishing to a KMS-encrypted topic).
 * A command missing here fails the test, so a new call cannot slip through unmapped.
 */
export const COMMAND_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  // S3. The bucket is versioned and jobs pin the version they read: GetObject with a VersionId needs
  // s3:GetObjectVersion (and the tagging variant), HEAD is authorized as GetObject.
  GetObjectCommand: ['s3:GetObject', 's3:GetObjectVersion'],
  HeadObjectCommand: ['s3:GetObject', 's3:GetObjectVersion'],
  GetObjectTaggingCommand: ['s3:GetObjectTagging', 's3:GetObjectVersionTagging'],
  PutObjectTaggingCommand: ['s3:PutObjectTagging', 's3:PutObjectVersionTagging'],
  PutObjectCommand: ['s3:PutObject'],
  // A copy of a pinned version with its tags (TaggingDirective COPY) reads the version and its tags and
  // writes the object and its tags.
  CopyObjectCommand: [
    's3:GetObject',
    's3:GetObjectVersion',
    's3:GetObjectVersionTagging',
    's3:PutObject',
    's3:PutObjectTagging',
  ],
  DeleteObjectCommand: ['s3:DeleteObject'],
  // DeleteObject with a VersionId removes that version (no delete marker): a different action.
  [VERSIONED_DELETE]: ['s3:DeleteObjectVersion'],
  DeleteObjectsCommand: ['s3:DeleteObject'],
  ListObjectsV2Command: ['s3:ListBucket'],
  ListObjectsCommand: ['s3:ListBucket'],
  ListObjectVersionsCommand: ['s3:ListBucketVersions'],
  HeadBucketCommand: ['s3:ListBucket'],
  CreateMultipartUploadCommand: ['s3:PutObject'],
  UploadPartCommand: ['s3:PutObject'],
  CompleteMultipartUploadCommand: ['s3:PutObject'],
  // A range of a pinned source version copied into a part (large objects moved in parts).
  UploadPartCopyCommand: ['s3:GetObject', 's3:GetObjectVersion', 's3:PutObject'],
  AbortMultipartUploadCommand: ['s3:AbortMultipartUpload'],
  Upload: ['s3:PutObject', 's3:AbortMultipartUpload'],
  // DynamoDB (client and lib-dynamodb document commands)
  GetCommand: ['dynamodb:GetItem'],
  GetItemCommand: ['dynamodb:GetItem'],
  PutCommand: ['dynamodb:PutItem'],
  PutItemCommand: ['dynamodb:PutItem'],
  UpdateCommand: ['dynamodb:UpdateItem'],
  UpdateItemCommand: ['dynamodb:UpdateItem'],
  DeleteCommand: ['dynamodb:DeleteItem'],
  DeleteItemCommand: ['dynamodb:DeleteItem'],
  QueryCommand: ['dynamodb:Query'],
  ScanCommand: ['dynamodb:Scan'],
  BatchGetCommand: ['dynamodb:BatchGetItem'],
  BatchGetItemCommand: ['dynamodb:BatchGetItem'],
  BatchWriteCommand: ['dynamodb:BatchWriteItem'],
  BatchWriteItemCommand: ['dynamodb:BatchWriteItem'],
  TransactWriteCommand: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
  TransactWriteItemsCommand: ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:ConditionCheckItem'],
  // SQS
  ReceiveMessageCommand: ['sqs:ReceiveMessage'],
  DeleteMessageCommand: ['sqs:DeleteMessage'],
  DeleteMessageBatchCommand: ['sqs:DeleteMessage'],
  ChangeMessageVisibilityCommand: ['sqs:ChangeMessageVisibility'],
  ChangeMessageVisibilityBatchCommand: ['sqs:ChangeMessageVisibility'],
  SendMessageCommand: ['sqs:SendMessage'],
  SendMessageBatchCommand: ['sqs:SendMessage'],
  GetQueueAttributesCommand: ['sqs:GetQueueAttributes'],
  GetQueueUrlCommand: ['sqs:GetQueueUrl'],
  // EventBridge
  PutEventsCommand: ['events:PutEvents'],
  StartReplayCommand: ['events:StartReplay'],
  DescribeReplayCommand: ['events:DescribeReplay'],
  DescribeArchiveCommand: ['events:DescribeArchive'],
  // SNS: the topics are encrypted with a customer managed key, so publishing needs the key too.
  PublishCommand: ['sns:Publish', 'kms:GenerateDataKey*', 'kms:Decrypt'],
  PublishBatchCommand: ['sns:Publish', 'kms:GenerateDataKey*', 'kms:Decrypt'],
  // CloudWatch
  PutMetricDataCommand: ['cloudwatch:PutMetricData'],
  DescribeAlarmsCommand: ['cloudwatch:DescribeAlarms'],
  GetMetricDataCommand: ['cloudwatch:GetMetricData'],
  // Cost Explorer
  GetCostAndUsageCommand: ['ce:GetCostAndUsage'],
  GetCostForecastCommand: ['ce:GetCostForecast'],
  // Glue Schema Registry
  GetSchemaVersionCommand: ['glue:GetSchemaVersion'],
  GetSchemaCommand: ['glue:GetSchema'],
  GetSchemaByDefinitionCommand: ['glue:GetSchemaByDefinition'],
  CreateSchemaCommand: ['glue:CreateSchema'],
  RegisterSchemaVersionCommand: ['glue:RegisterSchemaVersion'],
  // Secrets Manager
  GetSecretValueCommand: ['secretsmanager:GetSecretValue'],
};

const COMMAND_RE = /\bnew\s+(\w+Command|Upload)\s*\(/g;
/** A DeleteObjectCommand whose input names a VersionId (within its braces). */
const VERSIONED_DELETE_RE = /^\s*\{[^}]*\bVersionId\b/;
const IMPORT_RE =
  /(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return walk(p);
    return /\.ts$/.test(name) && !/\.test\.ts$/.test(name) ? [p] : [];
  });
}

export interface ServiceCalls {
  /** Files read (relative to the repo root). */
  readonly files: readonly string[];
  /** SDK command -> files that construct it. */
  readonly commands: ReadonlyMap<string, readonly string[]>;
}

/** Every SDK command a service's code (and what it imports from the repo) constructs. */
export function serviceCalls(service: string): ServiceCalls {
  const seen = new Set<string>();
  const queue = walk(join(ROOT, 'services', service));
  const commands = new Map<string, string[]>();
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const src = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|(^|[^:])\/\/.*$/gm, '$1');
    for (const m of src.matchAll(COMMAND_RE)) {
      const name =
        m[1] === 'DeleteObjectCommand' && VERSIONED_DELETE_RE.test(src.slice(m.index + m[0].length))
          ? VERSIONED_DELETE
          : m[1]!;
      const list = commands.get(name) ?? [];
      list.push(relative(ROOT, file));
      commands.set(name, list);
    }
    for (const m of src.matchAll(IMPORT_RE)) {
      const target = resolve(dirname(file), (m[1] ?? m[2])!);
      if (target.startsWith(join(ROOT, 'node_modules'))) continue;
      // Only modules a deployed service carries: its own, shared, events, topology, monitoring.
      if (existsSync(target) && statSync(target).isFile()) queue.push(target);
    }
  }
  return { files: [...seen].map((f) => relative(ROOT, f)).sort(), commands };
}

/** The IAM actions a service's code needs, and the commands no mapping covers. */
export function neededActions(service: string): {
  actions: Set<string>;
  unmapped: string[];
  calls: ServiceCalls;
} {
  const calls = serviceCalls(service);
  const actions = new Set<string>();
  const unmapped: string[] = [];
  for (const cmd of calls.commands.keys()) {
    const mapped = COMMAND_ACTIONS[cmd];
    if (!mapped) unmapped.push(`${cmd} (in ${calls.commands.get(cmd)!.join(', ')})`);
    else for (const a of mapped) actions.add(a);
  }
  return { actions, unmapped, calls };
}

export function serviceExists(service: string): boolean {
  return walk(join(ROOT, 'services', service)).length > 0;
}

/** Compares what the code needs with what the role has: both lists must be empty. */
export function compareActions(needed: ReadonlySet<string>, granted: ReadonlySet<string>) {
  return {
    missing: [...needed].filter((a) => !granted.has(a)).sort(),
    unused: [...granted].filter((a) => !needed.has(a)).sort(),
  };
}
