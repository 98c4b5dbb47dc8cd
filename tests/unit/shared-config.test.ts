import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { boolFromEnv, CommonEnv, ConfigError, intFromEnv, loadConfig } from '../../services/shared/config.ts';

describe('loadConfig', () => {
  it('applies defaults and coerces numbers and booleans', () => {
    const cfg = loadConfig(CommonEnv.extend({ N: intFromEnv(5), B: boolFromEnv(false) }), {
      N: '12',
      B: '1',
    });
    expect(cfg).toMatchObject({
      ROWSTREAM_STAGE: 'local',
      AWS_REGION: 'us-east-1',
      N: 12,
      B: true,
      LOG_LEVEL: 'INFO',
    });
  });

  it('fails at start naming every bad setting', () => {
    const schema = z.object({ ROWSTREAM_BUCKET: z.string().min(1), N: intFromEnv(1) });
    expect(() => loadConfig(schema, { N: 'lots' })).toThrow(ConfigError);
    expect(() => loadConfig(schema, { N: '-3' })).toThrow(/ROWSTREAM_BUCKET: .*\n\s+N: /);
  });

  it('rejects a metrics sink it cannot honour', () => {
    expect(() => loadConfig(CommonEnv, { ROWSTREAM_METRICS_SINK: 'kafka' })).toThrow(
      /ROWSTREAM_METRICS_SINK/,
    );
    expect(loadConfig(CommonEnv, { ROWSTREAM_METRICS_SINK: 'file:/tmp/x' }).ROWSTREAM_METRICS_SINK).toBe(
      'file:/tmp/x',
    );
  });
});
