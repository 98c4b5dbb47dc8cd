/**
 * The local stack does what the rest of rowstream relies on: S3 notifications reach the planner
 * queue, the bus routes and archives, the real Kafka broker takes idempotent and transactional
 * produces from kafkajs, provisioning is idempotent, and .local/stack.json names the topology.
 */
import { existsSync, readFileSync } from 'node:fs';
import { DescribeTableCommand, DescribeTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeArchiveCommand,
  DescribeRuleCommand,
  ListRulesCommand,
  ListTargetsByRuleCommand,
  PutEventsCommand,
} from '@aws-sdk/client-eventbridge';
import {
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { GetTopicAttributesCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ListQueuesCommand } from '@aws-sdk/client-sqs';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyClients, type LocalClients, localClients } from '../../local/clients.ts';
import { LOCAL_REGION, LOCAL_STAGE, localPaths } from '../../local/config.ts';
import { provision } from '../../local/provision.ts';
import { bodies, receiveUntil } from '../../testkit/sqs.ts';
import { freshStack, requireLocalStack } from '../../testkit/stack.ts';
import {
  ARCHIVE,
  archiveRetentionDays,
  QUEUES,
  RULES,
  resourceNames,
  ruleEventPattern,
  SCHEDULES,
  type StackOutputs,
  TABLES,
  TOPICS,
} from '../../topology/topology.ts';

interface S3Notification {
  Event?: string;
  Records?: {
    eventName: string;
    s3: {
      bucket: { name: string };
      object: { key: string; size: number; eTag: string; versionId?: string; sequencer?: string };
    };
  }[];
}

/** S3 event keys are form-encoded: spaces as `+`, everything else percent-encoded (moto also encodes `/`). */
function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

let outputs: StackOutputs;
let aws: LocalClients;
let brokers: readonly string[];

beforeAll(async () => {
  ({ brokers } = await requireLocalStack());
  ({ outputs } = await freshStack());
  aws = localClients({ endpoint: outputs.endpoint! });
});

afterAll(() => destroyClients(aws));

describe('S3 -> planner queue', () => {
  it('delivers the s3:TestEvent first, then ObjectCreated for inbound/ only, with form-encoded keys', async () => {
    const key = 'inbound/2026/11/orders 2026-11 #1.csv';
    const body = 'id,amount\n1,10\n2,20\n';
    await aws.s3.send(
      new PutObjectCommand({ Bucket: outputs.bucket, Key: 'processed/not-for-the-planner.csv', Body: 'x' }),
    );
    const put = await aws.s3.send(new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: body }));
    expect(put.VersionId).toBeTruthy();

    const messages = bodies<S3Notification>(
      await receiveUntil(aws.sqs, outputs.queues.planner.url, (m) =>
        bodies<S3Notification>(m).some((n) => n.Records),
      ),
    );
    // Give a notification for processed/ (which must not come) the time to arrive.
    messages.push(
      ...bodies<S3Notification>(await receiveUntil(aws.sqs, outputs.queues.planner.url, () => false, 1000)),
    );

    expect(messages[0]).toMatchObject({ Event: 's3:TestEvent' });
    const records = messages.flatMap((m) => m.Records ?? []);
    expect(records).toHaveLength(1);
    const [record] = records;
    expect(record?.eventName).toMatch(/^ObjectCreated:/);
    expect(record?.s3.bucket.name).toBe(outputs.bucket);
    expect(record?.s3.object.key).toBe('inbound%2F2026%2F11%2Forders+2026-11+%231.csv');
    expect(decodeS3Key(record!.s3.object.key)).toBe(key);
    expect(record?.s3.object.size).toBe(body.length);
    // Versioning is on: jobs are keyed by the object's version.
    // (a launcher fix: moto 5.2.1 leaves versionId and sequencer out).
    expect(record?.s3.object.versionId).toBe(put.VersionId);
    expect(record?.s3.object.sequencer).toMatch(/^[0-9A-F]+$/);
  });

  it('serves Range GETs (the producer resumes from a byte offset)', async () => {
    const key = 'inbound/range.csv';
    await aws.s3.send(
      new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: 'header\nrow-1\nrow-2\n' }),
    );
    const got = await aws.s3.send(
      new GetObjectCommand({ Bucket: outputs.bucket, Key: key, Range: 'bytes=7-12' }),
    );
    expect(await got.Body?.transformToString()).toBe('row-1\n');
    expect(got.ContentRange).toBe('bytes 7-12/19');
  });
});

