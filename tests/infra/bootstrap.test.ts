import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from './sdk-calls.ts';

/**
 * `npx sst bootstrap` without AWS credentials printed nothing and exited 0. `npm run bootstrap` checks
 * the credentials first, says what is missing and exits non-zero before running it.
 */
describe('npm run bootstrap without credentials', () => {
  it('names the missing credentials and exits 1, before sst bootstrap', () => {
    // Prepare: no way to find credentials
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: '/nonexistent',
      AWS_REGION: 'eu-west-1',
      AWS_CONFIG_FILE: '/nonexistent/config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    // Act
    const r = spawnSync('npm', ['run', '-s', 'bootstrap', '--', '--stage', 'nocreds'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    // Assess
    const text = `${r.stdout}\n${r.stderr}`;
    expect(r.status, text).toBe(1);
    expect(text).toMatch(/bootstrap of stage nocreds FAILED: no AWS credentials found: run `aws configure`/);
    expect(text).not.toContain('== sst bootstrap');
  }, 150_000);

  it('refuses to run without a stage, saying how to call it', () => {
    const r = spawnSync('npm', ['run', '-s', 'bootstrap'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/usage: npm run bootstrap -- --stage <stage>/);
  }, 90_000);
});
