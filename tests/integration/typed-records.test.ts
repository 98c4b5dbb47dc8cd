/**
 * Typed records on the real local stack: objects go through the real S3 notification to the planner
 * (in process, wired from the stage's environment), the planner's JobStarted through the bus to a real
 * producer process, records to the real broker, Avro schemas to the stage's Glue Schema Registry (moto).
 * Avro records are decoded by an independent reader: Python's fastavro, the schema fetched with boto3
 * from the registry by the version id in each record, the expected values from Python's csv module.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetSchemaVersionCommand, GlueClient } from '@aws-sdk/client-glue';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { parse as parseSync } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobIdFor } from '../../events/ids.ts';
import { awsClients } from '../../services/shared/aws.ts';
import type { JobRecord } from '../../services/shared/jobs.ts';
import { type InProcessPlanner, inProcessPlanner } from '../../testkit/planner.ts';
import {
  type ProducerProcess,
  REPO,
  readTopic,
  rowsOf,
  startProducer,
  waitForJob,
} from '../../testkit/producer.ts';
import { freshStack } from '../../testkit/stack.ts';
import type { StackOutputs } from '../../topology/topology.ts';
import { runCli } from './cli-harness.ts';

let outputs: StackOutputs;
let aws: ReturnType<typeof awsClients>;
let planner: InProcessPlanner;
const drainPlanner = () => planner.drain();
let producer: ProducerProcess;
const logDir = join(REPO, '.local', 'test-logs');
const python = join(REPO, '.local', 'venv', 'bin', 'python');

const topicName = (name: string) => `it-typed-${name}-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  const stack = await freshStack('ty');
  outputs = stack.outputs;
  aws = awsClients({ region: outputs.region, endpoint: outputs.endpoint ?? undefined });
  // A small sample, so rows after it can break the inferred types.
  planner = inProcessPlanner(stack.env, aws, {
    env: { ROWSTREAM_SCHEMA_SAMPLE_ROWS: '20' },
  });
  await drainPlanner(); // the s3:TestEvent of the fresh bucket notification
  producer = startProducer(
    {
      ...stack.env,
      ROWSTREAM_PRODUCER_WAIT_SECONDS: '1',
      ROWSTREAM_PRODUCER_TRANSACTION_ROWS: '40',
      ROWSTREAM_PRODUCER_BATCH_ROWS: '16',
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

/** Uploads into inbound/, runs the planner on the notification and returns the job id. */
async function drop(key: string, body: string, metadata: Record<string, string>): Promise<string> {
  const put = await aws.s3.send(
    new PutObjectCommand({ Bucket: outputs.bucket, Key: key, Body: body, Metadata: metadata }),
  );
  await drainPlanner();
  return jobIdFor(outputs.bucket, key, {
    versionId: put.VersionId ?? null,
    etag: (put.ETag ?? '').replaceAll('"', ''),
  });
}

const finished = (r: JobRecord) =>
  ['COMPLETED', 'COMPLETED_WITH_REJECTS', 'FAILED', 'REJECTED'].includes(r.status);

async function rejectsOf(jobId: string): Promise<Record<string, string>[]> {
  const obj = await aws.s3.send(
    new GetObjectCommand({ Bucket: outputs.bucket, Key: `rejected/${jobId}.csv` }),
  );
  return parseSync(await obj.Body!.transformToString(), { columns: true }) as Record<string, string>[];
}

/**
 * Python decodes every record (fastavro, schema from the registry by the id in the record) and
 * compares each value with what Python's csv module and the schema say it must be.
 */
