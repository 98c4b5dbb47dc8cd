import { Producer } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it, vi } from 'vitest';
import { kafkaConnectionFor } from '../../../cli/topic.ts';
import {
  connectionOf,
  connectionSummary,
  type KafkaConnection,
  kafkajsConnectionOptions,
  mskIamTokenProvider,
  mskRegion,
  platformaticConnectionOptions,
} from '../../../services/producer/adapters/kafka-connection.ts';
import { kafkaConnection, loadProducerEnv } from '../../../services/producer/settings.ts';

/** The variables every producer needs besides Kafka's. */
const BASE = {
  ROWSTREAM_BUCKET: 'b',
  ROWSTREAM_BUS_NAME: 'bus',
  ROWSTREAM_JOBS_TABLE: 'jobs',
  ROWSTREAM_PRODUCER_QUEUE_URL: 'http://q',
  AWS_REGION: 'us-east-1',
  KAFKA_BROKERS: 'k1.example:9096, k2.example:9096',
};
const MSK_BROKERS =
  'b-1.data.abc123.c2.kafka.eu-west-1.amazonaws.com:9098,b-2.data.abc123.c2.kafka.eu-west-1.amazonaws.com:9098';

const connectionFrom = (vars: Record<string, string>) =>
  kafkaConnection(loadProducerEnv({ ...BASE, ...vars }));
const failureOf = (vars: Record<string, string>): string => {
  try {
    loadProducerEnv({ ...BASE, ...vars });
  } catch (e) {
    return (e as Error).message;
  }
  return expect.fail('the settings were accepted');
};
const stubSigner = (token = 'signed-token', ttlMs = 15 * 60_000, now = () => 1_000_000) =>
  vi.fn(async (_region: string) => ({ token, expiryTime: now() + ttlMs }));

const SCRAM: KafkaConnection = {
  brokers: ['k1.example:9096'],
  ssl: true,
  sasl: { kind: 'scram', mechanism: 'scram-sha-512', username: 'rowstream', password: 's3cret' },
};
const MSK: KafkaConnection = {
  brokers: ['b-1.x.kafka.eu-west-1.amazonaws.com:9098'],
  ssl: true,
  sasl: { kind: 'msk-iam', region: 'eu-west-1' },
};

