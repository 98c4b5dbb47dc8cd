import { describe, expect, it } from 'vitest';
import { parseProperties } from '../../../local/config.ts';
import {
  batchSizeFor,
  type ConnectRun,
  connectorConfig,
  formatRun,
  parseModes,
  rate,
  ratio,
  renderWorkerProperties,
} from '../../../testkit/connect-config.ts';

const worker = (mode: 'plain' | 'eos') =>
  parseProperties(
    renderWorkerProperties({ brokers: '127.0.0.1:9192', prefix: 'bench-connect-x', restPort: 18383, mode }),
  );

describe('Connect worker properties', () => {
  it('turns exactly-once source support on only in eos mode', () => {
    expect(worker('eos').get('exactly.once.source.support')).toBe('enabled');
    expect(worker('plain').get('exactly.once.source.support')).toBe('disabled');
  });

  it('gives the one-node broker internal topics of replication factor 1, named after the group', () => {
    const p = worker('eos');
    for (const kind of ['config', 'offset', 'status']) {
      expect(p.get(`${kind}.storage.replication.factor`)).toBe('1');
    }
    expect(p.get('group.id')).toBe('bench-connect-x');
    expect(p.get('config.storage.topic')).toBe('bench-connect-x-configs');
    expect(p.get('offset.storage.topic')).toBe('bench-connect-x-offsets');
    expect(p.get('status.storage.topic')).toBe('bench-connect-x-status');
    expect(p.get('bootstrap.servers')).toBe('127.0.0.1:9192');
    expect(p.get('listeners')).toBe('http://127.0.0.1:18383');
  });

  it('sends raw lines and lets the connector override its producer', () => {
    const p = worker('plain');
    expect(p.get('value.converter')).toBe('org.apache.kafka.connect.storage.StringConverter');
    expect(p.get('connector.client.config.override.policy')).toBe('All');
  });
});

describe('FileStreamSource connector config', () => {
  const base = { file: '/tmp/x.csv', topic: 't', batchSize: 9901, lingerMs: 5 };
  it('requires exactly-once with a transaction per poll in eos mode', () => {
    const c = connectorConfig({ ...base, mode: 'eos' });
    expect(c['exactly.once.support']).toBe('required');
    expect(c['transaction.boundary']).toBe('poll');
    expect(c['batch.size']).toBe('9901');
    expect(c['producer.override.batch.size']).toBe('1048576');
    expect(c['tasks.max']).toBe('1');
  });

  it('asks for no exactly-once guarantee in plain mode', () => {
    const c = connectorConfig({ ...base, mode: 'plain' });
    expect(c['exactly.once.support']).toBeUndefined();
    expect(c['transaction.boundary']).toBeUndefined();
    expect(c.file).toBe('/tmp/x.csv');
    expect(c['producer.override.linger.ms']).toBe('5');
  });

  it('rejects an unknown mode', () => {
    expect(parseModes('plain,eos')).toEqual(['plain', 'eos']);
    expect(() => parseModes('plain,exactly')).toThrow(/exactly/);
  });
});

describe('batchSizeFor', () => {
  it('keeps a batch size that divides the line count', () => {
    expect(batchSizeFor(1_000_000, 10_000)).toBe(10_000);
  });

  it('moves off a size that would leave the last line in the task buffer', () => {
    // 1,000,001 lines = 101 x 9901: 10000 leaves one line behind, 9901 fills the last batch exactly.
    expect(batchSizeFor(1_000_001, 10_000)).toBe(9901);
    expect(1_000_001 % batchSizeFor(1_000_001, 10_000)).toBe(0);
  });

  it('falls back to the wanted size when no divisor is near (a prime line count)', () => {
    expect(batchSizeFor(1_000_003, 10_000)).toBe(10_000);
  });
});

describe('result line', () => {
  const run: ConnectRun = {
    label: 'connect-file-4.1.1-eos-cold-1000000',
    mode: 'eos',
    start: 'cold',
    round: 1,
    rows: 1_000_000,
    lines: 1_000_001,
    missingLines: 0,
    markers: 101,
    bytes: 76_356_488,
    batchSize: 9901,
    seconds: 10,
    ...rate(1_000_000, 76_356_488, 10),
    kcat: { rowsPerSecond: 400_000, mbPerSecond: 30.5, seconds: 2.5 },
    ratioToKcat: ratio(100_000, 400_000),
    load: '1.00 1.50 2.00',
  };

  it('computes rows/s, MB/s and the ratio to kcat', () => {
    expect(run.rowsPerSecond).toBe(100_000);
    expect(run.mbPerSecond).toBe(7.6);
    expect(run.ratioToKcat).toBe(0.25);
  });

  it('prints the rate, the ratio, the line count, the transactions and the load on one line', () => {
    expect(formatRun(run)).toBe(
      '[bench] round 1 connect-file-4.1.1-eos-cold-1000000: 100000 rows/s, 7.6 MB/s (10.00 s, 1000001 lines read_committed, all lines, 101 transactions, batch.size 9901) | kcat -P 400000 rows/s | 0.25x kcat | load 1.00 1.50 2.00',
    );
  });

  it('says how many lines did not arrive', () => {
    expect(formatRun({ ...run, mode: 'plain', lines: 1_000_000, missingLines: 1 })).toContain(
      '1000000 lines read_committed, 1 lines MISSING, batch.size',
    );
  });
});
