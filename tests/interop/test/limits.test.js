'use strict';
// Every cap a peer can push against, through the real server: the per-connection output
// queue (3008 "slow"), the HTTP head size (431), the API body size (413), the channel limit
// (106) and the channel name length (107). Other clients must be unaffected.

const assert = require('node:assert/strict');
const net = require('node:net');
const { describe, it, before, after } = require('node:test');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { startServer, apiCall } = require('../lib/server');
const { testConfig, API_KEY } = require('../lib/config');
const { ClientPool, subscribe } = require('../lib/clients');
const { uniqueChannel, withTimeout, sleep } = require('../lib/util');

async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

/** Sends raw bytes on a TCP connection and resolves with the HTTP status the server answers. */
function rawStatus(port, request) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      let data = '';
      sock.setEncoding('latin1');
      sock.on('connect', () => sock.write(request));
      sock.on('data', (c) => {
        data += c;
        const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
        if (m) {
          sock.destroy();
          resolve(Number(m[1]));
        }
      });
      sock.on('error', reject);
      sock.on('close', () => reject(new Error(`closed without a status: ${JSON.stringify(data)}`)));
    }),
    3000,
    'HTTP status'
  );
}

describe('tandem limits', { timeout: 60000 }, () => {
  let srv;
  const pool = new ClientPool(Centrifuge);

  before(async () => {
    srv = await startServer({
      config: testConfig({ client: { queue_max_size: 65536, channel_limit: 2 }, channel: { max_length: 100 } }),
    });
  });
  after(async () => {
    await pool.closeAll();
    if (srv) await srv.stop();
  });

  it('closes a client that does not read with 3008 and keeps serving others', async () => {
    const channel = uniqueChannel('slow');
    const slow = new WebSocket(srv.url);
    await withTimeout(new Promise((r, j) => { slow.once('open', r); slow.once('error', j); }), 3000, 'open');
    const closed = new Promise((resolve) => slow.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    slow.on('error', () => {});
    const subscribed = new Promise((resolve) => slow.on('message', (d) => {
      if (d.toString().includes('"id":2')) resolve();
    }));
    slow.send(`{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"${channel}"}}`);
    await withTimeout(subscribed, 3000, 'subscribe reply');
    slow._socket.pause(); // stop reading: the kernel buffers fill, then tandem's queue

    const { client: good } = await pool.connect(srv.url);
    const { sub } = await subscribe(good, channel);
    let received = 0;
    sub.on('publication', () => received++);

    const payload = JSON.stringify({ fill: 'x'.repeat(16000) });
    let sent = 0;
    for (; sent < 600; sent++) {
      const res = await apiCall(srv, 'publish', `{"channel":"${channel}","data":${payload}}`);
      assert.equal(res.status, 200);
    }
    slow._socket.resume();
    const { code, reason } = await withTimeout(closed, 10000, 'slow client close');
    assert.equal(code, 3008);
    assert.equal(reason, 'slow');
    await until(() => received === sent, 10000, 'the reading client got every publication');
    assert.equal(good.state, 'connected');
    const metrics = await (await fetch(`${srv.httpUrl}/metrics`)).text();
    assert.match(metrics, /^tandem_slow_disconnects_total 1$/m);
    assert.match(metrics, new RegExp(`^tandem_publications_total ${sent}$`, 'm'));
    assert.match(metrics, /^# TYPE tandem_clients gauge$/m);
  });

  it('answers 431 to an oversized request head and 413 to an oversized API body', async () => {
    const bigHeader = `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`;
    assert.equal(await rawStatus(srv.port, bigHeader), 431);
    const bigBody = `POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: ${API_KEY}\r\nContent-Length: ${2 * 1024 * 1024}\r\n\r\n{`;
    assert.equal(await rawStatus(srv.port, bigBody), 413);
    assert.equal(await rawStatus(srv.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n'), 200);
  });

  it('refuses a third channel with 106 and a long channel name with 107', async () => {
    const { client } = await pool.connect(srv.url);
    const a = client.newSubscription(uniqueChannel('a'));
    const b = client.newSubscription(uniqueChannel('b'));
    a.subscribe();
    b.subscribe();
    await a.ready(5000);
    await b.ready(5000);
    const codes = [];
    for (const name of [uniqueChannel('c'), 'x'.repeat(120)]) {
      const s = client.newSubscription(name);
      const unsub = new Promise((resolve) => s.on('unsubscribed', (ctx) => resolve(ctx.code)));
      s.subscribe();
      codes.push(await withTimeout(unsub, 5000, 'unsubscribed event'));
    }
    assert.deepEqual(codes, [106, 107]);
  });
});

describe('tandem origin check and HTTP idle timeout', { timeout: 30000 }, () => {
  let srv;
  before(async () => {
    const config = testConfig({});
    config.client.allowed_origins = ['http://good.example'];
    config.http_server = { idle_timeout: '300ms' };
    srv = await startServer({ config });
  });
  after(async () => {
    if (srv) await srv.stop();
  });

  const handshake = (origin) =>
    'GET /connection/websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
    'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
    `Sec-WebSocket-Version: 13\r\n${origin ? `Origin: ${origin}\r\n` : ''}\r\n`;

  it('accepts listed origins and clients without Origin, refuses others with 403', async () => {
    assert.equal(await rawStatus(srv.port, handshake('http://good.example')), 101);
    assert.equal(await rawStatus(srv.port, handshake(null)), 101);
    assert.equal(await rawStatus(srv.port, handshake('http://evil.example')), 403);
    assert.equal(await rawStatus(srv.port, handshake('http://127.0.0.1')), 101); // same host
  });

  it('closes an HTTP connection that sends nothing within http_server.idle_timeout', async () => {
    const started = Date.now();
    const closedAfter = await withTimeout(
      new Promise((resolve, reject) => {
        const sock = net.connect(srv.port, '127.0.0.1');
        sock.on('error', reject);
        sock.on('close', () => resolve(Date.now() - started));
        sock.resume();
      }),
      3000,
      'server closing an idle connection'
    );
    assert.ok(closedAfter >= 250, `closed after ${closedAfter} ms, before the timeout`);
  });
});

describe('tandem connection limit', { timeout: 30000 }, () => {
  let srv;
  before(async () => {
    srv = await startServer({ config: testConfig({ client: { connection_limit: 1 } }) });
  });
  after(async () => {
    if (srv) await srv.stop();
  });

  it('closes a WebSocket session beyond client.connection_limit with 3504', async () => {
    const open = async () => {
      const ws = new WebSocket(srv.url);
      ws.on('error', () => {});
      const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 3000, 'open');
      return { ws, closed };
    };
    const first = await open();
    const second = await open();
    assert.deepEqual(await withTimeout(second.closed, 3000, 'second closed'), { code: 3504, reason: 'connection limit' });
    // The first is unaffected, and once it leaves a new session is accepted.
    const reply = new Promise((resolve) => first.ws.once('message', (d) => resolve(d.toString())));
    first.ws.send('{"id":1,"connect":{}}');
    assert.match(await withTimeout(reply, 3000, 'connect reply'), /"connect":\{"client"/);
    first.ws.close();
    await withTimeout(first.closed, 3000, 'first closed');
    // The server frees the slot when it sees the first socket's EOF, which may come a
    // moment after the client's close event: retry briefly.
    let accepted = false;
    for (let attempt = 0; attempt < 20 && !accepted; attempt++) {
      const third = await open();
      const r3 = new Promise((resolve) => {
        third.ws.once('message', (d) => resolve(d.toString()));
        third.closed.then(() => resolve('closed'));
      });
      third.ws.send('{"id":1,"connect":{}}');
      accepted = /"connect":\{"client"/.test(await withTimeout(r3, 3000, 'connect reply'));
      third.ws.close();
      if (!accepted) await sleep(50);
    }
    assert.ok(accepted, 'a new session is accepted once the first one left');
  });
});

describe('tandem command rate limit', { timeout: 30000 }, () => {
  let srv;
  before(async () => {
    srv = await startServer({ config: testConfig({ client: { command_rate_limit: 5, command_rate_burst: 3 } }) });
  });
  after(async () => {
    if (srv) await srv.stop();
  });

  it('answers commands over client.command_rate_limit with temporary error 111', async () => {
    const ws = new WebSocket(srv.url);
    ws.on('error', () => {});
    await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 3000, 'open');
    const replies = new Map();
    ws.on('message', (d) => {
      for (const line of d.toString().split('\n')) if (line) { const m = JSON.parse(line); if (m.id) replies.set(m.id, m); }
    });
    const cmds = [{ id: 1, connect: {} }];
    for (let i = 0; i < 6; i++) cmds.push({ id: 10 + i, presence_stats: { channel: 'rl' } });
    ws.send(cmds.map((c) => JSON.stringify(c)).join('\n'));
    await withTimeout((async () => { while (replies.size < 7) await sleep(10); })(), 3000, '7 replies');
    const ok = [...replies.values()].filter((m) => m.presence_stats).length;
    const limited = [...replies.values()].filter((m) => m.error && m.error.code === 111);
    assert.equal(ok, 3, 'the burst of 3 is served');
    assert.equal(limited.length, 3);
    assert.ok(limited.every((m) => m.error.temporary === true));
    await sleep(500); // refills 2.5 commands
    ws.send(JSON.stringify({ id: 30, presence_stats: { channel: 'rl' } }));
    await withTimeout((async () => { while (!replies.has(30)) await sleep(10); })(), 3000, 'reply 30');
    assert.ok(replies.get(30).presence_stats, 'served again after the refill');
    ws.close();
  });
});

describe('tandem shutdown', { timeout: 30000 }, () => {
  it('closes WebSocket clients with 3001 "shutdown" on SIGTERM and exits cleanly', async () => {
    const srv = await startServer({ config: testConfig({}) });
    const ws = new WebSocket(srv.url);
    ws.on('error', () => {});
    await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 3000, 'open');
    const connected = new Promise((resolve) => ws.once('message', resolve));
    ws.send('{"id":1,"connect":{}}');
    await withTimeout(connected, 3000, 'connect reply');
    const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    await srv.stop(); // throws unless the server exits with status 0
    assert.deepEqual(await withTimeout(closed, 3000, 'close'), { code: 3001, reason: 'shutdown' });
  });
});