describe('Kafka connection settings', () => {
  it('is plaintext without SASL when only KAFKA_BROKERS is set (the local stack)', () => {
    // Act
    const c = connectionFrom({});
    // Assess
    expect(c).toEqual({
      brokers: ['k1.example:9096', 'k2.example:9096'],
      ssl: false,
      sasl: { kind: 'none' },
    });
  });

  it('reads blank KAFKA_SASL_MECHANISM as none (what the stacks write for auth none)', () => {
    // Act
    const c = connectionFrom({ KAFKA_SSL: 'false', KAFKA_SASL_MECHANISM: '' });
    // Assess
    expect(c.sasl).toEqual({ kind: 'none' });
    expect(c.ssl).toBe(false);
  });

  it('reads SCRAM with TLS, the credentials ECS injects from the secret', () => {
    // Act
    const c = connectionFrom({
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_USERNAME: 'rowstream',
      KAFKA_PASSWORD: 's3cret',
    });
    // Assess
    expect(c).toEqual({
      brokers: ['k1.example:9096', 'k2.example:9096'],
      ssl: true,
      sasl: { kind: 'scram', mechanism: 'scram-sha-512', username: 'rowstream', password: 's3cret' },
    });
    expect(JSON.stringify(connectionSummary(c))).not.toContain('s3cret');
  });

  it('accepts SCRAM-SHA-256 in upper case, as Kafka spells it', () => {
    // Act
    const c = connectionFrom({
      KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
      KAFKA_USERNAME: 'u',
      KAFKA_PASSWORD: 'p',
    });
    // Assess
    expect(c.sasl).toMatchObject({ kind: 'scram', mechanism: 'scram-sha-256' });
  });

  it('turns TLS on for MSK IAM and signs for the region in the broker names', () => {
    // Act
    const c = connectionFrom({ KAFKA_BROKERS: MSK_BROKERS, KAFKA_SASL_MECHANISM: 'aws-msk-iam' });
    // Assess: AWS_REGION is us-east-1, the cluster is in eu-west-1; a token signed for the wrong region is refused.
    expect(c.ssl).toBe(true);
    expect(c.sasl).toEqual({ kind: 'msk-iam', region: 'eu-west-1' });
  });

  it('signs for AWS_REGION when the broker names carry no region (custom DNS names)', () => {
    // Act
    const c = connectionFrom({
      KAFKA_SASL_MECHANISM: 'aws-msk-iam',
      KAFKA_SSL: 'true',
      AWS_REGION: 'ap-south-1',
    });
    // Assess
    expect(c.sasl).toEqual({ kind: 'msk-iam', region: 'ap-south-1' });
  });

  it('finds the region of provisioned and serverless MSK bootstrap names', () => {
    expect(mskRegion([MSK_BROKERS.split(',')[0]!])).toBe('eu-west-1');
    expect(mskRegion(['boot-abc.c2.kafka-serverless.us-west-2.amazonaws.com:9098'])).toBe('us-west-2');
    expect(mskRegion(['kafka.internal:9092'])).toBeNull();
  });

  it.each([
    [
      { KAFKA_SASL_MECHANISM: 'scram-sha-512', KAFKA_PASSWORD: 'p' },
      /KAFKA_USERNAME: required when KAFKA_SASL_MECHANISM=scram-sha-512/,
    ],
    [
      { KAFKA_SASL_MECHANISM: 'scram-sha-256', KAFKA_USERNAME: 'u' },
      /KAFKA_PASSWORD: required when KAFKA_SASL_MECHANISM=scram-sha-256/,
    ],
    [{ KAFKA_SASL_MECHANISM: 'kerberos' }, /KAFKA_SASL_MECHANISM: .*aws-msk-iam/],
    [{ KAFKA_SSL: 'yes' }, /KAFKA_SSL: /],
    [{ KAFKA_BROKERS: 'localhost' }, /KAFKA_BROKERS: comma-separated host:port list/],
    [{ KAFKA_BROKERS: 'a:9092,,b:9092' }, /KAFKA_BROKERS: /],
    [{ KAFKA_BROKERS: '' }, /KAFKA_BROKERS: /],
    [
      { KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_SSL: 'false' },
      /KAFKA_SSL: MSK IAM authentication is TLS-only/,
    ],
    [{ KAFKA_USERNAME: 'u', KAFKA_PASSWORD: 'p' }, /KAFKA_USERNAME: set, but KAFKA_SASL_MECHANISM is unset/],
    [
      { KAFKA_SASL_MECHANISM: 'aws-msk-iam', KAFKA_PASSWORD: 'p' },
      /KAFKA_PASSWORD: not used with KAFKA_SASL_MECHANISM=aws-msk-iam/,
    ],
  ])('fails at start naming the variable: %j', (vars, message) => {
    // Act
    const text = failureOf(vars);
    // Assess
    expect(text).toMatch(message);
  });

  it('names both SCRAM credentials when both are missing', () => {
    // Act
    const text = failureOf({ KAFKA_SASL_MECHANISM: 'scram-sha-512' });
    // Assess
    expect(text).toMatch(/KAFKA_USERNAME: required/);
    expect(text).toMatch(/KAFKA_PASSWORD: required/);
  });

  it('keeps plaintext to the given brokers for callers that pass no connection (bench)', () => {
    expect(connectionOf({ brokers: ['127.0.0.1:9092'] })).toEqual({
      brokers: ['127.0.0.1:9092'],
      ssl: false,
      sasl: { kind: 'none' },
    });
    expect(connectionOf({ brokers: ['ignored:1'], connection: SCRAM })).toBe(SCRAM);
  });
});