function pythonCheck(values: readonly Buffer[], csv: string, skipRows: readonly number[]) {
  const script = `
import base64, csv, datetime, decimal, io, json, sys, uuid
import boto3, fastavro
inp = json.load(sys.stdin)
glue = boto3.client('glue', endpoint_url=inp['endpoint'], region_name=inp['region'],
                    aws_access_key_id='test', aws_secret_access_key='test')
rows = [r for r in csv.reader(io.StringIO(inp['csv'], newline=''))]
header, data = rows[0], [r for r in rows[1:] if r]
data = [r for i, r in enumerate(data, 1) if i not in set(inp['skip'])]
schemas, problems, ids = {}, [], set()
def expected(t, text):
    nullable = isinstance(t, list)
    if nullable:
        if text == '': return None
        t = [b for b in t if b != 'null'][0]
    if isinstance(t, dict):
        lt = t.get('logicalType')
        if lt == 'decimal': return decimal.Decimal(text)
        if lt == 'date': return datetime.date.fromisoformat(text)
        if lt in ('timestamp-micros', 'timestamp-millis'):
            d = datetime.datetime.fromisoformat(text)
            return d if d.tzinfo else d.replace(tzinfo=datetime.timezone.utc)
        t = t['type']
    if t in ('long', 'int'): return int(text)
    if t in ('double', 'float'): return float(text)
    if t == 'boolean': return text.lower() == 'true'
    return text
for n, (b, row) in enumerate(zip(inp['values'], data)):
    raw = base64.b64decode(b)
    if raw[0] != 3 or raw[1] != 0: problems.append([n, 'header', raw[:2].hex()]); continue
    vid = str(uuid.UUID(bytes=raw[2:18]))
    ids.add(vid)
    if vid not in schemas:
        d = json.loads(glue.get_schema_version(SchemaVersionId=vid)['SchemaDefinition'])
        schemas[vid] = (d, fastavro.parse_schema(d))
    d, parsed = schemas[vid]
    rec = fastavro.schemaless_reader(io.BytesIO(raw[18:]), parsed)
    for f in d['fields']:
        col = f.get('rowstream.column', f['name'])
        want = expected(f['type'], row[header.index(col)])
        got = rec[f['name']]
        if got != want or type(got) != type(want):
            problems.append([n, f['name'], repr(got), repr(want)])
print(json.dumps({'decoded': len(inp['values']), 'rows': len(data), 'problems': problems, 'ids': sorted(ids)}))
`;
  const input = JSON.stringify({
    endpoint: outputs.endpoint,
    region: outputs.region,
    csv,
    skip: skipRows,
    values: values.map((v) => v.toString('base64')),
  });
  return JSON.parse(execFileSync(python, ['-c', script], { input, maxBuffer: 64 << 20 }).toString()) as {
    decoded: number;
    rows: number;
    problems: unknown[];
    ids: string[];
  };
}

const header = 'id,amount,ratio,paid,day,at,name,zip\n';
const row = (i: number) =>
  `${i},${(i * 1.25).toFixed(2)},${i / 8},${i % 2 === 0},2026-11-${String((i % 28) + 1).padStart(2, '0')},` +
  `2026-11-30T10:${String(i % 60).padStart(2, '0')}:00.${String(i).padStart(6, '0')}Z,"name ${i}, ""q""",0${i}\n`;

