import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { parse as parseSync } from 'csv-parse/sync';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsClients } from '../../services/shared/aws.ts';
import {
  getJob,
  type ProducerProcess,
  REPO,
  readTopic,
  rowsOf,
  sendJobStarted,
  startProducer,
  uploadJob,
  waitForJob,
} from '../../testkit/producer.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';

/**
 * The producer end to end on the local stack: a real producer process (tsx services/producer/main.ts)
 * consumes JobStarted from its queue, reads the object from moto, produces to the real broker.
 * The topic is read back read_committed (testkit/committed.ts) and compared with Python's csv module.
 */

let outputs: StackOutputs;
let env: Record<string, string>;
let aws: ReturnType<typeof awsClients>;
let producer: ProducerProcess;
const logDir = join(REPO, '.local', 'test-logs');

const topicName = (name: string) => `it-producer-${name}-${randomBytes(3).toString('hex')}`;

/** An independent reader: Python's csv module, rows after the header, empty lines skipped. */
function pythonRows(csv: Buffer): string[][] {
  const script =
    'import csv,sys,json,io\n' +
    'text=sys.stdin.buffer.read().decode("utf-8-sig")\n' +
    'rows=[r for r in csv.reader(io.StringIO(text, newline=""))]\n' +
    'print(json.dumps([r for r in rows[1:] if r]))';
  return JSON.parse(execFileSync('python3', ['-c', script], { input: csv }).toString());
}

beforeAll(async () => {
  ({ outputs, env } = await freshStack('prod'));
  aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  producer = startProducer(
    {
      ...env,
      ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
      ROWSTREAM_PRODUCER_SWEEP_MS: '2000',
      ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '7',
      ROWSTREAM_PRODUCER_BATCH_ROWS: '3',
      ROWSTREAM_METRICS_SINK: `file:${join(logDir, `producer-emf-${outputs.stage}.log`)}`,
    },
    join(logDir, `producer-${outputs.stage}.log`),
  );
  await producer.waitForLog(/producer started/);
});

afterAll(async () => {
  producer?.kill('SIGTERM');
  await producer?.exited;
});