describe('kafkajs options', () => {
  it('maps plaintext, TLS and SCRAM to ssl and sasl', () => {
    // Act
    const plain = kafkajsConnectionOptions(connectionOf({ brokers: ['a:9092'] }));
    const scram = kafkajsConnectionOptions(SCRAM);
    // Assess
    expect(plain).toEqual({ brokers: ['a:9092'], ssl: false });
    expect(scram).toEqual({
      brokers: ['k1.example:9096'],
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'rowstream', password: 's3cret' },
    });
  });

  it('maps MSK IAM to OAUTHBEARER with a provider that returns the signed token', async () => {
    // Prepare
    const signer = stubSigner('msk-token');
    // Act
    const options = kafkajsConnectionOptions(MSK, { signer, now: () => 1_000_000 });
    // Assess
    expect(options.ssl).toBe(true);
    expect(options.sasl?.mechanism).toBe('oauthbearer');
    const sasl = options.sasl as { oauthBearerProvider: () => Promise<{ value: string }> };
    await expect(sasl.oauthBearerProvider()).resolves.toEqual({ value: 'msk-token' });
    expect(signer).toHaveBeenCalledWith('eu-west-1');
  });

  it('is accepted by the kafkajs constructor (no connection is made)', () => {
    for (const c of [SCRAM, MSK, connectionOf({ brokers: ['a:9092'] })]) {
      expect(
        () => new Kafka({ clientId: 't', logLevel: logLevel.NOTHING, ...kafkajsConnectionOptions(c) }),
      ).not.toThrow();
    }
  });
});

describe('@platformatic/kafka options', () => {
  it('maps plaintext to bootstrap brokers only', () => {
    expect(platformaticConnectionOptions(connectionOf({ brokers: ['a:9092'] }))).toEqual({
      bootstrapBrokers: ['a:9092'],
    });
  });

  it('maps TLS with the broker host as SNI name, and SCRAM to its mechanism names', () => {
    // Act
    const scram512 = platformaticConnectionOptions(SCRAM);
    const scram256 = platformaticConnectionOptions({
      ...SCRAM,
      sasl: { kind: 'scram', mechanism: 'scram-sha-256', username: 'u', password: 'p' },
    });
    // Assess
    expect(scram512).toEqual({
      bootstrapBrokers: ['k1.example:9096'],
      tls: {},
      tlsServerName: true,
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'rowstream', password: 's3cret' },
    });
    expect(scram256.sasl?.mechanism).toBe('SCRAM-SHA-256');
  });

  it('sends no SNI name when a broker is an IP address', () => {
    // Act
    const o = platformaticConnectionOptions({
      brokers: ['10.0.0.5:9094'],
      ssl: true,
      sasl: { kind: 'none' },
    });
    // Assess
    expect(o.tls).toEqual({});
    expect(o.tlsServerName).toBeUndefined();
  });

  it('maps MSK IAM to OAUTHBEARER with a token provider returning the signed token', async () => {
    // Prepare
    const signer = stubSigner('msk-token-2');
    // Act
    const o = platformaticConnectionOptions(MSK, { signer, now: () => 1_000_000 });
    // Assess
    expect(o.tls).toEqual({});
    expect(o.sasl?.mechanism).toBe('OAUTHBEARER');
    const token = o.sasl?.token;
    if (typeof token !== 'function') return expect.fail('token is not a provider');
    await expect(token()).resolves.toBe('msk-token-2');
    expect(signer).toHaveBeenCalledWith('eu-west-1');
  });

  it('is accepted by the @platformatic/kafka option validation (no connection is made)', async () => {
    for (const c of [SCRAM, MSK, connectionOf({ brokers: ['a:9092'] })]) {
      // Prepare / Act: with `strict` the constructor validates its options against the library's schema.
      const p = new Producer({
        clientId: 't',
        strict: true,
        ...platformaticConnectionOptions(c, { signer: stubSigner() }),
      });
      // Assess
      expect(p.closed).toBe(false);
      await p.close();
    }
    expect(
      () =>
        new Producer({
          clientId: 't',
          strict: true,
          bootstrapBrokers: ['a:1'],
          // biome-ignore lint/suspicious/noExplicitAny: proves the validation above can fail
          sasl: { mechanism: 'scram-sha-512' as any, username: 'u', password: 'p' },
        }),
    ).toThrow(/sasl/);
  });
});

