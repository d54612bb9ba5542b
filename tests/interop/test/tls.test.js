'use strict';
// TLS on TCP (docs/tls.md): with tls.cert_file and tls.key_file set (a certificate from
// `tandem gencert`), the TCP port speaks TLS only: centrifuge-js over wss://, https GET
// /health and /metrics, HTTP-streaming over https, the server API (including pipelined
// requests held while an answer waits for the durable store), large publications that need
// several TLS records and partial writes. A plaintext request gets a plain 400 and the
// connection is closed; junk that starts like TLS fails the handshake. tls.tcp = false keeps
// TCP plaintext with the files set, and one file without the other refuses to start.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { describe, it, before, after, afterEach } = require('node:test');
const { Centrifuge } = require('centrifuge');
const WebSocket = require('ws');

const { startServer, apiResult, binPath, request } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool, subscribe, webSocketWith } = require('../lib/clients');
const { collect, uniqueChannel } = require('../lib/util');

const TEST_TIMEOUT = 20000;

/** Sends `data` on a fresh TCP connection and resolves to everything read until the server
 * closes it (or rejects after `timeout` ms). */
function rawExchange(port, data, timeout = 5000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`timed out after ${timeout} ms: the server did not close the connection`));
    }, timeout);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {}); // a reset also ends the exchange
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** Reads lines of an http_stream response (a Node IncomingMessage) until pred(text) holds. */
function readUntil(res, pred, timeout = 5000) {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      res.off('data', onData);
      reject(new Error(`timed out reading the stream; got ${JSON.stringify(text)}`));
    }, timeout);
    function onData(chunk) {
      text += chunk;
      if (pred(text)) {
        clearTimeout(timer);
        res.off('data', onData);
        resolve(text);
      }
    }
    res.setEncoding('utf8');
    res.on('data', onData);
  });
}

