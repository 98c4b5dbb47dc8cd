import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './sdk-calls.ts';

/**
 * `npm run deploy` without AWS credentials: `sst deploy` alone printed nothing and exited 0. The deploy
 * path must stop before deploying, say why and exit non-zero.
 */
describe('npm run deploy without credentials', () => {
  it('stops at the doctor with the cause and exit 1, before sst deploy', () => {
    // Prepare: a complete stage (the docs example) and no way to find credentials
    const example = parseEnv(readFileSync(join(ROOT, 'stacks/example.env'), 'utf8'));
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: '/nonexistent',
      ...example,
      AWS_CONFIG_FILE: '/nonexistent/config',
      AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/credentials',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    // Act
    const r = spawnSync('npm', ['run', '-s', 'deploy', '--', '--stage', 'nocreds'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
      timeout: 120_000,
    });
    // Assess
    const text = `${r.stdout}\n${r.stderr}`;
    expect(r.status, text).toBe(1);
    expect(text).toMatch(/FAIL {2}credentials: no AWS credentials found/);
    expect(text).toMatch(/deploy of stage nocreds FAILED: the doctor found problems/);
    expect(text).not.toContain('== sst deploy');
  }, 150_000);
});