describe('typed records', () => {
  it('json with an inferred schema: typed values; a value that does not fit goes to rejects as TYPE_MISMATCH', async () => {
    // Prepare: 20 sampled rows infer id long, amount decimal(4,2), paid boolean…; row 25 has a
    // non-integer id, row 30 an amount with three decimals, row 31 an empty (not nullable) date.
    const topic = topicName('json');
    let csv = header;
    for (let i = 1; i <= 40; i++) csv += row(i);
    const lines = csv.split('\n');
    lines[25] = lines[25]!.replace(/^25,/, 'x25,');
    lines[30] = lines[30]!.replace('37.50', '37.505');
    lines[31] = lines[31]!.replace('2026-11-04', '');
    csv = lines.join('\n');
    // Act
    const jobId = await drop('inbound/typed.csv', csv, {
      'rowstream-topic': topic,
      'rowstream-schema': 'infer',
    });
    const done = await waitForJob(aws.doc, outputs.tables.jobs, jobId, finished);
    const records = await readTopic(outputs.kafka.brokers, topic);
    const rejects = await rejectsOf(jobId);
    // Assess
    expect(done.status).toBe('COMPLETED_WITH_REJECTS');
    expect(done.schema?.source).toBe('inferred');
    expect(done.totalRows).toBe(40);
    expect(done.rowsDelivered! + done.rowsRejected!).toBe(done.totalRows);
    expect(rowsOf(records)).toEqual(
      Array.from({ length: 40 }, (_, i) => i + 1).filter((r) => ![25, 30, 31].includes(r)),
    );
    expect(JSON.parse(records[0]!.value)).toEqual({
      id: 1,
      amount: 1.25,
      ratio: 0.125,
      paid: false,
      day: '2026-11-02',
      at: '2026-11-30T10:01:00.000001Z',
      name: 'name 1, "q"',
      zip: '01',
    });
    expect(records[0]!.value).toContain('"amount":1.25,');
    expect(rejects.map((r) => [Number(r.row), r.reason])).toEqual([
      [25, 'TYPE_MISMATCH'],
      [30, 'TYPE_MISMATCH'],
      [31, 'TYPE_MISMATCH'],
    ]);
    const valueAt = csv.indexOf('x25,');
    expect(rejects[0]!.detail).toBe(`column "id" (1st field, byte ${valueAt}): "x25" is not long`);
    expect(rejects[1]!.detail).toMatch(
      /^column "amount" \(2nd field, byte \d+\): "37.505" is not decimal\(4,2\)$/,
    );
    expect(Number(rejects[1]!.detail!.match(/byte (\d+)/)![1])).toBe(csv.indexOf('37.505'));
    expect(rejects[2]!.detail).toMatch(/^column "day" \(5th field, byte \d+\): "" is not date$/);
  });

  it('avro: Glue wire format, schema registered as <topic>-value, every value as Python reads it', async () => {
    // Prepare
    const topic = topicName('avro');
    let csv = header;
    for (let i = 1; i <= 60; i++) csv += row(i);
    csv += '61,,0.5,true,2026-11-30,2026-11-30 10:00:00,,\n'; // empty amount: not nullable in the sample
    // Act
    const jobId = await drop('inbound/typed.avro.csv', csv, {
      'rowstream-topic': topic,
      'rowstream-format': 'avro',
    });
    const done = await waitForJob(aws.doc, outputs.tables.jobs, jobId, finished);
    const records = await readTopic(outputs.kafka.brokers, topic);
    const glue = new GlueClient({
      region: outputs.region,
      endpoint: outputs.endpoint ?? undefined,
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const registered = await glue.send(
      new GetSchemaVersionCommand({
        SchemaId: { RegistryName: outputs.schemaRegistry, SchemaName: `${topic}-value` },
        SchemaVersionNumber: { LatestVersion: true },
      }),
    );
    const checked = pythonCheck(
      records.map((r) => r.bytes),
      csv,
      [61],
    );
    // Assess
    expect(done.status).toBe('COMPLETED_WITH_REJECTS');
    expect(done.rowsDelivered).toBe(60);
    expect(done.schema).toMatchObject({ source: 'inferred', schemaName: `${topic}-value`, version: 1 });
    expect(registered.SchemaVersionId).toBe(done.schema?.versionId);
    expect(records[0]!.bytes.subarray(0, 2)).toEqual(Buffer.from([3, 0]));
    expect(checked).toEqual({ decoded: 60, rows: 60, problems: [], ids: [registered.SchemaVersionId] });
    expect((await rejectsOf(jobId)).map((r) => [r.row, r.reason])).toEqual([['61', 'TYPE_MISMATCH']]);

    // `rowstream topic read` decodes the same records with the schema it fetches by version id.
    const dir = mkdtempSync(join(REPO, '.local', 'test-logs', 'cli-'));
    const stackFile = join(dir, 'stack.json');
    writeFileSync(stackFile, JSON.stringify(outputs));
    const read = await runCli(
      ['--stack-file', stackFile, 'topic', 'read', topic, '--job', jobId, '--limit', '100'],
      { ...process.env, ROWSTREAM_STACK_FILE: stackFile },
      60_000,
    );
    expect(read.code, read.stderr).toBe(0);
    const lines = read.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { row: number; schemaVersionId: string; value: Record<string, unknown> });
    expect(lines.map((l) => l.row)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    expect(new Set(lines.map((l) => l.schemaVersionId))).toEqual(new Set([registered.SchemaVersionId]));
    expect(lines[6]!.value).toMatchObject({
      id: 7,
      amount: '8.75',
      paid: false,
      name: 'name 7, "q"',
      zip: '07',
    });
  });
});
