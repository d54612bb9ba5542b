'use strict';
// Headless Chromium (the Debian `chromium` package) driven by playwright-core, for the
// browser interop tests: the page is served by tandem itself from http_server.static_dir.
//
// A page reports to the test by calling window.__tdReport(event) (exposed with
// page.exposeFunction before the page loads); openPage() collects the events, and
// `events.next(pred, what)` waits for one, bounded like every wait in lib/util.js. Console
// output and page errors are kept so a failure shows what the page saw.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const assert = require('node:assert/strict');

const { binPath, apiResult } = require('./server');

const PAGES_DIR = path.resolve(__dirname, '../pages');
// The package's "exports" hide dist/, so find the browser bundles (JSON, and Protobuf for
// pages opened with ?codec=protobuf) next to the resolved main entry.
const CENTRIFUGE_DIST = path.join(path.dirname(require.resolve('centrifuge')), '../dist');
const CENTRIFUGE_BUNDLES = ['centrifuge.js', 'centrifuge.protobuf.js'];
const CHROMIUM_CANDIDATES = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];
const DEFAULT_WAIT_MS = 10000;

/** The Chromium executable: $CHROMIUM_BIN, else the Debian package's paths; throws if none. */
function chromiumPath() {
  const candidates = process.env.CHROMIUM_BIN ? [process.env.CHROMIUM_BIN] : CHROMIUM_CANDIDATES;
  for (const p of candidates) {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    `Chromium not found (tried ${candidates.join(', ')}): install the Debian package ` +
      '(`apt-get install chromium`, scripts/setup.sh does) or set CHROMIUM_BIN'
  );
}

/**
 * Launches headless Chromium. `netlogFile` (optional, or $TANDEM_NETLOG_DIR) makes Chromium
 * write a NetLog, the only place the real reason of a failed WebTransport handshake shows.
 */
async function launchBrowser({ netlogFile = null } = {}) {
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch (e) {
    throw new Error(`playwright-core is not installed (run npm ci in tests/interop): ${e.message}`);
  }
  const args = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-dev-shm-usage'];
  if (!netlogFile && process.env.TANDEM_NETLOG_DIR) {
    fs.mkdirSync(process.env.TANDEM_NETLOG_DIR, { recursive: true });
    netlogFile = path.join(process.env.TANDEM_NETLOG_DIR, `netlog-${process.pid}-${Date.now()}.json`);
  }
  if (netlogFile) args.push(`--log-net-log=${netlogFile}`, '--net-log-capture-mode=Everything');
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args, timeout: 30000 });
}

/**
 * Makes a temp directory holding tests/interop/pages/* and the centrifuge-js browser bundles
 * (centrifuge.js and centrifuge.protobuf.js), to be used as http_server.static_dir.
 * Returns {dir, remove()}.
 */
function makeStaticDir() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-static-'));
  for (const name of fs.readdirSync(PAGES_DIR)) {
    fs.copyFileSync(path.join(PAGES_DIR, name), path.join(dir, name));
  }
  for (const name of CENTRIFUGE_BUNDLES) {
    fs.copyFileSync(path.join(CENTRIFUGE_DIST, name), path.join(dir, name));
  }
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Runs `tandem gencert --days 13 --out DIR` (a certificate Chromium accepts through
 * serverCertificateHashes) and returns {dir, cert, key, sha256Hex, remove()}.
 */
