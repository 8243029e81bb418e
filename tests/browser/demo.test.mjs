// The demo forum and the hosted pay page in real headless Chromium, against a real
// `fiber-link dev` (its own private Postgres, hub simulator, API and worker).
//
// Env: FIBER_LINK_BIN (the binary), CHROMIUM (default /usr/bin/chromium), ARTIFACTS (where the
// screenshots go, default ./artifacts).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const BIN = resolve(process.env.FIBER_LINK_BIN ?? 'target/debug/fiber-link');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = resolve(process.env.ARTIFACTS ?? 'artifacts');
mkdirSync(ARTIFACTS, { recursive: true });

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function readEnv(dir) {
  const f = join(dir, 'dev.env');
  if (!existsSync(f)) return null;
  return Object.fromEntries(readFileSync(f, 'utf8').trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let dev, env, browser, dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fiber-link-browser-'));
  const [api, hub, demo, pg, consolePort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const log = openSync(join(dir, '..', `${dir.split('/').pop()}.log`), 'a');
  const childEnv = { ...process.env };
  delete childEnv.DATABASE_URL;
  const started = Date.now();
  dev = spawn(BIN, ['dev', '--dir', join(dir, 'dev'), '--api-port', api, '--hub-port', hub, '--demo-port', demo, '--pg-port', pg, '--console-port', consolePort].map(String), {
    env: childEnv,
    stdio: ['ignore', 'ignore', log],
  });
  for (;;) {
    env = readEnv(join(dir, 'dev'));
    if (env) break;
    assert.ok(Date.now() - started < 60_000, 'fiber-link dev did not start');
    assert.equal(dev.exitCode, null, 'fiber-link dev exited');
    await sleep(100);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (dev && dev.exitCode === null) {
    dev.kill('SIGTERM');
    for (let i = 0; i < 300 && dev.exitCode === null; i++) await sleep(100);
  }
  const home = join(dir, 'dev', 'pg-home');
  if (existsSync(home)) {
    const pg = readFileSync(home, 'utf8').trim();
    if (!pg.startsWith(dir)) rmSync(pg, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
});

test('a visitor tips a post in the demo forum, pays with the simulator and sees it settle', async () => {
  const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
  await page.goto(env.FIBER_LINK_DEMO_URL);
  await page.locator('article[data-post="102"] button').click();
  const dialog = page.locator('dialog#tip');
  await dialog.waitFor({ state: 'visible' });

  // an invalid amount is refused before anything is created
  await page.fill('#amount', '1.1234567');
  await page.selectOption('#asset', 'DEMO');
  await page.click('#create');
  assert.match(await page.locator('#err').textContent(), /At most 6 decimals/);

  await page.selectOption('#asset', 'CKB');
  await page.fill('#amount', '2.5');
  await page.fill('#message', '<b>thanks</b> for the write-up');
  await page.click('#create');

  const frame = page.frameLocator('#payframe');
  const invoice = frame.locator('textarea#invoice');
  await invoice.waitFor({ timeout: 10_000 });
  assert.match(await invoice.inputValue(), /^fibd250000000/, 'a 2.5 CKB devnet invoice');
  assert.ok(await frame.locator('figure.qr svg').isVisible(), 'QR code shown');
  assert.equal(await frame.locator('#state').textContent(), 'Awaiting payment');
  assert.equal(await frame.locator('.message').textContent(), '<b>thanks</b> for the write-up', 'message shown as text');
  await page.screenshot({ path: join(ARTIFACTS, 'demo-invoice.png') });

  await page.click('#simpay');
  // the pay page turns Settled by itself (Server-Sent Events), no reload
  await frame.locator('#state', { hasText: 'Settled' }).waitFor({ timeout: 15_000 });
  assert.equal(await frame.locator('#state').getAttribute('class'), 'state state-settled');
  await page.waitForFunction(
    () => document.querySelector('tr[data-author="bob"][data-asset="CKB"] .available')?.textContent === '2.5',
    null,
    { timeout: 10_000 },
  );
  await page.screenshot({ path: join(ARTIFACTS, 'demo-settled.png') });
  await page.click('#close2');
  await page.screenshot({ path: join(ARTIFACTS, 'demo-balances.png'), fullPage: true });

  // bob takes it all out to a Fiber wallet: reserved first, then paid out (the route fee of
  // 0.1 % came out of the 0.5 % reserved for it; the rest came back)
  await page.click('tr[data-author="bob"][data-asset="CKB"] button.withdraw');
  await page.waitForFunction(
    () => {
      const row = document.querySelector('tr[data-author="bob"][data-asset="CKB"]');
      return row?.querySelector('.reserved')?.textContent === '0'
        && row?.querySelector('.available')?.textContent !== '2.5';
    },
    null,
    { timeout: 15_000 },
  );
  const left = await page.locator('tr[data-author="bob"][data-asset="CKB"] .available').textContent();
  assert.equal(left, '0.0100125', 'what the route did not use of the 0.5 % fee reserve');
  assert.equal(await page.locator('#werr').textContent(), '');
  await page.screenshot({ path: join(ARTIFACTS, 'demo-withdrawn.png'), fullPage: true });
  await page.close();
});

test('the pay page works on a phone-sized screen and says Expired / not found', async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  const r = await page.goto(`${env.FIBER_LINK_API_URL}/pay/00000000-0000-4000-8000-000000000000`);
  assert.equal(r.status(), 404);
  assert.match(await page.locator('h1').textContent(), /not found/i);

  // a fresh tip, straight from the demo's server-side signer
  const tip = await (await fetch(`${env.FIBER_LINK_DEMO_URL}/api/tip`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ post_id: '101', to_user_id: 'alice', asset: 'DEMO', amount: '3', message: '' }),
  })).json();
  assert.ok(tip.pay_url, JSON.stringify(tip));
  await page.goto(tip.pay_url);
  assert.equal(await page.locator('.amount').textContent(), '3');
  const box = await page.locator('figure.qr svg').boundingBox();
  assert.ok(box.width <= 390, 'the QR code fits the screen');
  await page.screenshot({ path: join(ARTIFACTS, 'pay-page-phone.png'), fullPage: true });
  await page.close();
});
