import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  localEndpoints,
  localPaths,
  parseProperties,
  portsFromEnv,
  REPO_ROOT,
  renderServerProperties,
  renderTemplate,
} from '../../local/config.ts';
import { LocalStackError } from '../../local/errors.ts';

const template = readFileSync(join(REPO_ROOT, 'local', 'kafka', 'server.properties'), 'utf8');

describe('portsFromEnv', () => {
  it('defaults to 4566 / 9092 / 9093', () => {
    expect(portsFromEnv({})).toEqual({ moto: 4566, kafka: 9092, controller: 9093 });
  });

  it('reads the ROWSTREAM_* variables, the controller following the Kafka port', () => {
    expect(portsFromEnv({ ROWSTREAM_MOTO_PORT: '5000', ROWSTREAM_KAFKA_PORT: '19092' })).toEqual({
      moto: 5000,
      kafka: 19092,
      controller: 19093,
    });
    expect(portsFromEnv({ ROWSTREAM_KAFKA_CONTROLLER_PORT: '29093' }).controller).toBe(29093);
  });

  it('rejects a value that is not a port, naming the variable', () => {
    expect(() => portsFromEnv({ ROWSTREAM_MOTO_PORT: 'http://x' })).toThrow(/ROWSTREAM_MOTO_PORT=http:\/\/x/);
    expect(() => portsFromEnv({ ROWSTREAM_KAFKA_PORT: '70000' })).toThrow(LocalStackError);
  });

  it('rejects two components on one port', () => {
    expect(() => portsFromEnv({ ROWSTREAM_MOTO_PORT: '9092' })).toThrow(/moto and kafka are both 9092/);
  });

  it('gives the endpoint and brokers on loopback', () => {
    expect(localEndpoints({ moto: 1, kafka: 2, controller: 3 })).toEqual({
      endpoint: 'http://127.0.0.1:1',
      brokers: ['127.0.0.1:2'],
    });
  });
});

describe('server.properties', () => {
  const rendered = parseProperties(
    renderServerProperties(template, { moto: 4566, kafka: 9092, controller: 9093 }, '/d'),
  );

  it('is a combined KRaft broker+controller on loopback with the given ports and data dir', () => {
    expect(rendered.get('process.roles')).toBe('broker,controller');
    expect(rendered.get('node.id')).toBe('1');
    expect(rendered.get('controller.quorum.voters')).toBe('1@127.0.0.1:9093');
    expect(rendered.get('listeners')).toBe('PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093');
    expect(rendered.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:9092');
    expect(rendered.get('log.dirs')).toBe('/d');
  });

  it('lets internal topics live on one node, so groups and transactions do not hang', () => {
    expect(rendered.get('offsets.topic.replication.factor')).toBe('1');
    expect(rendered.get('transaction.state.log.replication.factor')).toBe('1');
    expect(rendered.get('transaction.state.log.min.isr')).toBe('1');
    expect(rendered.get('auto.create.topics.enable')).toBe('true');
    expect(rendered.get('num.partitions')).toBe('1');
    expect(rendered.get('group.initial.rebalance.delay.ms')).toBe('0');
  });

  it('leaves no placeholder behind', () => {
    expect(renderServerProperties(template, { moto: 1, kafka: 2, controller: 3 }, '/d')).not.toMatch(/\{\{/);
  });
});

describe('renderTemplate', () => {
  it('fails on a placeholder without a value and on a value without a placeholder', () => {
    expect(() => renderTemplate('a={{A}} b={{B}}', { A: 1 })).toThrow(/\{\{B\}\} has no value/);
    expect(() => renderTemplate('a={{A}}', { A: 1, C: 2 })).toThrow(/no placeholder for C/);
    expect(renderTemplate('a={{A}} again={{A}}', { A: 'x' })).toBe('a=x again=x');
  });
});

describe('parseProperties', () => {
  it('reads key=value lines and skips comments and blanks', () => {
    expect([...parseProperties('# c\n\na=1\n b = two=2 \n')]).toEqual([
      ['a', '1'],
      ['b', 'two=2'],
    ]);
  });
});

describe('localPaths', () => {
  it('keeps everything under .local/', () => {
    const paths = localPaths('/repo');
    const written = [
      paths.stackJson,
      paths.moto.venv,
      paths.moto.log,
      paths.moto.pid,
      paths.moto.marker,
      paths.kafka.libs,
      paths.kafka.data,
      paths.kafka.properties,
      paths.kafka.log,
      paths.kafka.pid,
      paths.kafka.marker,
    ];
    for (const path of written) expect(path.startsWith('/repo/.local/')).toBe(true);
    expect(paths.moto.log).toBe('/repo/.local/logs/moto.log');
    expect(paths.kafka.pid).toBe('/repo/.local/run/kafka.pid');
  });
});