describe('producer', () => {
  it('streams a CSV with quoted newlines, CRLF, BOM and UTF-8 into the topic, row for row', async () => {
    // Prepare
    const csv = Buffer.from(
      '\uFEFFid,name,note\r\n' +
        '1,Zoë,"line one\r\nline two"\r\n' +
        '\r\n' +
        '2,"Smith, J","he said ""hi"""\r\n' +
        '3,😀,\r\n' +
        Array.from({ length: 30 }, (_, i) => `${i + 4},n${i},"multi\nline ${i}"`).join('\r\n') +
        '\r\n34,last,no-newline-at-end',
    );
    const expected = pythonRows(csv);
    const topic = topicName('basic');
    const job = await uploadJob(aws.s3, outputs.bucket, 'inbound/basic.csv', csv, {
      topic,
      totalRows: expected.length,
    });

    // Act
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    const done = await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) => r.status === 'COMPLETED');
    const records = await readTopic(outputs.kafka.brokers, topic);

    // Assess
    expect(expected.length).toBe(34);
    expect(rowsOf(records)).toEqual(expected.map((_, i) => i + 1));
    expect(records.map((r) => JSON.parse(r.value))).toEqual(
      expected.map((row) => ({ id: row[0], name: row[1], note: row[2] })),
    );
    expect(records.every((r) => r.headers['rowstream-job'] === job.jobId)).toBe(true);
    // Record format `compact` (the default): source and position on the last record of each batch.
    expect(records.at(-1)?.headers['rowstream-source']).toBe(job.sourceUri);
    expect(Number(records.at(-1)?.headers['rowstream-offset'])).toBe(csv.length);
    expect(records.slice(0, -1).every((r) => r.headers['rowstream-row'] !== undefined)).toBe(true);
    expect(done.rowsDelivered).toBe(34);
    expect(done.checkpoint?.nextByteOffset).toBe(csv.length);
  });

  it("a job's own record format (batch) wins over the producer's (compact): headers on each batch's last record only", async () => {
    // Prepare: 10 rows; batches of 3 and transactions of 7 rows (this producer's settings): batches end
    // at rows 3, 6, 7 (the commit) and 10.
    const csv = Buffer.from(
      `id,name\n${Array.from({ length: 10 }, (_, i) => `${i + 1},n${i + 1}`).join('\n')}\n`,
    );
    const topic = topicName('batchfmt');
    const job = await uploadJob(aws.s3, outputs.bucket, 'inbound/batchfmt.csv', csv, {
      topic,
      totalRows: 10,
      options: { recordHeaders: 'batch' },
    });

    // Act
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    const done = await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) => r.status === 'COMPLETED');
    const records = await readTopic(outputs.kafka.brokers, topic);

    // Assess: every row once in order (by value); all four headers on the batches' last records, none on
    // the others.
    expect(records.map((r) => JSON.parse(r.value).id)).toEqual(
      Array.from({ length: 10 }, (_, i) => String(i + 1)),
    );
    const headed = records.flatMap((r, i) => (Object.keys(r.headers).length > 0 ? [i + 1] : []));
    expect(headed).toEqual([3, 6, 7, 10]);
    expect(records[9]!.headers).toEqual({
      'rowstream-job': job.jobId,
      'rowstream-source': job.sourceUri,
      'rowstream-row': '10',
      'rowstream-offset': String(csv.length),
    });
    expect(done.rowsDelivered).toBe(10);
  });

  it('writes bad rows to the rejects object and ends COMPLETED_WITH_REJECTS', async () => {
    // Prepare: row 2 has too few fields, row 4 invalid UTF-8, row 6 an unterminated quote to EOF.
    const csv = Buffer.concat([
      Buffer.from('a,b\n1,x\nonly-one-field\n3,y\n'),
      Buffer.from([0x34, 0x2c, 0xff, 0xfe, 0x0a]),
      Buffer.from('5,z\n6,"never closed\n7,w\n'),
    ]);
    const topic = topicName('rejects');
    const job = await uploadJob(aws.s3, outputs.bucket, 'inbound/rejects.csv', csv, { topic, totalRows: 6 });

    // Act
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    const done = await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) =>
      ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED'].includes(r.status),
    );
    const records = await readTopic(outputs.kafka.brokers, topic);
    const rejectsKey = `rejected/${job.jobId}.csv`;
    const obj = await aws.s3.send(new GetObjectCommand({ Bucket: outputs.bucket, Key: rejectsKey }));
    const rejects = parseSync(await obj.Body!.transformToString(), { columns: true }) as Record<
      string,
      string
    >[];

    // Assess
    expect(done.status).toBe('COMPLETED_WITH_REJECTS');
    expect(done.rejectsUri).toBe(`s3://${outputs.bucket}/${rejectsKey}`);
    expect(rowsOf(records)).toEqual([1, 3, 5]);
    expect(rejects.map((r) => [Number(r.row), r.reason])).toEqual([
      [2, 'WRONG_FIELD_COUNT'],
      [4, 'INVALID_UTF8'],
      [6, 'UNTERMINATED_QUOTE'],
    ]);
    expect(rejects.map((r) => Number(r.byte_offset))).toEqual([
      csv.indexOf('only-one-field'),
      csv.indexOf(Buffer.from([0x34, 0x2c, 0xff])),
      csv.indexOf('6,"never'),
    ]);
    expect(rejects[0]?.raw).toBe('only-one-field');
    expect(done.rowsRejected).toBe(3);
    expect(done.rowsDelivered).toBe(3);
  });

  it('a second JobStarted for a finished job adds nothing to the topic', async () => {
    // Prepare
    const csv = Buffer.from(`k,v\n${Array.from({ length: 20 }, (_, i) => `${i},v${i}`).join('\n')}\n`);
    const topic = topicName('dup');
    const job = await uploadJob(aws.s3, outputs.bucket, 'inbound/dup.csv', csv, { topic, totalRows: 20 });
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    const first = await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) => r.status === 'COMPLETED');

    // Act: the same event again (duplicate delivery / archive replay), then wait for it to be consumed.
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    await producer.waitForLog(new RegExp(`${job.jobId}.*terminal|terminal.*${job.jobId}`), 30_000);
    const records = await readTopic(outputs.kafka.brokers, topic);
    const after = await getJob(aws.doc, outputs.tables.jobs, job.jobId);

    // Assess
    expect(rowsOf(records)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(after?.finishedAt).toBe(first.finishedAt);
    expect(after?.attempts).toBe(1);
  });

  it('with a key column over 3 partitions, keys the records and keeps per-key order', async () => {
    // Prepare: a topic with 3 partitions, so keys really spread.
    const lines = Array.from({ length: 60 }, (_, i) => `k${i % 4},${i}`);
    const csv = Buffer.from(`key,seq\n${lines.join('\n')}\n`);
    const topic = topicName('keyed');
    const admin = new Kafka({
      clientId: 'it',
      brokers: [...outputs.kafka.brokers],
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    const job = await uploadJob(aws.s3, outputs.bucket, 'inbound/keyed.csv', csv, {
      topic,
      totalRows: 60,
      options: { keyColumn: 'key', format: 'csv' },
    });

    // Act
    await sendJobStarted(aws.sqs, outputs.queues.producer.url, job, {
      doc: aws.doc,
      table: outputs.tables.jobs,
    });
    await waitForJob(aws.doc, outputs.tables.jobs, job.jobId, (r) => r.status === 'COMPLETED');
    const records = await readTopic(outputs.kafka.brokers, topic);

    // Assess
    expect(new Set(records.map((r) => r.partition)).size).toBeGreaterThan(1);
    expect(records.map((r) => r.value).sort()).toEqual([...lines].sort());
    for (const k of ['k0', 'k1', 'k2', 'k3']) {
      const seqs = records.filter((r) => r.key === k).map((r) => Number(r.value.split(',')[1]));
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
      expect(seqs.length).toBe(15);
    }
  });
});
