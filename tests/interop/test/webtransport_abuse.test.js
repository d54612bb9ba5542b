'use strict';
// WebTransport abuse (issue #7): "a client that opens streams without limit, never reads, or
// sends oversized frames is limited or closed, and other sessions keep working."
//
// One tandem (webtransport.enabled, a `tandem gencert` certificate, tls.tcp false so that the
// healthy client stays on plain WebSocket, client.queue_max_size 64 KiB) serves a healthy
// centrifuge-js subscriber over WebSocket while td_wtabuse (tests/wt/td_wtabuse.c) misbehaves
// over WebTransport. For each kind of abuse the test checks what the server did to the abuser
// (td_wtabuse prints it as one JSON line), that GET /health still answers, that the server's
// RSS stays bounded, and that the healthy subscriber got every publication sent during and
// after the abuse. The per-address QUIC connection limit (100) is checked too.
//
// td_wtabuse is found through TD_WTABUSE_BIN, else next to the tandem binary (both are built
// by the default CMake target, so `make test` has them).

const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { describe, it, before, after } = require('node:test');
const { Centrifuge } = require('centrifuge');

const { startServer, apiResult, binPath } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool, subscribe } = require('../lib/clients');
const { uniqueChannel, sleep } = require('../lib/util');
const { gencert } = require('../lib/browser');

const QUEUE_MAX = 64 * 1024;
const MESSAGE_LIMIT = 65536;
const H3_EXCESSIVE_LOAD = 0x107;
const H3_CONNECT_ERROR = 0x10f;
const H3_NO_ERROR = 0x100;
const WT_APP_ERROR_0 = 0x52e4a40fa8db; // WebTransport application code 0 as an HTTP/3 code

function abuseBin() {
  if (process.env.TD_WTABUSE_BIN) return path.resolve(process.env.TD_WTABUSE_BIN);
  let tandem = binPath();
  try {
    tandem = fs.realpathSync(tandem); // build/tandem is a link to build/dev/tandem
  } catch {
    // startServer reports a missing tandem binary
  }
  return path.join(path.dirname(tandem), 'td_wtabuse');
}

