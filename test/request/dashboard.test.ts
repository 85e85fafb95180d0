/** The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core). */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TesseraClient } from '../../src/client/client.js';
import { Registry } from '../../src/lib/metrics.js';
import { type RunningServer, startHttpServer } from '../../src/request/http.js';
import { makeTokens, quietLogger, type Tokens } from './fixture.js';
import { MemoryBackend } from './memory-backend.js';
import { chromiumPath, launchChromium } from '../support/chromium.js';

let backend: MemoryBackend;
let server: RunningServer;
let tokens: Tokens;
let browser: BrowserContext;
let userDataDir: string;
const seenUrls: string[] = [];
const seenAuth: string[] = [];

beforeAll(async () => {
  expect(existsSync(chromiumPath)).toBe(true);
  backend = new MemoryBackend();
  tokens = await makeTokens(backend);
  await backend.createTable('orders', 'lsm');
  server = await startHttpServer(backend, { registry: new Registry(), logger: quietLogger() });
  server.frontend.onHead = (head) => {
    seenUrls.push(head.url);
    const auth = head.headers.authorization;
    seenAuth.push(typeof auth === 'string' ? auth : '');
  };
  userDataDir = mkdtempSync(path.join(tmpdir(), 'tessera-chromium-'));
  browser = await launchChromium(userDataDir);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

// biome-ignore lint/performance/useDomNodeTextContent: the rendered text (table cells separated) is what a user sees
const text = (page: Page, sel: string) => page.locator(sel).innerText();

describe('dashboard', () => {
  it('shows the metadata manager, nodes, groups, shards and live ops from a #token= link', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/dashboard#token=${tokens.ro}`);
    await expect.poll(() => text(page, '#mm-leader'), { timeout: 15_000 }).toBe('2');
    expect(await text(page, '#mm-members')).toBe('1, 2, 3');
    const groups = await text(page, '#groups-body');
    expect(groups).toMatch(/1\s+11, 12\*, 13\s+12\s+7/);
    expect(groups).toMatch(/2\s+11, 13, 14\s+none\s+3/);
    const nodes = await text(page, '#nodes-body');
    expect(nodes).toMatch(/14\s+storage\s+127\.0\.0\.1:7214\s+down\s+9\.0 s/);
    expect(nodes).toMatch(/15\s+storage\s+127\.0\.0\.1:7215\s+2015\s+spare/);
    expect(nodes).toMatch(/11\s+storage\s+127\.0\.0\.1:7211\s+2011\s+up\s+250 ms/);
    const shards = await text(page, '#tables-body');
    expect(shards).toMatch(/orders\s+lsm\s+"" \.\. "m"\s+1\s+1/);
    expect(shards).toMatch(/"m" \.\. ""\s+2\s+1/);

    // Load while the page polls: ops/s and the put row with its latency appear.
    const c = new TesseraClient({ url: server.url, token: tokens.admin });
    let i = 0;
    const load = async () => {
      const stop = Date.now() + 3000;
      while (Date.now() < stop) await c.put('orders', `k${i++}`, 'v');
    };
    await Promise.all([
      load(),
      expect.poll(() => text(page, '#ops-body'), { timeout: 15_000 }).toMatch(/item\.put\s+[1-9]/),
    ]);
    c.close();
    expect(await text(page, '#ops-body')).toMatch(/item\.put\s+\d+\.\d\s+\d+(\.\d+)? ms\s+\d+(\.\d+)? ms/);

    // The token came in the fragment: never in a URL the server saw, only in the Authorization header.
    expect(seenUrls.some((u) => u.includes('token') || u.includes('tess_'))).toBe(false);
    expect(seenAuth).toContain(`Bearer ${tokens.ro}`);
    expect(page.url()).not.toContain('tess_');
    await page.close();
  });

  it('asks for a token when none is given, and says so when it is refused', async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/dashboard`);
    await expect.poll(() => page.locator('#login').isVisible(), { timeout: 10_000 }).toBe(true);
    await page.fill('#token-input', `tess_${'B'.repeat(43)}`);
    await page.click('button[type=submit]');
    await expect.poll(() => text(page, '#login-msg'), { timeout: 10_000 }).toBe('The token was refused.');
    await page.fill('#token-input', tokens.ro);
    await page.click('button[type=submit]');
    await expect.poll(() => text(page, '#mm-leader'), { timeout: 10_000 }).toBe('2');
    await page.close();
  });
});
