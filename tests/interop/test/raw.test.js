'use strict';
// Protocol abuse over raw TCP and raw WebSocket, heartbeat enforcement, and the server HTTP
// API. After every abusive connection a well-behaved centrifuge-js client on the same server
// must still be connected and still receive publications, and /health must answer 200.

const assert = require('node:assert/strict');
const net = require('node:net');
const { describe, it, before, after } = require('node:test');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { startServer, apiCall, apiResult } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool, subscribe } = require('../lib/clients');
const { waitFor, collect, uniqueChannel, httpGet, withTimeout } = require('../lib/util');

const TEST_TIMEOUT = 15000;

/**
 * Sends `request` on a plain TCP connection and resolves with the response head once a
 * full head arrived or the server closed the connection: {status, head}.
 */
function rawHttp(srv, request, timeout = 3000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, '127.0.0.1');
    let data = '';
    let done = false;
    const finish = (err) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) return reject(err);
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      if (!m) return reject(new Error(`no HTTP status line in response: ${JSON.stringify(data)}`));
      resolve({ status: Number(m[1]), head: data.split('\r\n\r\n')[0] });
    };
    const timer = setTimeout(
      () => finish(new Error(`timed out after ${timeout} ms waiting for an HTTP response; got ${JSON.stringify(data)}`)),
      timeout
    );
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write(request));
    sock.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n\r\n')) finish();
    });
    sock.on('end', () => finish());
    sock.on('close', () => finish());
    sock.on('error', (e) => (data ? finish() : finish(e)));
  });
}

/**
 * Opens a raw WebSocket (JSON protocol unless `protocols` says otherwise). Resolves, once
 * open, to {ws, messages, closed}: `messages` collects parsed JSON replies (one per line),
 * `closed` resolves with {code, reason} when the socket closes.
 */
async function rawWs(srv, protocols) {
  const ws = new WebSocket(srv.url, protocols);
  const messages = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    for (const line of data.toString('utf8').split('\n')) {
      if (line === '') continue;
      try {
        messages.push(JSON.parse(line));
      } catch {
        messages.push({ unparsable: line });
      }
    }
    for (let i = waiters.length - 1; i >= 0; i--) {
      const hit = messages.find(waiters[i].match);
      if (hit) {
        waiters[i].resolve(hit);
        waiters.splice(i, 1);
      }
    }
  });
  ws.on('error', () => {});
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
  });
  await withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }),
    3000,
    `raw WebSocket open ${srv.url}`
  );
  return {
    ws,
    messages,
    closed,
    /** Resolves with the first message (seen or future) matching `match`. */
    next(match, timeout = 3000, what = 'a matching message') {
      const hit = messages.find(match);
      if (hit) return Promise.resolve(hit);
      return withTimeout(new Promise((resolve) => waiters.push({ match, resolve })), timeout, what);
    },
    closedWithin(timeout = 3000) {
      return withTimeout(closed, timeout, 'server closing the WebSocket');
    },
  };
}

/** Sends a JSON connect command on a raw socket and returns the connect result. */
async function rawConnect(raw) {
  raw.ws.send(JSON.stringify({ id: 1, connect: { name: 'raw-test' } }));
  const reply = await raw.next((m) => m.id === 1, 3000, 'connect reply');
  assert.ok(reply.connect, `connect failed: ${JSON.stringify(reply)}`);
  assert.equal(typeof reply.connect.client, 'string');
  return reply.connect;
}

