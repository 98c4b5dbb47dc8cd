import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alarmDefinitions } from '../../monitoring/alarms.ts';
import { writeSample } from '../../testkit/sample.ts';
import { BIN, cliStage, REPO_ROOT } from './cli-harness.ts';

/**
 * The local dashboard in headless Chromium (Debian's `chromium` + playwright-core), against a fresh
 * stage with the services running: it loads, shows a running job's progress moving, and logs no
 * console errors. Screenshot: test-output/dashboard/dashboard.png.
 */
const CHROMIUM = process.env.ROWSTREAM_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const OUT = join(REPO_ROOT, 'test-output', 'dashboard');

let stage: Awaited<ReturnType<typeof cliStage>>;
let dashboard: ChildProcess | null = null;
let browser: Browser | null = null;
let dashboardUrl = '';

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install it with \`apt-get install -y chromium\` (or set ROWSTREAM_CHROMIUM)`,
    );
  }
  mkdirSync(OUT, { recursive: true });
  stage = await cliStage('dash');
  // Checkpoints every second instead of five, so the job record (and the page) moves several times.
  stage.env.ROWSTREAM_PRODUCER_CHECKPOINT_MS = '1000';
  await stage.up();
});

afterAll(async () => {
  await browser?.close();
  dashboard?.kill('SIGTERM');
  await stage?.down();
});

/** `rowstream dashboard --port 0` as a user starts it; resolves with the URL it prints. */
function startDashboard(env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'dashboard', '--port', '0'], { cwd: REPO_ROOT, env });
    dashboard = child;
    let out = '';
    const timer = setTimeout(() => reject(new Error(`dashboard did not start: ${out}`)), 30_000);
    const onData = (c: Buffer) => {
      out += c.toString('utf8');
      const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve(url);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`dashboard exited (${code}): ${out}`)));
  });
}

describe('rowstream dashboard', () => {
  it('loads, shows a running job moving, and logs no console errors', async () => {
    // Prepare: a file big enough to run for a while, dropped without waiting
    const file = join(stage.dir, 'big.csv');
    await writeSample(file, { rows: 400_000 });
    const url = await startDashboard(stage.env);
    dashboardUrl = url;
    const drop = await stage.run(['drop', file, '--no-wait', '--topic', `dash-${stage.outputs.stage}`]);
    expect(drop.code, drop.stderr).toBe(0);
    const jobId = /^job (j-[0-9a-f]{24})$/m.exec(drop.stdout)?.[1];
    expect(jobId).toBeDefined();

    // Act
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const consoleErrors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(url);
    const row = page.locator(`tr[data-testid="job-row"][data-job-id="${jobId}"]`);
    await row.and(page.locator('[data-status="RUNNING"]')).waitFor({ timeout: 90_000 });
    const rowsDone = async () => Number(await row.getAttribute('data-rows-done'));
    const first = await rowsDone();
    let later = first;
    const deadline = Date.now() + 60_000;
    while (later === first && Date.now() < deadline) {
      await page.waitForTimeout(500);
      later = await rowsDone();
    }
    // Let the throughput chart draw a few points before the picture is taken.
    await page.waitForTimeout(3000);
    await page.screenshot({ path: join(OUT, 'dashboard.png'), fullPage: true });

    // Assess
    expect(later, `progress did not move from ${first} rows\n${stage.logs()}`).toBeGreaterThan(first);
    expect(await page.locator('#stage').textContent()).toBe(stage.outputs.stage);
    expect(await page.locator('#live').getAttribute('class')).not.toContain('stale');
    expect(await row.locator('[data-testid="job-percent"]').textContent()).toMatch(/^\d+\.\d%$/);
    expect(consoleErrors).toEqual([]);
  });

  it('shows every alarm of the stage with its state and a runbook link, the budget panel and the inventory', async () => {
    const page = await browser!.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(dashboardUrl);
    const alarms = page.locator('tr[data-testid="alarm-row"]');
    await alarms.first().waitFor({ timeout: 30_000 });
    expect(await alarms.count()).toBe(alarmDefinitions(stage.outputs.stage).length);
    const rejected = page.locator('tr[data-testid="alarm-row"][data-alarm="rows-rejected"]');
    expect(await rejected.getAttribute('data-state')).toMatch(/^(OK|ALARM|INSUFFICIENT_DATA)$/);
    expect(await rejected.locator('a').getAttribute('href')).toBe(
      `${stage.outputs.endpoint}/${stage.outputs.bucket}/runbooks/runbooks.md#rows-rejected`,
    );
    // The dims-publisher runs at start: its snapshot is on the page.
    await page.locator('tr[data-testid="inventory-row"]').first().waitFor({ timeout: 30_000 });
    expect(await page.locator('#budget-text').textContent()).not.toBe('–');
  });
});