describe('EventBridge bus', () => {
  it('routes JobStarted.v1 to the producer queue, failures to the alarm-router queue, and archives all', async () => {
    const before = await aws.events.send(new DescribeArchiveCommand({ ArchiveName: outputs.archiveName }));
    const put = await aws.events.send(
      new PutEventsCommand({
        Entries: [
          {
            EventBusName: outputs.busName,
            Source: 'rowstream.planner',
            DetailType: 'JobStarted.v1',
            Detail: JSON.stringify({
              eventId: 'e-started',
              jobId: 'j-1',
              occurredAt: '2026-11-25T12:00:00Z',
            }),
          },
          {
            EventBusName: outputs.busName,
            Source: 'rowstream.producer',
            DetailType: 'JobFailed.v1',
            Detail: JSON.stringify({ eventId: 'e-failed', jobId: 'j-1', occurredAt: '2026-11-25T12:01:00Z' }),
          },
          {
            EventBusName: outputs.busName,
            Source: 'rowstream.producer',
            DetailType: 'JobProgress.v1',
            Detail: JSON.stringify({
              eventId: 'e-progress',
              jobId: 'j-1',
              occurredAt: '2026-11-25T12:00:30Z',
            }),
          },
        ],
      }),
    );
    expect(put.FailedEntryCount).toBe(0);

    const producer = bodies<{ source: string; 'detail-type': string; detail: { eventId: string } }>(
      await receiveUntil(aws.sqs, outputs.queues.producer.url, () => false, 1500),
    );
    expect(producer.map((e) => [e.source, e['detail-type'], e.detail.eventId])).toEqual([
      ['rowstream.planner', 'JobStarted.v1', 'e-started'],
    ]);
    const router = bodies<{ detail: { eventId: string } }>(
      await receiveUntil(aws.sqs, outputs.queues.alarmRouter.url, (m) => m.length >= 1),
    );
    expect(router.map((e) => e.detail.eventId)).toEqual(['e-failed']);

    const after = await aws.events.send(new DescribeArchiveCommand({ ArchiveName: outputs.archiveName }));
    expect((after.EventCount ?? 0) - (before.EventCount ?? 0)).toBe(3);
    expect(after.RetentionDays).toBe(archiveRetentionDays(outputs.stage));
    expect(JSON.parse(after.EventPattern ?? '{}')).toEqual(ARCHIVE.eventPattern);
  });

  it('gives every rule target a dead-letter queue', async () => {
    for (const def of RULES) {
      const rule = outputs.rules[def.name]!;
      const targets = await aws.events.send(
        new ListTargetsByRuleCommand({ Rule: rule.name, EventBusName: rule.bus }),
      );
      expect(targets.Targets).toEqual([
        expect.objectContaining({
          Arn: outputs.queues[def.target.queue].arn,
          DeadLetterConfig: { Arn: outputs.queues.ruleTargets.arn },
        }),
      ]);
    }
  });
});