/** Runs td_wtabuse with args; resolves to its JSON report (plus .stderr). */
function runAbuse(args, timeoutMs = 60000) {
  const bin = abuseBin();
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8');
    proc.stderr.setEncoding('utf8');
    proc.stdout.on('data', (c) => {
      out += c;
    });
    proc.stderr.on('data', (c) => {
      err += c;
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin} (set TD_WTABUSE_BIN or build td_wtabuse): ${e.message}`));
    });
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.trim().split('\n').pop() || '';
      if (code !== 0) {
        reject(new Error(`${bin} ${args.join(' ')} exited with ${code} ${signal}\n${out}\n${err}`));
        return;
      }
      try {
        resolve({ ...JSON.parse(line), stderr: err });
      } catch {
        reject(new Error(`${bin} printed no JSON line:\n${out}\n${err}`));
      }
    });
  });
}

function rssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

// An ASan build keeps freed memory in a quarantine of 256 MiB by default, and the streams
// abuse frees a lot: the servers this file starts get a small quarantine so that their RSS
// still says something (startServer passes the environment on).
process.env.ASAN_OPTIONS = [process.env.ASAN_OPTIONS, 'quarantine_size_mb=8'].filter(Boolean).join(':');

/** How much the server's RSS may grow over the whole file (ASan's shadow memory needs more). */
function rssAllowanceKb(bin) {
  let asan = false;
  try {
    asan = fs.readFileSync(bin).includes('AddressSanitizer');
  } catch {
    // no binary: startServer fails first
  }
  return (asan ? 128 : 64) * 1024;
}

describe('WebTransport abuse: limits hold and other sessions keep working', { timeout: 300000 }, () => {
  let cert;
  let srv;
  let pool;
  let healthy;
  let rssStart;
  const healthChannel = uniqueChannel('abuse-health');
  const received = [];
  let published = 0;

  before(async () => {
    cert = gencert();
    srv = await startServer({
      config: testConfig({
        client: { queue_max_size: QUEUE_MAX },
        websocket: { message_size_limit: MESSAGE_LIMIT },
        webtransport: { enabled: true },
        tls: { cert_file: cert.cert, key_file: cert.key, tcp: false },
      }),
    });
    pool = new ClientPool(Centrifuge);
    ({ client: healthy } = await pool.connect(srv.url));
    const { sub } = await subscribe(healthy, healthChannel);
    sub.on('publication', (ctx) => received.push(ctx.data.n));
    rssStart = rssKb(srv.proc.pid);
  });

  after(async () => {
    if (pool) pool.closeAll();
    if (srv) await srv.stop();
    if (cert) cert.remove();
  });

  /** Publishes to the healthy channel every 50 ms until stop() is awaited. */
  function healthPublisher() {
    let running = true;
    const loop = (async () => {
      while (running) {
        published += 1;
        await apiResult(srv, 'publish', { channel: healthChannel, data: { n: published } });
        await sleep(50);
      }
    })();
    return async () => {
      running = false;
      await loop;
    };
  }

  /** Publishes payloadBytes-sized publications to channel as fast as the API answers. */
  function floodPublisher(channel, payloadBytes) {
    let running = true;
    const pad = 'x'.repeat(payloadBytes);
    let i = 0;
    const loop = (async () => {
      while (running) {
        i += 1;
        await apiResult(srv, 'publish', { channel, data: { i, pad } });
        await sleep(5);
      }
    })();
    return async () => {
      running = false;
      await loop;
    };
  }

  /** The server answers, its memory is bounded, and the healthy subscriber got everything. */
  async function assertOthersUnaffected(what) {
    // A few more after the abuse.
    for (let k = 0; k < 3; k++) {
      published += 1;
      await apiResult(srv, 'publish', { channel: healthChannel, data: { n: published } });
    }
    const end = Date.now() + 5000;
    while (received.length < published && Date.now() < end) await sleep(20);
    const want = Array.from({ length: published }, (_, i) => i + 1);
    assert.deepEqual(received, want, `${what}: the healthy WebSocket subscriber missed publications`);
    const res = await fetch(`${srv.httpUrl}/health`, { signal: AbortSignal.timeout(3000) });
    await res.arrayBuffer();
    assert.equal(res.status, 200, `${what}: GET /health`);
    const rss = rssKb(srv.proc.pid);
    assert.ok(
      rss - rssStart < rssAllowanceKb(binPath()),
      `${what}: server RSS grew from ${rssStart} kB to ${rss} kB`
    );
  }

  async function abuse(what, args, { flood = null } = {}) {
    const stopHealth = healthPublisher();
    const stopFlood = flood ? floodPublisher(flood.channel, flood.bytes) : null;
    let report;
    try {
      report = await runAbuse(['--port', String(srv.port), ...args]);
    } finally {
      await stopHealth();
      if (stopFlood) await stopFlood();
    }
    await assertOthersUnaffected(what);
    return report;
  }

  // First, while no other QUIC connection from 127.0.0.1 exists.
  it('serves at most 100 QUIC connections per client address; another address is still served', { timeout: 60000 }, async () => {
    const r = await abuse('conns', ['--mode', 'conns', '--count', '101', '--src', '127.0.0.1', '--other-src', '127.0.0.2', '--timeout', '8']);
    assert.equal(r.served, 100, `sessions served from 127.0.0.1:\n${r.stderr}`);
    assert.equal(r.refused, 1);
    assert.equal(r.handshakes, 100, 'the 101st connection got no handshake at all');
    assert.equal(r.other_served, true, 'a session from 127.0.0.2 must still be served');
  });

  it('a client opening WebTransport streams without limit is held to QUIC stream limits and its extra streams are reset', { timeout: 60000 }, async () => {
    const r = await abuse('streams', ['--mode', 'streams', '--seconds', '3', '--channel', uniqueChannel('abuse-alive')]);
    assert.equal(r.session, true, r.stderr);
    assert.ok(r.bidi_opened > 100, `only ${r.bidi_opened} bidi streams opened`);
    // Every extra bidi stream is reset with WebTransport code 0; none stays open for long.
    assert.ok(r.reset_by_server >= r.bidi_opened - 100, `${r.reset_by_server} of ${r.bidi_opened} reset`);
    assert.deepEqual(r.reset_codes, [WT_APP_ERROR_0]);
    // QUIC's limit holds: 100 uni streams at most (ngtcp2 keeps reset uni streams open, so
    // the abuser gets no more credit), and the opener was blocked by the limits.
    assert.ok(r.uni_opened <= 100, `uni streams: ${r.uni_opened}`);
    assert.ok(r.blocked_opens > 0);
    // The session itself still works and the connection was not torn down.
    assert.equal(r.session_alive, true, `the Centrifugo stream stopped answering:\n${r.stderr}`);
    assert.equal(r.conn_closed, false);
  });

  for (const how of ['flow', 'socket']) {
    it(`a subscriber that never reads (${how}) is disconnected with 3008 once client.queue_max_size is pending`, { timeout: 60000 }, async () => {
      const channel = uniqueChannel(`abuse-noread-${how}`);
      const before = (srv.output().match(/slow client disconnected.*transport=webtransport/g) || []).length;
      const r = await abuse(`noread ${how}`, ['--mode', 'noread', '--how', how, '--channel', channel, '--stall', '5'], {
        flood: { channel, bytes: 2000 },
      });
      assert.equal(r.subscribed, true, r.stderr);
      // The session is closed with 3008 and the connection after it. A client that reads
      // nothing may miss the CLOSE capsule (the congestion window is full of unacknowledged
      // data), never the CONNECTION_CLOSE.
      if (how === 'flow') assert.equal(r.capsule_code, 3008, `no CLOSE capsule with 3008:\n${r.stderr}`);
      else assert.ok(r.capsule_code === 3008 || r.capsule_code === null, `capsule ${r.capsule_code}`);
      assert.equal(r.conn_closed, true);
      assert.equal(r.closed_by, 'server');
      assert.equal(r.close_code, H3_NO_ERROR);
      // The client never took more than its 16 KiB stream window.
      assert.ok(r.bytes_total <= 16384 + 1024, `received ${r.bytes_total} bytes`);
      const after = (srv.output().match(/slow client disconnected.*transport=webtransport/g) || []).length;
      assert.equal(after, before + 1, 'the server logs the slow WebTransport client once');
      if (how === 'flow') assert.ok(r.ended_after_ms < 5000, `closed only after ${r.ended_after_ms} ms`);
    });
  }

  it('oversized HEADERS, Centrifugo lines and capsules are refused without harm to the connection or server', { timeout: 60000 }, async () => {
    const r = await abuse('bigframe', ['--mode', 'bigframe', '--limit', String(MESSAGE_LIMIT)]);
    // (a) HEADERS above 16 KiB: that request stream is reset with H3_EXCESSIVE_LOAD; the
    // connection stays and a CONNECT on it is accepted.
    assert.equal(r.headers.reset, true, r.stderr);
    assert.equal(r.headers.reset_code, H3_EXCESSIVE_LOAD);
    assert.equal(r.headers.then_connect_status, 200);
    assert.equal(r.headers.conn_closed, false);
    // (b) a complete line 200 bytes above websocket.message_size_limit: not served; 3501 in
    // the disconnect push and in the CLOSE capsule; then the connection closes.
    assert.equal(r.message.session, true, r.stderr);
    assert.equal(r.message.served, false, 'the oversized command was served');
    assert.equal(r.message.push_disconnect, 3501);
    assert.equal(r.message.capsule_code, 3501);
    assert.equal(r.message.conn_closed, true);
    assert.equal(r.message.close_code, H3_NO_ERROR);
    // (c) a CLOSE capsule above 4 KiB: the CONNECT stream is reset with H3_EXCESSIVE_LOAD,
    // the session's stream with H3_CONNECT_ERROR, and the connection closes.
    assert.equal(r.capsule.session, true, r.stderr);
    assert.equal(r.capsule.req_reset_code, H3_EXCESSIVE_LOAD);
    assert.equal(r.capsule.wt_reset_code, H3_CONNECT_ERROR);
    assert.equal(r.capsule.conn_closed, true);
    assert.equal(r.capsule.close_code, H3_NO_ERROR);
  });

  it('a line of exactly websocket.message_size_limit is still served', { timeout: 30000 }, async () => {
    const r = await abuse('limit line', ['--mode', 'bigframe', '--limit', String(MESSAGE_LIMIT), '--over', '0']);
    assert.equal(r.message.served, true, r.stderr);
    assert.equal(r.message.conn_closed, false);
  });
});
