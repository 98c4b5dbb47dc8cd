import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import config from '../../sst.config.ts';
import { stageEnv, stageRegion } from '../../stacks/stage-env.ts';
import { ROOT } from './sdk-calls.ts';

describe("a stage's region and settings before SST loads .env.<stage>", () => {
  it('takes AWS_REGION from .env.<stage> over the shell, as SST does for the stacks', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'rowstream-env-'));
    try {
      writeFileSync(join(dir, '.env'), 'ROWSTREAM_VPC_ID=vpc-0aaa\nAWS_REGION=us-west-2\n');
      writeFileSync(join(dir, '.env.prod'), 'AWS_REGION=eu-west-1 # the docs example\n');
      // Act / Assess
      expect(stageRegion(dir, 'prod', { AWS_REGION: 'us-east-1' })).toBe('eu-west-1');
      expect(stageRegion(dir, 'dev', { AWS_REGION: 'us-east-1' })).toBe('us-west-2');
      expect(stageRegion(join(dir, 'none'), 'prod', {})).toBe('us-east-1');
      expect(stageEnv(dir, 'prod', {}).ROWSTREAM_VPC_ID).toBe('vpc-0aaa');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sst.config.ts config() deploys to the region of .env.<stage>', () => {
    // Prepare: a stage file beside sst.config.ts, as docs/deploy.md tells the operator to write it
    const stage = `cfgtest${process.pid}`;
    const file = join(ROOT, `.env.${stage}`);
    writeFileSync(file, 'AWS_REGION=ap-southeast-2\n');
    try {
      // Act
      const c = config.config({ stage });
      // Assess
      expect(c.region).toBe('ap-southeast-2');
    } finally {
      rmSync(file, { force: true });
    }
  });
});