function gencert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-cert-'));
  const out = path.join(dir, 'c');
  const r = spawnSync(binPath(), ['gencert', '--days', '13', '--out', out], {
    encoding: 'utf8',
    timeout: 20000,
  });
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`tandem gencert failed (status ${r.status}): ${r.stderr || r.error}`);
  }
  const fields = {};
  for (const line of r.stdout.trim().split('\n')) {
    const i = line.indexOf(': ');
    if (i > 0) fields[line.slice(0, i)] = line.slice(i + 2);
  }
  if (!/^[0-9a-f]{64}$/.test(fields.sha256_hex || '')) {
    throw new Error(`tandem gencert printed no sha256_hex:\n${r.stdout}`);
  }
  return {
    dir,
    cert: fields.cert,
    key: fields.key,
    sha256Hex: fields.sha256_hex,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Events a page reported, with bounded waits for the next matching one. */
class PageEvents {
  constructor() {
    this.items = [];
    this.log = []; // console lines and page errors, for failure messages
    this.cursor = 0;
    this.waiters = [];
  }

  push(ev) {
    this.items.push(ev);
    for (const w of this.waiters.slice()) w.check();
  }

  /** Every reported event so far (for assertions on the whole sequence). */
  all(type) {
    return type ? this.items.filter((e) => e.type === type) : this.items.slice();
  }

  /**
   * Resolves with the first event from the cursor on (events already consumed by an earlier
   * next() are skipped) for which pred(ev) holds (pred may be an event type), and moves the
   * cursor past it. Rejects after `timeout` ms with the events and console lines so far.
   */
  next(pred, what, timeout = DEFAULT_WAIT_MS) {
    return this._wait(pred, what, timeout, true);
  }

  /**
   * Like next(), but looks at every event reported so far and leaves the cursor alone: for
   * events whose relative order does not matter, such as a publish reply and the
   * publication it caused.
   */
  waitFor(pred, what, timeout = DEFAULT_WAIT_MS) {
    return this._wait(pred, what, timeout, false);
  }

  _wait(pred, what, timeout, consume) {
    const match = typeof pred === 'string' ? (e) => e.type === pred : pred;
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          for (let i = consume ? this.cursor : 0; i < this.items.length; i++) {
            if (match(this.items[i])) {
              if (consume) this.cursor = i + 1;
              done();
              resolve(this.items[i]);
              return;
            }
          }
        },
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${timeout} ms waiting for ${what || pred}\n${this.describe()}`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
      };
      this.waiters.push(waiter);
      waiter.check();
    });
  }

  describe() {
    const evs = this.items.map((e) => `  event ${JSON.stringify(e)}`).join('\n');
    const log = this.log.map((l) => `  ${l}`).join('\n');
    return `--- page events ---\n${evs || '  (none)'}\n--- page console ---\n${log || '  (none)'}`;
  }
}

/**
 * Opens `url` in a new page of `browser` with window.__tdReport wired to a PageEvents.
 * Resolves to {page, events, close()}.
 */
async function openPage(browser, url) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const events = new PageEvents();
  await page.exposeFunction('__tdReport', (ev) => events.push(ev));
  page.on('console', (m) => events.log.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => events.log.push(`pageerror: ${e.message}`));
  page.on('requestfailed', (r) => events.log.push(`requestfailed: ${r.url()} ${r.failure() && r.failure().errorText}`));
  const res = await page.goto(url, { timeout: DEFAULT_WAIT_MS });
  if (!res || res.status() !== 200) {
    await context.close();
    throw new Error(`GET ${url} answered ${res ? res.status() : 'nothing'}`);
  }
  return { page, events, close: () => context.close() };
}

/**
 * The checks every transport must pass with pages/centrifuge-browser.html open on `channel`
 * (`events` from openPage): the page loaded the bundle of `codec` ('json' or 'protobuf', as
 * its ?codec= says) and its client speaks that codec; connected over `transport`; subscribed
 * and recoverable; receives a server API publication; the page's own publication (sent when
 * it sees that one) comes back; after a server `disconnect` with a reconnect code the client
 * reconnects over the same transport and recovers the publications sent while it was away
 * (recovered: true), and the offsets it saw are 1, 2, 3... with no gap and no duplicate.
 */
async function centrifugeScenario(srv, events, { transport, channel, codec = 'json' }) {
  const bundle = await events.waitFor((e) => e.type === 'bundle' || e.type === 'fatal', 'the bundle to load');
  assert.equal(bundle.type, 'bundle', `page failed:\n${events.describe()}`);
  assert.equal(bundle.codec, codec);
  assert.equal(bundle.src, codec === 'protobuf' ? 'centrifuge.protobuf.js' : 'centrifuge.js');
  const first = await events.next('connected', `'connected' over ${transport}`, 15000);
  assert.equal(first.transport, transport, `connected over ${first.transport}, expected ${transport}`);
  assert.equal(first.transportName, transport);
  assert.equal(first.codec, codec, `the client speaks ${first.codec}, expected ${codec}`);
  const sub = await events.waitFor((e) => e.type === 'subscribed', "'subscribed'");
  assert.equal(sub.recoverable, true);
  assert.equal(sub.wasRecovering, false);

  const r1 = await apiResult(srv, 'publish', { channel, data: { from: 'api', n: 1 } });
  const p1 = await events.waitFor((e) => e.type === 'publication' && e.offset === r1.offset, 'API publication');
  assert.deepEqual(p1.data, { from: 'api', n: 1 });

  await events.waitFor((e) => e.type === 'published' || e.type === 'publish_failed', 'the page publish');
  assert.deepEqual(events.all('publish_failed'), []);
  const p2 = await events.waitFor(
    (e) => e.type === 'publication' && e.data && e.data.from === 'page',
    "the page's own publication"
  );
  assert.equal(p2.offset, r1.offset + 1);
  assert.deepEqual(p2.data, { from: 'page', reply_to: r1.offset, text: 'héllo from the browser ✓' });

  // A forced disconnect with a reconnect code (4000-4499); publish while the client is away
  // (the page's reconnect delay is 1.5 s).
  await apiResult(srv, 'disconnect', { client: first.client, disconnect: { code: 4001, reason: 'forced by test' } });
  const away = await events.waitFor((e) => e.type === 'connecting' && e.code === 4001, "'connecting' after 4001");
  assert.equal(away.reason, 'forced by test');
  const missed = [];
  for (let seq = 1; seq <= 3; seq++) {
    missed.push(await apiResult(srv, 'publish', { channel, data: { from: 'api', seq } }));
  }
  const again = await events.waitFor(
    (e) => e.type === 'connected' && e.client !== first.client,
    "'connected' again after the forced disconnect",
    15000
  );
  assert.equal(again.transport, transport);
  assert.equal(again.codec, codec);
  const resub = await events.waitFor((e) => e.type === 'subscribed' && e.wasRecovering, "'subscribed' recovering");
  assert.equal(resub.recovered, true, `not recovered: ${JSON.stringify(resub)}`);
  for (const [i, r] of missed.entries()) {
    const p = await events.waitFor((e) => e.type === 'publication' && e.offset === r.offset, `recovered publication ${i + 1}`);
    assert.deepEqual(p.data, { from: 'api', seq: i + 1 });
    assert.ok(p.t >= again.t, 'a recovered publication arrived before the reconnect');
  }
  // Still live after recovery.
  const r5 = await apiResult(srv, 'publish', { channel, data: { from: 'api', last: true } });
  await events.waitFor((e) => e.type === 'publication' && e.offset === r5.offset, 'a publication after recovery');

  const offsets = events.all('publication').map((e) => e.offset);
  assert.deepEqual(offsets, offsets.map((_, i) => r1.offset + i), `offsets with a gap or duplicate: ${offsets}`);
  assert.equal(offsets.length, 6);
  for (const bad of ['fatal', 'unsubscribed', 'disconnected', 'sub_error']) {
    assert.deepEqual(events.all(bad), [], `page reported ${bad}`);
  }
  return { first, again };
}

module.exports = {
  chromiumPath,
  launchBrowser,
  makeStaticDir,
  gencert,
  openPage,
  PageEvents,
  centrifugeScenario,
};