describe('tandem raw protocol and HTTP API', { timeout: 90000 }, () => {
  let srv;
  const pool = new ClientPool(Centrifuge);
  let bystander; // {client, ctx, sub, channel}: a client that must survive every abuse below
  const rawSockets = [];

  async function openRaw(protocols) {
    const raw = await rawWs(srv, protocols);
    rawSockets.push(raw.ws);
    return raw;
  }

  /** The bystander is still connected and receives publications, and /health answers 200. */
  async function assertServerHealthy() {
    assert.equal(bystander.client.state, 'connected', 'bystander client state');
    assert.equal(bystander.sub.state, 'subscribed', 'bystander subscription state');
    const marker = { probe: uniqueChannel('probe') };
    const got = waitFor(bystander.sub, 'publication', {
      filter: (p) => p.data && p.data.probe === marker.probe,
      what: 'publication on the bystander',
    });
    await apiResult(srv, 'publish', { channel: bystander.channel, data: marker });
    await got;
    const health = await httpGet(srv, '/health');
    assert.equal(health.status, 200, '/health status');
  }

  before(async () => {
    srv = await startServer({ config: testConfig() });
    const { client, ctx } = await pool.connect(srv.url);
    const channel = uniqueChannel('bystander');
    const { sub } = await subscribe(client, channel);
    bystander = { client, ctx, sub, channel };
    bystander.disconnects = collect(client, 'disconnected');
    bystander.reconnects = collect(client, 'connecting');
  });

  after(async () => {
    for (const ws of rawSockets) ws.terminate();
    pool.closeAll();
    if (srv) await srv.stop();
  });

  describe('HTTP handshake', () => {
    it('answers 400 to an upgrade without Sec-WebSocket-Key/Version', { timeout: TEST_TIMEOUT }, async () => {
      const res = await rawHttp(
        srv,
        'GET /connection/websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
      );
      assert.equal(res.status, 400, res.head);
      await assertServerHealthy();
    });

    it('answers 400 to garbage instead of a request line', { timeout: TEST_TIMEOUT }, async () => {
      const res = await rawHttp(srv, 'HELLO\r\n\r\n');
      assert.equal(res.status, 400, res.head);
      await assertServerHealthy();
    });
  });

  describe('WebSocket frames and commands', () => {
    it('closes with 1009 on a message above the size limit', { timeout: TEST_TIMEOUT }, async () => {
      const raw = await openRaw();
      await rawConnect(raw);
      raw.ws.send('x'.repeat(70000));
      const { code } = await raw.closedWithin();
      assert.equal(code, 1009);
      await assertServerHealthy();
    });

    it('closes with 1007 on a text frame that is not UTF-8', { timeout: TEST_TIMEOUT }, async () => {
      const raw = await openRaw();
      await rawConnect(raw);
      raw.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
      const { code } = await raw.closedWithin();
      assert.equal(code, 1007);
      await assertServerHealthy();
    });

    it('closes with 3501 on a command that is not JSON', { timeout: TEST_TIMEOUT }, async () => {
      const raw = await openRaw();
      await rawConnect(raw);
      raw.ws.send('not json');
      const { code } = await raw.closedWithin();
      assert.equal(code, 3501);
      await assertServerHealthy();
    });

    it('closes with 3501 on a command before connect', { timeout: TEST_TIMEOUT }, async () => {
      const raw = await openRaw();
      raw.ws.send(JSON.stringify({ id: 1, subscribe: { channel: 'a' } }));
      const { code } = await raw.closedWithin();
      assert.equal(code, 3501);
      const replies = raw.messages.filter((m) => m.id === 1 && m.subscribe);
      assert.deepEqual(replies, [], 'no subscribe result before connect');
      await assertServerHealthy();
    });

    it('the bystander never lost its connection', () => {
      assert.deepEqual(bystander.disconnects.items, []);
      assert.deepEqual(bystander.reconnects.items, []);
    });
  });

  describe('server HTTP API', () => {
    it('rejects a missing or wrong API key with 401', { timeout: TEST_TIMEOUT }, async () => {
      assert.equal((await apiCall(srv, 'info', {}, null)).status, 401, 'no key');
      assert.equal((await apiCall(srv, 'info', {}, 'wrong-key')).status, 401, 'wrong key');
    });

    it('rejects a malformed body with 400 and an unknown method with 404', { timeout: TEST_TIMEOUT }, async () => {
      assert.equal((await apiCall(srv, 'publish', '{"channel": "a", "data":')).status, 400, 'bad JSON');
      assert.equal((await apiCall(srv, 'no_such_method', {})).status, 404, 'unknown method');
    });

    it('info lists the nodes', { timeout: TEST_TIMEOUT }, async () => {
      const result = await apiResult(srv, 'info', {});
      assert.ok(Array.isArray(result.nodes), `info result: ${JSON.stringify(result)}`);
      assert.ok(result.nodes.length >= 1, 'at least one node');
    });

    it('channels lists a subscribed channel', { timeout: TEST_TIMEOUT }, async () => {
      const result = await apiResult(srv, 'channels', {});
      assert.ok(result.channels && typeof result.channels === 'object', JSON.stringify(result));
      assert.ok(
        Object.prototype.hasOwnProperty.call(result.channels, bystander.channel),
        `channels ${JSON.stringify(result.channels)} lacks ${bystander.channel}`
      );
      assert.ok(result.channels[bystander.channel].num_clients >= 1, 'num_clients');
    });

    it('presence and presence_stats report the subscriber', { timeout: TEST_TIMEOUT }, async () => {
      const stats = await apiResult(srv, 'presence_stats', { channel: bystander.channel });
      assert.ok(stats.num_clients >= 1, `presence_stats ${JSON.stringify(stats)}`);
      assert.ok(stats.num_users >= 1, `presence_stats ${JSON.stringify(stats)}`);
      const presence = await apiResult(srv, 'presence', { channel: bystander.channel });
      assert.ok(presence.presence && presence.presence[bystander.ctx.client], JSON.stringify(presence));
      assert.equal(presence.presence[bystander.ctx.client].client, bystander.ctx.client);
    });

    it('history honours limit and history_remove empties it', { timeout: TEST_TIMEOUT }, async () => {
      const channel = uniqueChannel('apihistory');
      for (let i = 1; i <= 3; i++) await apiResult(srv, 'publish', { channel, data: { i } });

      const h = await apiResult(srv, 'history', { channel, limit: 2 });
      assert.equal(h.publications.length, 2, JSON.stringify(h));
      assert.deepEqual(h.publications.map((p) => p.offset), [1, 2]);
      assert.deepEqual(h.publications.map((p) => p.data), [{ i: 1 }, { i: 2 }]);
      assert.equal(h.offset, 3);
      assert.equal(typeof h.epoch, 'string');
      assert.ok(h.epoch.length > 0, 'epoch is empty');

      const none = await apiResult(srv, 'history', { channel });
      assert.equal((none.publications || []).length, 0, 'no limit means no publications');
      assert.equal(none.offset, 3);

      await apiResult(srv, 'history_remove', { channel });
      const after = await apiResult(srv, 'history', { channel, limit: 10 });
      assert.equal((after.publications || []).length, 0, `after history_remove: ${JSON.stringify(after)}`);
    });

    it('broadcast publishes into several channels', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await pool.connect(srv.url);
      const a = uniqueChannel('bcast-a');
      const b = uniqueChannel('bcast-b');
      const { sub: subA } = await subscribe(client, a);
      const { sub: subB } = await subscribe(client, b);
      const gotA = waitFor(subA, 'publication', { what: 'broadcast on channel a' });
      const gotB = waitFor(subB, 'publication', { what: 'broadcast on channel b' });
      const data = { broadcast: true };
      const result = await apiResult(srv, 'broadcast', { channels: [a, b], data });
      assert.ok(Array.isArray(result.responses), JSON.stringify(result));
      assert.equal(result.responses.length, 2);
      for (const r of result.responses) {
        assert.ok(r.result && r.result.offset >= 1, `broadcast response ${JSON.stringify(r)}`);
      }
      assert.deepEqual((await gotA).data, data);
      assert.deepEqual((await gotB).data, data);
      client.disconnect();
    });

    it('unsubscribe removes one client from a channel', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await pool.connect(srv.url);
      const channel = uniqueChannel('apiunsub');
      const { sub } = await subscribe(client, channel);
      const unsubscribed = waitFor(sub, 'unsubscribed', { what: 'unsubscribed after /api/unsubscribe' });
      await apiResult(srv, 'unsubscribe', { channel, user: '', client: ctx.client });
      const u = await unsubscribed;
      assert.equal(u.code, 2000, `unsubscribed code (reason ${u.reason})`);
      assert.equal(sub.state, 'unsubscribed');
      assert.equal(client.state, 'connected', 'the connection stays up');
      client.disconnect();
    });

    it('disconnect closes exactly the given client', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await pool.connect(srv.url);
      const disconnected = waitFor(client, 'disconnected', { what: 'disconnected after /api/disconnect' });
      await apiResult(srv, 'disconnect', { user: '', client: ctx.client });
      const d = await disconnected;
      assert.equal(d.code, 3503, `disconnected code (reason ${d.reason})`);
      assert.equal(client.state, 'disconnected');
      await assertServerHealthy(); // user "" matches the bystander too: it must be untouched
    });

    it('disconnect with a reconnect code makes the client reconnect', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await pool.connect(srv.url);
      const connecting = waitFor(client, 'connecting', { what: 'connecting after code 3011' });
      const reconnected = waitFor(client, 'connected', { what: 'reconnect after code 3011' });
      await apiResult(srv, 'disconnect', {
        user: '',
        client: ctx.client,
        disconnect: { code: 3011, reason: 'force reconnect' },
      });
      const c = await connecting;
      assert.equal(c.code, 3011);
      const again = await reconnected;
      assert.notEqual(again.client, ctx.client, 'a reconnect gets a new client id');
      client.disconnect();
      await assertServerHealthy();
    });
  });
});