function metric(text, name) {
  const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

describe('TLS on TCP (https, wss)', { timeout: 120000 }, () => {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-tls-'));
  const certFile = path.join(certDir, 'cert.pem');
  const keyFile = path.join(certDir, 'key.pem');
  let srv;
  const pool = new ClientPool(Centrifuge);

  before(async () => {
    const r = spawnSync(binPath(), ['gencert', '--days', '13', '--out', certDir], {
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(r.status, 0, r.stderr);
    srv = await startServer({
      config: testConfig({
        tls: { cert_file: certFile, key_file: keyFile },
        http_stream: { enabled: true },
      }),
      args: ['--log-level', 'debug'],
    });
  });
  afterEach(() => pool.closeAll());
  after(async () => {
    pool.closeAll();
    if (srv) await srv.stop();
    fs.rmSync(certDir, { recursive: true, force: true });
  });

  it('logs tls=on and serves /health over https', { timeout: TEST_TIMEOUT }, async () => {
    assert.match(srv.output(), /msg="listening".* tls=on/);
    assert.match(srv.url, /^wss:\/\//);
    const r = await request(srv, { path: '/health' });
    assert.equal(r.status, 200);
    assert.equal(r.text, '{}');
    // Without the CA the certificate is not trusted: TLS really is in the way.
    await assert.rejects(
      new Promise((resolve, reject) => {
        https.get(`${srv.httpUrl}/health`, { agent: false }, resolve).on('error', reject);
      }),
      /self[- ]signed|unable to verify|certificate/i
    );
  });

  it('connects centrifuge-js over wss, subscribes, publishes and receives', { timeout: TEST_TIMEOUT }, async () => {
    const websocket = webSocketWith({ ca: srv.ca });
    const { client, ctx } = await pool.connect(srv.url, { websocket });
    assert.equal(ctx.transport, 'websocket');
    const channel = uniqueChannel('tls');
    const { sub } = await subscribe(client, channel);
    const pubs = collect(sub, 'publication');
    await sub.publish({ from: 'client' });
    await apiResult(srv, 'publish', { channel, data: { from: 'api' } });
    const got = await pubs.next(2);
    assert.deepEqual(
      got.map((p) => p.data),
      [{ from: 'client' }, { from: 'api' }]
    );
    // A second client sees the first one's publication (fan-out over two TLS sessions).
    const { client: other } = await pool.connect(srv.url, { websocket });
    const { sub: otherSub } = await subscribe(other, channel);
    const otherPubs = collect(otherSub, 'publication');
    await sub.publish({ n: 3 });
    assert.deepEqual((await otherPubs.next(1))[0].data, { n: 3 });
  });

  it('delivers publications larger than a TLS record and many small ones in order', { timeout: TEST_TIMEOUT }, async () => {
    const { client } = await pool.connect(srv.url, { websocket: webSocketWith({ ca: srv.ca }) });
    const channel = uniqueChannel('tls-big');
    const { sub } = await subscribe(client, channel);
    const pubs = collect(sub, 'publication');
    const big = 'x'.repeat(600 * 1024); // ~37 records, more than one flush chunk
    await apiResult(srv, 'publish', { channel, data: { big } });
    // 200 publish commands sent at once: many frames per TLS record in, many replies out.
    const n = 200;
    await Promise.all(Array.from({ length: n }, (_, i) => sub.publish({ i })));
    const got = await pubs.next(n + 1, 10000);
    assert.equal(got[0].data.big, big);
    assert.deepEqual(
      got.slice(1).map((p) => p.data.i),
      Array.from({ length: n }, (_, i) => i)
    );
  });

  it('closes a wss client that stops reading with 3008 (queue_max_size counts TLS output)', { timeout: TEST_TIMEOUT }, async () => {
    const channel = uniqueChannel('tls-slow');
    const ws = new WebSocket(srv.url, 'centrifuge-json', { ca: srv.ca });
    const replies = [];
    ws.on('message', (data) => {
      for (const line of data.toString().split('\n').filter(Boolean)) replies.push(JSON.parse(line));
    });
    const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send(`{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"${channel}"}}`);
    const deadline = Date.now() + 5000;
    while (!replies.some((r) => r.id === 2) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(replies.some((r) => r.id === 2 && r.subscribe), JSON.stringify(replies));
    // Stop reading: the kernel buffers fill, the server keeps ciphertext and queued frames.
    ws._socket.pause();
    const s = 'y'.repeat(200 * 1024);
    for (let i = 0; i < 40; i++) await apiResult(srv, 'publish', { channel, data: { i, s } });
    ws._socket.resume();
    assert.equal(await closed, 3008);
  });

  it('answers pipelined API requests in order over one TLS connection', { timeout: TEST_TIMEOUT }, async () => {
    // Durable history (the base config) makes each publish wait for a commit: the server holds
    // the rest of the decrypted input meanwhile and must not lose it.
    const channel = uniqueChannel('tls-pipe');
    const one = (i, last) => {
      const body = JSON.stringify({ channel, data: { i } });
      return (
        `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: test-api-key\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `${last ? 'Connection: close\r\n' : ''}\r\n${body}`
      );
    };
    const text = await new Promise((resolve, reject) => {
      const sock = tls.connect({ host: '127.0.0.1', port: srv.port, ca: srv.ca }, () => {
        sock.write(one(0) + one(1) + one(2, true));
      });
      let out = '';
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`timed out; got ${JSON.stringify(out)}`));
      }, 5000);
      sock.setEncoding('utf8');
      sock.on('data', (c) => {
        out += c;
      });
      sock.on('error', reject);
      sock.on('close', () => {
        clearTimeout(timer);
        resolve(out);
      });
    });
    const statuses = text.match(/HTTP\/1\.1 \d+/g);
    assert.deepEqual(statuses, ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 200'], text);
    const hist = await apiResult(srv, 'history', { channel, limit: 10 });
    assert.deepEqual(
      hist.publications.map((p) => p.data.i),
      [0, 1, 2]
    );
  });

  it('streams over https (http_stream)', { timeout: TEST_TIMEOUT }, async () => {
    const res = await new Promise((resolve, reject) => {
      const req = https.request(
        `${srv.httpUrl}/connection/http_stream`,
        { method: 'POST', ca: srv.ca, agent: false, headers: { 'Content-Type': 'application/json' } },
        resolve
      );
      req.on('error', reject);
      req.end('{"connect":{"name":"tls"},"id":1}');
    });
    try {
      assert.equal(res.statusCode, 200);
      let text = await readUntil(res, (t) => t.includes('\n'));
      const reply = JSON.parse(text.split('\n')[0]);
      assert.equal(reply.id, 1);
      const channel = uniqueChannel('tls-stream');
      const post = await request(srv, {
        method: 'POST',
        path: '/emulation',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          session: reply.connect.session,
          node: reply.connect.node,
          data: `{"subscribe":{"channel":"${channel}"},"id":2}`,
        }),
      });
      assert.equal(post.status, 204);
      await readUntil(res, (t) => t.includes('"id":2'));
      await apiResult(srv, 'publish', { channel, data: { over: 'https' } });
      text = await readUntil(res, (t) => t.includes('"over":"https"'));
      assert.match(text, /"pub":\{"data":\{"over":"https"\}/);
    } finally {
      res.destroy();
    }
  });

  it('refuses plaintext HTTP with a plain 400 and closes; junk fails the handshake', { timeout: TEST_TIMEOUT }, async () => {
    const before = await request(srv, { path: '/metrics' });
    const errors0 = metric(before.text, 'tandem_tls_handshake_errors_total');
    assert.ok(metric(before.text, 'tandem_tls_handshakes_total') > 0, before.text);
    assert.equal(typeof errors0, 'number');

    const plain = (await rawExchange(srv.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n')).toString('latin1');
    assert.match(plain, /^HTTP\/1\.1 400 /);
    assert.match(plain, /speaks TLS/);

    // A TLS handshake record carrying garbage instead of a ClientHello: an alert (or nothing)
    // comes back, then the connection is closed.
    const junk = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef]);
    const answer = await rawExchange(srv.port, junk);
    assert.ok(answer.length === 0 || answer[0] === 0x15, `expected an alert, got ${answer.toString('hex')}`);

    const after = await request(srv, { path: '/metrics' });
    assert.equal(metric(after.text, 'tandem_tls_handshake_errors_total'), errors0 + 2, after.text);
  });
});

describe('TLS files with tls.tcp = false, and half a TLS setup', { timeout: 60000 }, () => {
  const certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-tls-'));
  const certFile = path.join(certDir, 'cert.pem');
  const keyFile = path.join(certDir, 'key.pem');

  before(() => {
    const r = spawnSync(binPath(), ['gencert', '--out', certDir], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => fs.rmSync(certDir, { recursive: true, force: true }));

  it('keeps TCP plaintext when tls.tcp is false', { timeout: TEST_TIMEOUT }, async () => {
    const srv = await startServer({
      config: testConfig({ tls: { cert_file: certFile, key_file: keyFile, tcp: false } }),
    });
    try {
      assert.equal(srv.ca, null);
      assert.match(srv.output(), /msg="listening".* tls=quic-only/);
      const r = await request(srv, { path: '/health' });
      assert.equal(r.status, 200);
      const m = await request(srv, { path: '/metrics' });
      assert.equal(metric(m.text, 'tandem_tls_handshakes_total'), null);
      const pool = new ClientPool(Centrifuge);
      try {
        const { ctx } = await pool.connect(srv.url);
        assert.equal(ctx.transport, 'websocket');
      } finally {
        pool.closeAll();
      }
    } finally {
      await srv.stop();
    }
  });

  it('refuses to start with only one of the two files', { timeout: TEST_TIMEOUT }, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-tls-half-'));
    try {
      for (const [tlsKeys, message] of [
        [{ cert_file: certFile }, /tls\.cert_file is set but tls\.key_file is not/],
        [{ key_file: keyFile, tcp: false }, /tls\.key_file is set but tls\.cert_file is not/],
        [{ cert_file: certFile, key_file: path.join(dir, 'missing.pem') }, /cannot serve TLS on TCP/],
      ]) {
        const cfg = path.join(dir, 'config.json');
        fs.writeFileSync(cfg, JSON.stringify(testConfig({ tls: tlsKeys })));
        const r = spawnSync(
          binPath(),
          ['--config', cfg, '--port', '0', '--data-dir', path.join(dir, 'data')],
          { encoding: 'utf8', timeout: 10000 }
        );
        assert.equal(r.status, 1, `${JSON.stringify(tlsKeys)}: ${r.stderr}`);
        assert.match(r.stderr, message);
        assert.doesNotMatch(r.stderr, /msg="listening"/);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