describe('MSK IAM token provider', () => {
  it('signs once for concurrent connections and reuses the token until a minute before expiry', async () => {
    // Prepare
    let now = 1_000_000;
    const signer = vi.fn(async () => ({
      token: `t${signer.mock.calls.length}`,
      expiryTime: now + 15 * 60_000,
    }));
    const token = mskIamTokenProvider('eu-west-1', { signer, now: () => now });
    // Act
    const first = await Promise.all([token(), token(), token()]);
    now += 13 * 60_000;
    const stillCached = await token();
    now += 90_000;
    const renewed = await token();
    // Assess
    expect(first).toEqual(['t1', 't1', 't1']);
    expect(stillCached).toBe('t1');
    expect(renewed).toBe('t2');
    expect(signer).toHaveBeenCalledTimes(2);
  });

  it('signs again after a failed signing instead of caching the failure', async () => {
    // Prepare
    const signer = vi
      .fn<(region: string) => Promise<{ token: string; expiryTime: number }>>()
      .mockRejectedValueOnce(new Error('no credentials'))
      .mockResolvedValueOnce({ token: 'ok', expiryTime: Date.now() + 900_000 });
    const token = mskIamTokenProvider('eu-west-1', { signer });
    // Act / Assess
    await expect(token()).rejects.toThrow('no credentials');
    await expect(token()).resolves.toBe('ok');
  });
});

describe('CLI topic read connection', () => {
  const cloud = { brokers: ['k1.example:9096'], outputs: null, region: 'eu-west-1' };

  it('reads the cluster KAFKA_BROKERS names with the producer variables (SCRAM)', () => {
    // Act
    const c = kafkaConnectionFor(cloud, {
      KAFKA_BROKERS: 'k1.example:9096',
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_USERNAME: 'u',
      KAFKA_PASSWORD: 'p',
    });
    // Assess
    expect(c).toEqual({
      brokers: ['k1.example:9096'],
      ssl: true,
      sasl: { kind: 'scram', mechanism: 'scram-sha-512', username: 'u', password: 'p' },
    });
  });

  it('uses the target region for MSK IAM when the broker names carry none', () => {
    // Act
    const c = kafkaConnectionFor(cloud, {
      KAFKA_BROKERS: 'k1.example:9098',
      KAFKA_SASL_MECHANISM: 'aws-msk-iam',
    });
    // Assess
    expect(c.sasl).toEqual({ kind: 'msk-iam', region: 'eu-west-1' });
  });

  it('fails with the variable name as an environment error', () => {
    // Act / Assess
    expect(() =>
      kafkaConnectionFor(cloud, { KAFKA_BROKERS: 'k1.example:9096', KAFKA_SASL_MECHANISM: 'scram-sha-512' }),
    ).toThrow(/KAFKA_USERNAME: required/);
  });

  it('keeps the local stack plaintext whatever the environment says', () => {
    // Prepare
    const local = { brokers: ['127.0.0.1:9092'], outputs: {} as never, region: 'us-east-1' };
    // Act
    const c = kafkaConnectionFor(local, { KAFKA_SSL: 'true', KAFKA_SASL_MECHANISM: 'aws-msk-iam' });
    // Assess
    expect(c).toEqual({ brokers: ['127.0.0.1:9092'], ssl: false, sasl: { kind: 'none' } });
  });
});