describe('Kafka broker', () => {
  const kafka = () =>
    new Kafka({ clientId: 'rowstream-local-stack-test', brokers: [...brokers], logLevel: logLevel.NOTHING });

  async function readBack(topic: string, count: number, readUncommitted = false) {
    const consumer = kafka().consumer({ groupId: `${topic}-reader`, readUncommitted });
    const seen: { value: string; offset: string; headers: Record<string, string> }[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`read ${seen.length}/${count} records of ${topic}`)),
        30_000,
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push({
            value: message.value?.toString() ?? '',
            offset: message.offset,
            headers: Object.fromEntries(
              Object.entries(message.headers ?? {}).map(([k, v]) => [
                k,
                Buffer.isBuffer(v) ? v.toString() : String(v),
              ]),
            ),
          });
          if (seen.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    return seen;
  }

  it('takes an idempotent acks=all produce and gives the records back in order, with headers', async () => {
    const topic = `it-${outputs.stage}-rows`;
    const producer = kafka().producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const rows = Array.from({ length: 250 }, (_, i) => i + 1);
    for (let i = 0; i < rows.length; i += 100) {
      const acks = await producer.send({
        topic,
        acks: -1,
        messages: rows.slice(i, i + 100).map((row) => ({
          value: JSON.stringify({ id: String(row) }),
          headers: {
            'rowstream-job': 'j-kafka',
            'rowstream-row': String(row),
            'rowstream-source': 's3://b/inbound/k.csv',
          },
        })),
      });
      expect(acks[0]?.errorCode).toBe(0);
    }
    await producer.disconnect();

    const seen = await readBack(topic, rows.length);
    expect(seen.map((r) => (JSON.parse(r.value) as { id: string }).id)).toEqual(rows.map(String));
    expect(seen.map((r) => r.headers['rowstream-row'])).toEqual(rows.map(String));
    expect(seen[0]?.headers).toEqual({
      'rowstream-job': 'j-kafka',
      'rowstream-row': '1',
      'rowstream-source': 's3://b/inbound/k.csv',
    });
    expect(seen.map((r) => Number(r.offset))).toEqual(rows.map((_, i) => i));
  });

  it('runs transactions: read_committed sees committed records only', async () => {
    const topic = `it-${outputs.stage}-tx`;
    const producer = kafka().producer({
      idempotent: true,
      maxInFlightRequests: 1,
      transactionalId: `it-${outputs.stage}-tx`,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    const aborted = await producer.transaction();
    await aborted.send({ topic, acks: -1, messages: [{ value: 'aborted-1' }, { value: 'aborted-2' }] });
    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({ topic, acks: -1, messages: [{ value: 'committed-1' }, { value: 'committed-2' }] });
    await committed.commit();
    await producer.disconnect();

    const seen = await readBack(topic, 2);
    expect(seen.map((r) => r.value)).toEqual(['committed-1', 'committed-2']);
  });
});

describe('provisioning', () => {
  it('is idempotent: a second run of the same stage changes nothing', async () => {
    const queuesBefore = await aws.sqs.send(
      new ListQueuesCommand({ QueueNamePrefix: `rowstream-${outputs.stage}-` }),
    );
    const again = await provision({
      stage: outputs.stage,
      region: outputs.region,
      endpoint: outputs.endpoint!,
      brokers: outputs.kafka.brokers,
      schemaRegistry: outputs.schemaRegistry,
    });
    expect(again).toEqual(outputs);
    const queuesAfter = await aws.sqs.send(
      new ListQueuesCommand({ QueueNamePrefix: `rowstream-${outputs.stage}-` }),
    );
    expect(queuesAfter.QueueUrls?.sort()).toEqual(queuesBefore.QueueUrls?.sort());
    const rules = await aws.events.send(new ListRulesCommand({ EventBusName: outputs.busName }));
    // The topology's custom-bus rules plus the archive's managed rule, no duplicates.
    expect(rules.Rules?.length).toBe(RULES.filter((r) => r.bus === 'custom').length + 1);
    // The notification was not re-put, so no second s3:TestEvent reached the planner queue.
    const planner = bodies<S3Notification>(
      await receiveUntil(aws.sqs, outputs.queues.planner.url, () => false, 1000),
    );
    expect(planner.filter((n) => n.Event === 's3:TestEvent')).toHaveLength(0);
  });
});

describe('.local/stack.json', () => {
  it('names every resource of the topology for stage local, and each exists on the emulator', async () => {
    const path = localPaths().stackJson;
    expect(existsSync(path), `${path} is missing: run npm run local:up`).toBe(true);
    const stack = JSON.parse(readFileSync(path, 'utf8')) as StackOutputs;
    const names = resourceNames(LOCAL_STAGE);

    expect(stack.stage).toBe(LOCAL_STAGE);
    expect(stack.region).toBe(LOCAL_REGION);
    expect(stack.kafka.brokers).toEqual([...brokers]);
    expect(stack.bucket).toBe(names.bucket);
    expect(stack.busName).toBe(names.busName);
    expect(stack.archiveName).toBe(names.archiveName);
    expect(Object.keys(stack.queues).sort()).toEqual(QUEUES.map((q) => q.name).sort());
    expect(Object.keys(stack.tables).sort()).toEqual(TABLES.map((t) => t.name).sort());
    expect(Object.keys(stack.topics).sort()).toEqual(TOPICS.map((t) => t.name).sort());
    expect(Object.keys(stack.rules).sort()).toEqual(RULES.map((r) => r.name).sort());
    expect(Object.keys(stack.schedules).sort()).toEqual(SCHEDULES.map((s) => s.name).sort());

    await aws.s3.send(new HeadBucketCommand({ Bucket: stack.bucket }));
    const versioning = await aws.s3.send(new GetBucketVersioningCommand({ Bucket: stack.bucket }));
    expect(versioning.Status).toBe('Enabled');

    for (const def of QUEUES) {
      const q = stack.queues[def.name];
      expect(q.name).toBe(names.queues[def.name].name);
      const url = await aws.sqs.send(new GetQueueUrlCommand({ QueueName: q.name }));
      expect(url.QueueUrl).toBe(q.url);
      const attrs = await aws.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ['All'] }),
      );
      expect(attrs.Attributes?.QueueArn).toBe(q.arn);
      expect(Number(attrs.Attributes?.VisibilityTimeout)).toBe(def.visibilityTimeoutSeconds);
      expect(Number(attrs.Attributes?.MessageRetentionPeriod)).toBe(def.retentionSeconds);
      if (def.maxReceiveCount === null) {
        expect(q.dlqUrl).toBeNull();
        expect(attrs.Attributes?.RedrivePolicy).toBeUndefined();
      } else {
        expect(q.dlqUrl).toBeTruthy();
        const dlqName = names.queues[def.name].dlqName!;
        expect((await aws.sqs.send(new GetQueueUrlCommand({ QueueName: dlqName }))).QueueUrl).toBe(q.dlqUrl);
        expect(JSON.parse(attrs.Attributes?.RedrivePolicy ?? '{}')).toEqual({
          deadLetterTargetArn: q.dlqArn,
          maxReceiveCount: def.maxReceiveCount,
        });
      }
    }

    for (const def of TABLES) {
      expect(stack.tables[def.name]).toBe(names.tables[def.name]);
      const table = await aws.dynamodb.send(new DescribeTableCommand({ TableName: stack.tables[def.name] }));
      expect(table.Table?.KeySchema?.[0]).toEqual({ AttributeName: def.partitionKey, KeyType: 'HASH' });
      expect((table.Table?.GlobalSecondaryIndexes ?? []).map((i) => i.IndexName).sort()).toEqual(
        def.indexes.map((i) => i.name).sort(),
      );
      if (def.ttlAttribute) {
        const ttl = await aws.dynamodb.send(
          new DescribeTimeToLiveCommand({ TableName: stack.tables[def.name] }),
        );
        expect(ttl.TimeToLiveDescription).toMatchObject({
          TimeToLiveStatus: 'ENABLED',
          AttributeName: def.ttlAttribute,
        });
      }
    }

    for (const def of TOPICS) {
      expect(stack.topics[def.name].name).toBe(names.topics[def.name]);
      await aws.sns.send(new GetTopicAttributesCommand({ TopicArn: stack.topics[def.name].arn }));
    }

    const archive = await aws.events.send(new DescribeArchiveCommand({ ArchiveName: stack.archiveName }));
    expect(archive.ArchiveArn).toBe(stack.archiveArn);
    expect(archive.EventSourceArn).toBe(stack.busArn);

    for (const def of RULES) {
      const rule = stack.rules[def.name]!;
      expect(rule.name).toBe(names.rules[def.name]);
      expect(rule.bus).toBe(def.bus === 'custom' ? stack.busName : 'default');
      const described = await aws.events.send(
        new DescribeRuleCommand({ Name: rule.name, EventBusName: rule.bus }),
      );
      expect(described.Arn).toBe(rule.arn);
      expect(JSON.parse(described.EventPattern ?? '{}')).toEqual(ruleEventPattern(def, stack.stage));
    }

    for (const def of SCHEDULES) {
      const schedule = stack.schedules[def.name]!;
      expect(schedule).toEqual({
        name: names.schedules[def.name],
        expression: def.expression,
        everySeconds: def.everySeconds,
        service: def.service,
      });
      const described = await aws.events.send(new DescribeRuleCommand({ Name: schedule.name }));
      expect(described.ScheduleExpression).toBe(def.expression);
    }
  });
});
