'use strict';
// WebTransport (issue #7) from headless Chromium to tandem, with a certificate from
// `tandem gencert` pinned through serverCertificateHashes (lib/browser.js, pages/).
//
//  - centrifuge-js's browser bundles (JSON, and Protobuf: cf_protocol=protobuf) with
//    WebTransport first in their transport list must connect over WebTransport and pass the
//    shared scenario (connect, subscribe, receive an API publication, publish, recover after
//    a forced disconnect);
//  - a raw WebTransport session (pages/wt-raw.html) subscribed to a namespace with
//    "datagrams": true must receive publications as datagrams.
//
// The WebTransport endpoint is https://127.0.0.1:<port>/connection/webtransport on UDP, on
// the HTTP port unless the server logs another one. To see why a handshake fails, run with
// TANDEM_NETLOG_DIR=/some/dir and read the NetLog (docs/webtransport.md).
// The fallback without WebTransport is tested in browser.test.js.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');

const { startServer, apiResult } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { uniqueChannel, httpGet } = require('../lib/util');
const { launchBrowser, makeStaticDir, gencert, openPage, centrifugeScenario } = require('../lib/browser');

const TEST_TIMEOUT = 60000;

/** The UDP port tandem serves WebTransport on: a logged udp/quic/webtransport port, else the HTTP port. */
function wtPort(srv) {
  for (const line of srv.output().split('\n')) {
    if (!/udp|quic|webtransport/i.test(line)) continue;
    const m = /\bport=(\d+)/.exec(line);
    if (m && Number(m[1]) !== 0) return Number(m[1]);
  }
  return srv.port;
}

describe('WebTransport from headless Chromium to tandem', { timeout: 180000 }, () => {
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

  const wtConfig = (over = {}) =>
    testConfig({
      http_server: { static_dir: statics.dir },
      http_stream: { enabled: true },
      sse: { enabled: true },
      webtransport: { enabled: true },
      tls: { cert_file: cert.cert, key_file: cert.key, tcp: false }, // the page stays on http://127.0.0.1 (a secure context)
      ...over,
    });

  // The same scenario with each codec: JSON lines, and Protobuf (the protobuf bundle adds
  // ?cf_protocol=protobuf to the WebTransport URL and tandem must frame varint-delimited
  // Protobuf on the stream; a JSON reply would make the client fail to decode).
  for (const codec of ['json', 'protobuf']) {
    it(`centrifuge-js (${codec}) connects over WebTransport first, subscribes, receives, publishes and recovers`, { timeout: TEST_TIMEOUT }, async () => {
      const srv = await startServer({ config: wtConfig() });
      let page;
      try {
        const channel = uniqueChannel('wt');
        const q = new URLSearchParams({
          transports: 'webtransport,websocket,http_stream,sse',
          wt: `https://127.0.0.1:${wtPort(srv)}/connection/webtransport`,
          hash: cert.sha256Hex,
          channel,
          codec,
        });
        page = await openPage(browser, `${srv.httpUrl}/static/centrifuge-browser.html?${q}`);
        await centrifugeScenario(srv, page.events, { transport: 'webtransport', channel, codec });
        // WebTransport worked at the first attempt and again after the forced disconnect.
        const failures = page.events.all('error').filter((e) => e.kind === 'transport');
        assert.deepEqual(failures, [], `transport failures:\n${page.events.describe()}`);
        // The client asked for its codec in the CONNECT's URL (tandem picks the codec from it),
        // for the first session and the one after the forced disconnect.
        const urls = page.events.all('wt_open').map((e) => new URL(e.url));
        assert.ok(urls.length >= 2, `WebTransport sessions opened: ${urls.length}`);
        for (const u of urls) {
          assert.equal(u.pathname, '/connection/webtransport');
          assert.equal(u.searchParams.get('cf_protocol'), codec === 'protobuf' ? 'protobuf' : null, u.href);
        }
        // Both sessions were WebTransport sessions on tandem's side, and none was refused.
        const metrics = (await httpGet(srv, '/metrics')).text;
        const sessions = /^tandem_webtransport_sessions_total (\d+)$/m.exec(metrics);
        assert.ok(sessions && Number(sessions[1]) >= 2, `WebTransport sessions: ${sessions && sessions[0]}`);
        assert.match(metrics, /^tandem_webtransport_refused_total 0$/m);
      } finally {
        if (page) await page.close();
        await srv.stop();
      }
    });
  }

  it('a raw WebTransport session receives publications of a "datagrams" namespace as datagrams', { timeout: TEST_TIMEOUT }, async () => {
    const srv = await startServer({
      config: wtConfig({
        channel: {
          without_namespace: { history_size: 10, history_ttl: '300s' },
          namespaces: [{ name: 'dgram', datagrams: true, history_size: 10, history_ttl: '300s' }],
        },
      }),
    });
    let page;
    try {
      const channel = uniqueChannel('dgram:raw');
      const q = new URLSearchParams({
        wt: `https://127.0.0.1:${wtPort(srv)}/connection/webtransport`,
        hash: cert.sha256Hex,
        channel,
      });
      page = await openPage(browser, `${srv.httpUrl}/static/wt-raw.html?${q}`);
      const { events } = page;
      const first = await events.waitFor((e) => e.type === 'ready' || e.type === 'fatal', 'the session to open', 15000);
      assert.equal(first.type, 'ready', `WebTransport session failed:\n${events.describe()}`);
      assert.ok(first.maxDatagramSize > 0);

      const connect = await events.waitFor((e) => e.type === 'reply' && e.json && e.json.id === 1, 'connect reply');
      assert.ok(connect.json.connect && connect.json.connect.client, `connect failed: ${connect.line}`);
      const sub = await events.waitFor((e) => e.type === 'reply' && e.json && e.json.id === 2, 'subscribe reply');
      assert.ok(sub.json.subscribe, `subscribe failed: ${sub.line}`);

      // Datagrams may be lost: publish until one arrives (at most 10 times).
      const marker = `dgram-${process.pid}-${Date.now().toString(36)}`;
      let got = null;
      for (let i = 0; i < 10 && !got; i++) {
        await apiResult(srv, 'publish', { channel, data: { marker, i } });
        const carries = (e) => e.type === 'datagram' && e.text.includes(marker);
        got = await events.waitFor(carries, 'a datagram', 300).catch(() => null);
      }
      assert.ok(got, `no datagram carrying ${marker}:\n${events.describe()}`);
      assert.equal(Buffer.from(got.b64, 'base64').length, got.len);
      assert.deepEqual(events.all('fatal'), []);
    } finally {
      if (page) await page.close();
      await srv.stop();
    }
  });
});
