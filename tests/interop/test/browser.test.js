'use strict';
// centrifuge-js's browser bundle in headless Chromium (Debian `chromium`, driven by
// playwright-core), on a page served by tandem itself (http_server.static_dir): the
// transport fallback chain the client walks when WebTransport is not served (issue #7).
//
// Each case starts its own tandem with the pages and the bundle in a temp static dir, opens
// pages/centrifuge-browser.html with the transports under test, and runs the shared scenario
// (lib/browser.js centrifugeScenario): connect, subscribe with recovery, receive an API
// publication, publish, and recover what was published during a forced disconnect.
// WebTransport itself is in webtransport_browser.test.js.
//
// Chromium must be installed (scripts/setup.sh does); a missing browser fails the suite.

const assert = require('node:assert/strict');
const net = require('node:net');
const { describe, it, before, after } = require('node:test');

const { startServer } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { uniqueChannel, httpGet } = require('../lib/util');
const { launchBrowser, makeStaticDir, gencert, openPage, centrifugeScenario } = require('../lib/browser');

const TEST_TIMEOUT = 60000;

/** Sends one raw HTTP/1.1 request (paths fetch() would normalise) and returns the response. */
function rawRequest(port, head) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no response to ${JSON.stringify(head)}; got ${JSON.stringify(text)}`));
    }, 5000);
    sock.setEncoding('latin1');
    sock.on('data', (d) => (text += d));
    sock.on('error', reject);
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(text);
    });
    sock.write(head);
  });
}

describe('static files from http_server.static_dir', { timeout: 60000 }, () => {
  let srv;
  let statics;
  before(async () => {
    statics = makeStaticDir();
    srv = await startServer({ config: testConfig({ http_server: { static_dir: statics.dir } }) });
  });
  after(async () => {
    if (srv) await srv.stop();
    if (statics) statics.remove();
  });

  it('serves pages and scripts with their content type', async () => {
    const res = await fetch(`${srv.httpUrl}/static/centrifuge-browser.html`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-cache');
    assert.match(await res.text(), /<script src="centrifuge-browser.js"><\/script>/);
    // Both bundles (the page loads one of them, by its ?codec=).
    for (const bundle of ['centrifuge.js', 'centrifuge.protobuf.js']) {
      const js = await fetch(`${srv.httpUrl}/static/${bundle}`);
      assert.equal(js.status, 200, bundle);
      assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
      assert.match(await js.text(), /globalThis\.Centrifuge=/);
    }
    const head = await fetch(`${srv.httpUrl}/static/centrifuge.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 10000);
  });

  it('answers 404, 403 and 405 and never leaves the directory', async () => {
    assert.equal((await httpGet(srv, '/static/missing.js')).status, 404);
    const post = await fetch(`${srv.httpUrl}/static/centrifuge.js`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.text();
    for (const path of ['/static/../config.json', '/static/%2e%2e/config.json', '/static/.hidden', '/static//etc/passwd', '/static/a%00.js']) {
      const text = await rawRequest(srv.port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.match(text, /^HTTP\/1\.1 403 /, path);
    }
    // The connection stays usable after a refusal (keep-alive).
    const two = await rawRequest(
      srv.port,
      'GET /static/.x HTTP/1.1\r\nHost: x\r\n\r\nGET /static/missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
    );
    assert.match(two, /^HTTP\/1\.1 403 [^]*HTTP\/1\.1 404 /);
  });

  it('is off unless static_dir is set', async () => {
    const plain = await startServer({ config: testConfig() });
    try {
      assert.equal((await httpGet(plain, '/static/centrifuge-browser.html')).status, 404);
    } finally {
      await plain.stop();
    }
  });
});

describe('centrifuge-js in headless Chromium: transport fallback without WebTransport', { timeout: 240000 }, () => {
  let browser;
  let statics;
  let cert;
  before(async () => {
    statics = makeStaticDir();
    cert = gencert();
    browser = await launchBrowser();
  });
  after(async () => {
    if (browser) await browser.close();
    if (statics) statics.remove();
    if (cert) cert.remove();
  });

  // The same page and parameters as the WebTransport case, with webtransport disabled: the
  // WebTransport handshake fails and the client must fall back. `codec` (default json) picks
  // the bundle; with Protobuf the fallback WebSocket uses the centrifuge-protobuf subprotocol.
  const cases = [
    {
      name: 'falls back from WebTransport to WebSocket',
      transports: 'webtransport,websocket,http_stream,sse',
      blockWs: false,
      expect: 'websocket',
    },
    {
      name: 'falls back from WebTransport to WebSocket with Protobuf',
      transports: 'webtransport,websocket,http_stream,sse',
      blockWs: false,
      expect: 'websocket',
      codec: 'protobuf',
    },
    {
      name: 'falls back to HTTP-streaming when WebSocket is blocked too',
      transports: 'webtransport,websocket,http_stream,sse',
      blockWs: true,
      expect: 'http_stream',
    },
    {
      name: 'falls back to SSE when WebSocket is blocked and HTTP-streaming is not offered',
      transports: 'webtransport,websocket,sse',
      blockWs: true,
      expect: 'sse',
    },
  ];

  for (const c of cases) {
    it(`${c.name}, then subscribes, receives, publishes and recovers`, { timeout: TEST_TIMEOUT }, async () => {
      const srv = await startServer({
        config: testConfig({
          http_server: { static_dir: statics.dir },
          http_stream: { enabled: true },
          sse: { enabled: true },
          webtransport: { enabled: false },
        }),
      });
      let page;
      try {
        const channel = uniqueChannel('browser');
        const q = new URLSearchParams({
          transports: c.transports,
          wt: `https://127.0.0.1:${srv.port}/connection/webtransport`,
          hash: cert.sha256Hex,
          channel,
          codec: c.codec || 'json',
        });
        // A WebSocket endpoint that answers 404 makes the WebSocket transport fail.
        if (c.blockWs) q.set('ws', `ws://127.0.0.1:${srv.port}/connection/blocked`);
        page = await openPage(browser, `${srv.httpUrl}/static/centrifuge-browser.html?${q}`);
        await centrifugeScenario(srv, page.events, { transport: c.expect, channel, codec: c.codec || 'json' });
        // The transports before the one used were really tried, and failed.
        const failed = new Set(page.events.all('error').filter((e) => e.kind === 'transport').map((e) => e.transport));
        assert.ok(failed.has('webtransport'), `no failed WebTransport attempt\n${page.events.describe()}`);
        assert.equal(failed.has('websocket'), c.blockWs);
        assert.ok(!failed.has(c.expect));
      } finally {
        if (page) await page.close();
        await srv.stop();
      }
    });
  }
});