describe('tandem heartbeat enforcement', { timeout: 30000 }, () => {
  let srv;
  const sockets = [];

  before(async () => {
    srv = await startServer({
      config: testConfig({ client: { ping_interval: '1s', pong_timeout: '1s' } }),
    });
  });
  after(async () => {
    for (const ws of sockets) ws.terminate();
    if (srv) await srv.stop();
  });

  it('closes a connection that does not pong with 3012, keeps one that does', { timeout: TEST_TIMEOUT }, async () => {
    const silent = await rawWs(srv);
    const polite = await rawWs(srv);
    sockets.push(silent.ws, polite.ws);

    const result = await rawConnect(silent);
    assert.equal(result.ping, 1, 'connect result ping interval (seconds)');
    assert.equal(result.pong, true, 'connect result asks for pongs');
    await rawConnect(polite);
    let pongs = 0;
    polite.ws.on('message', (data) => {
      for (const line of data.toString('utf8').split('\n')) {
        if (line.trim() === '{}') {
          pongs += 1;
          polite.ws.send('{}');
        }
      }
    });

    // First ping within one interval (plus slack), then the pong deadline.
    await silent.next((m) => Object.keys(m).length === 0, 2500, 'server ping {}');
    const { code } = await silent.closedWithin(4000);
    assert.equal(code, 3012, 'close code for a missing pong');

    assert.equal(polite.ws.readyState, WebSocket.OPEN, 'the ponging connection stays open');
    assert.ok(pongs >= 1, `pongs sent: ${pongs}`);
  });
});
