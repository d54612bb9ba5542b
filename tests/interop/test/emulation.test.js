'use strict';
// centrifuge-js over the bidirectional emulation transports (HTTP-streaming and SSE) against
// tandem: the connect command opens a streaming response, later commands (subscribe,
// publish, presence, pongs...) go in POST /emulation requests naming the session id the
// connect reply carried. SSE uses the `eventsource` package as the EventSource; both use
// Node's own fetch and ReadableStream.

const assert = require('node:assert/strict');
const net = require('node:net');
const { describe, it, before, after, afterEach } = require('node:test');
const { EventSource } = require('eventsource');
const { Centrifuge } = require('centrifuge');
const { Centrifuge: CentrifugePb } = require('centrifuge/build/protobuf');

const { startServer, apiResult } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool, subscribe, codecs } = require('../lib/clients');
const { sleep, waitFor, collect, uniqueChannel } = require('../lib/util');

const TEST_TIMEOUT = 20000;

const emulationConfig = (over = {}) =>
  testConfig({ http_stream: { enabled: true }, sse: { enabled: true }, ...over });

/** Options making a client use only `transport` on srv (absolute URLs: Node has no base). */
function transportOptions(srv, transport) {
  return {
    endpoints: [{ transport, endpoint: `${srv.httpUrl}/connection/${transport}` }],
    options: { emulationEndpoint: `${srv.httpUrl}/emulation`, eventsource: EventSource },
  };
}

/** Reads a streaming response until `pred(text)` holds; returns the text so far. */
async function readUntil(res, pred, timeout = 5000) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + timeout;
  while (!pred(text)) {
    if (Date.now() > deadline) throw new Error(`timed out reading the stream; got ${JSON.stringify(text)}`);
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return text;
}

for (const transport of ['http_stream', 'sse']) {
  describe(`centrifuge-js over ${transport} against tandem`, { timeout: 90000 }, () => {
    let srv;
    const pool = new ClientPool(Centrifuge);
    const connect = () => {
      const t = transportOptions(srv, transport);
      return pool.connect(t.endpoints, t.options);
    };

    before(async () => {
      srv = await startServer({ config: emulationConfig() });
    });
    afterEach(() => pool.closeAll());
    after(async () => {
      pool.closeAll();
      if (srv) await srv.stop();
    });

    it('connects', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await connect();
      assert.equal(ctx.transport, transport);
      assert.equal(typeof ctx.client, 'string');
      assert.ok(ctx.client.length > 0);
      assert.equal(client.state, 'connected');
    });

    it('subscribes, publishes and receives its publications', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const channel = uniqueChannel(`${transport}-pub`);
      const { sub, ctx } = await subscribe(client, channel);
      assert.equal(ctx.channel, channel);
      const pubs = collect(sub, 'publication');
      // Newlines inside strings must survive the line-based framing of both transports.
      const sent = [{ n: 1, text: 'héllo\nwörld ✓\r\n' }, { n: 2, big: 'y'.repeat(3000) }, { n: 3 }];
      for (const value of sent) await sub.publish(value);
      const got = await pubs.next(sent.length);
      assert.deepEqual(got.map((p) => p.data), sent);
      assert.deepEqual(got.map((p) => p.offset), [1, 2, 3]);
      pubs.stop();
    });

    it('receives server API publications', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const channel = uniqueChannel(`${transport}-api`);
      const { sub } = await subscribe(client, channel);
      const pubs = collect(sub, 'publication');
      const results = [];
      for (let i = 0; i < 20; i++) results.push(await apiResult(srv, 'publish', { channel, data: { i } }));
      const got = await pubs.next(20);
      assert.deepEqual(got.map((p) => p.data), results.map((_, i) => ({ i })));
      assert.deepEqual(got.map((p) => p.offset), results.map((r) => r.offset));
      pubs.stop();
    });

    it('reports presence', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await connect();
      const { sub } = await subscribe(client, uniqueChannel(`${transport}-presence`));
      const presence = await sub.presence();
      assert.ok(Object.prototype.hasOwnProperty.call(presence.clients, ctx.client));
      const stats = await sub.presenceStats();
      assert.equal(stats.numClients, 1);
    });

    it('recovers missed publications after a reconnect', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const channel = uniqueChannel(`${transport}-recover`);
      const { sub, ctx } = await subscribe(client, channel);
      assert.equal(ctx.recoverable, true);
      const first = waitFor(sub, 'publication');
      const r0 = await apiResult(srv, 'publish', { channel, data: { seq: 0 } });
      assert.equal((await first).offset, r0.offset);

      client.disconnect();
      for (let i = 1; i <= 3; i++) await apiResult(srv, 'publish', { channel, data: { seq: i } });

      const resubscribed = waitFor(sub, 'subscribed', { what: 'resubscribe after reconnect' });
      const pubs = collect(sub, 'publication');
      client.connect();
      const sctx = await resubscribed;
      assert.equal(sctx.wasRecovering, true);
      assert.equal(sctx.recovered, true);
      const recovered = await pubs.next(3);
      assert.deepEqual(recovered.map((p) => p.data), [{ seq: 1 }, { seq: 2 }, { seq: 3 }]);
      assert.deepEqual(recovered.map((p) => p.offset), [r0.offset + 1, r0.offset + 2, r0.offset + 3]);
      pubs.stop();
    });

    it('delivers a server disconnect as a push: reconnect code, then a terminal one', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await connect();
      const channel = uniqueChannel(`${transport}-disc`);
      const { sub } = await subscribe(client, channel);

      // 4000..4499: the client reconnects (with a new session) and resubscribes.
      const connecting = waitFor(client, 'connecting', { what: 'connecting after 4001' });
      const again = waitFor(client, 'connected', { what: 'reconnect after 4001' });
      await apiResult(srv, 'disconnect', { client: ctx.client, disconnect: { code: 4001, reason: 'go away' } });
      const c = await connecting;
      assert.equal(c.code, 4001);
      assert.equal(c.reason, 'go away');
      const ctx2 = await again;
      assert.notEqual(ctx2.client, ctx.client);
      if (sub.state !== 'subscribed') await waitFor(sub, 'subscribed');
      const received = waitFor(sub, 'publication');
      await apiResult(srv, 'publish', { channel, data: { after: 'reconnect' } });
      assert.deepEqual((await received).data, { after: 'reconnect' });

      // 4500..4999: terminal.
      const disconnected = waitFor(client, 'disconnected', { what: 'disconnected after 4501' });
      await apiResult(srv, 'disconnect', { client: ctx2.client, disconnect: { code: 4501, reason: 'banned' } });
      const d = await disconnected;
      assert.equal(d.code, 4501);
      assert.equal(client.state, 'disconnected');
    });

    it('answers 404 on /emulation for a session that does not exist', { timeout: TEST_TIMEOUT }, async () => {
      const res = await fetch(`${srv.httpUrl}/emulation`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ session: '0123456789abcdef0123456789abcdef', data: '{}' }),
      });
      assert.equal(res.status, 404);
      await res.text();
      const bad = await fetch(`${srv.httpUrl}/emulation`, { method: 'POST', body: '{"data":"{}"}' });
      assert.equal(bad.status, 400);
      await bad.text();
    });
  });
}

describe('emulation endpoints (raw HTTP) against tandem', { timeout: 60000 }, () => {
  let srv;
  before(async () => {
    srv = await startServer({ config: emulationConfig({ client: { insecure: true, allowed_origins: ['https://app.example'] } }) });
  });
  after(async () => {
    if (srv) await srv.stop();
  });

  it('streams JSON lines and takes commands for the session over /emulation', { timeout: TEST_TIMEOUT }, async () => {
    const ac = new AbortController();
    const res = await fetch(`${srv.httpUrl}/connection/http_stream`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"connect":{"name":"raw"},"id":1}',
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('cache-control'), /no-cache/);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    let text = await readUntil(res, (t) => t.includes('\n'));
    const reply = JSON.parse(text.split('\n')[0]);
    assert.equal(reply.id, 1);
    assert.match(reply.connect.session, /^[0-9a-f]{32}$/);
    assert.equal(typeof reply.connect.node, 'string');
    assert.notEqual(reply.connect.session, reply.connect.client);

    const channel = uniqueChannel('raw');
    const post = await fetch(`${srv.httpUrl}/emulation`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({
        session: reply.connect.session,
        node: reply.connect.node,
        data: `{"subscribe":{"channel":"${channel}"},"id":2}\n{"presence_stats":{"channel":"${channel}"},"id":3}`,
      }),
    });
    assert.equal(post.status, 204);
    // The replies (and the join push of the namespace's force_push_join_leave).
    text = await readUntil(res, (t) => t.includes('"id":3'));
    const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const replies = lines.filter((l) => l.id);
    assert.deepEqual(replies.map((l) => l.id), [2, 3]);
    assert.equal(replies[1].presence_stats.num_clients, 1);
    assert.ok(lines.every((l) => l.id || l.push), `unexpected line in ${text}`);

    // Another node's id is not ours: 404, so the client would reconnect.
    const other = await fetch(`${srv.httpUrl}/emulation`, {
      method: 'POST',
      body: JSON.stringify({ session: reply.connect.session, node: 'elsewhere', data: '{}' }),
    });
    assert.equal(other.status, 404);
    ac.abort();
  });

  it('answers CORS preflights and refuses unknown origins', { timeout: TEST_TIMEOUT }, async () => {
    const pre = await fetch(`${srv.httpUrl}/emulation`, {
      method: 'OPTIONS',
      headers: {
        Origin: 'https://app.example',
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type',
      },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type');
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    const evil = await fetch(`${srv.httpUrl}/connection/http_stream`, {
      method: 'POST',
      headers: { Origin: 'https://evil.example' },
      body: '{"connect":{},"id":1}',
    });
    assert.equal(evil.status, 403);
    await evil.text();
    const get = await fetch(`${srv.httpUrl}/connection/http_stream`);
    assert.equal(get.status, 405);
    await get.text();
    const nobody = await fetch(`${srv.httpUrl}/connection/sse`);
    assert.equal(nobody.status, 400);
    await nobody.text();
  });

  it('keeps the transports off by default (Centrifugo defaults)', { timeout: TEST_TIMEOUT }, async () => {
    const plain = await startServer({ config: testConfig() });
    try {
      for (const path of ['/connection/http_stream', '/connection/sse', '/emulation']) {
        const res = await fetch(`${plain.httpUrl}${path}`, { method: 'POST', body: '{}' });
        assert.equal(res.status, 404, path);
        await res.text();
      }
    } finally {
      await plain.stop();
    }
  });
});

describe('centrifuge-js (protobuf) over http_stream against tandem', { timeout: 60000 }, () => {
  let srv;
  const pool = new ClientPool(CentrifugePb);
  const { encode: enc, decode: dec } = codecs.protobuf;
  before(async () => {
    srv = await startServer({ config: emulationConfig() });
  });
  afterEach(() => pool.closeAll());
  after(async () => {
    pool.closeAll();
    if (srv) await srv.stop();
  });

  it('connects, subscribes, publishes and receives API publications', { timeout: TEST_TIMEOUT }, async () => {
    const t = transportOptions(srv, 'http_stream');
    const { client, ctx } = await pool.connect(t.endpoints, t.options);
    assert.equal(ctx.transport, 'http_stream');
    const channel = uniqueChannel('pb-stream');
    const { sub } = await subscribe(client, channel);
    const pubs = collect(sub, 'publication');
    await sub.publish(enc({ from: 'client', text: 'a\nb' }));
    const r = await apiResult(srv, 'publish', { channel, data: { from: 'api' } });
    const got = await pubs.next(2);
    assert.deepEqual(got.map((p) => dec(p.data)), [{ from: 'client', text: 'a\nb' }, { from: 'api' }]);
    assert.equal(got[1].offset, r.offset);
    const presence = await sub.presence();
    assert.ok(Object.prototype.hasOwnProperty.call(presence.clients, ctx.client));
    pubs.stop();
  });
});

describe('emulation ping/pong against tandem', { timeout: 60000 }, () => {
  let srv;
  const pool = new ClientPool(Centrifuge);
  before(async () => {
    srv = await startServer({ config: emulationConfig({ client: { insecure: true, allowed_origins: ['*'], ping_interval: '1s', pong_timeout: '1s' } }) });
  });
  after(async () => {
    pool.closeAll();
    if (srv) await srv.stop();
  });

  for (const transport of ['http_stream', 'sse']) {
    it(`stays connected across server pings over ${transport} (pongs via /emulation)`, { timeout: TEST_TIMEOUT }, async () => {
      const t = transportOptions(srv, transport);
      const { client } = await pool.connect(t.endpoints, t.options);
      const disconnects = collect(client, 'disconnected');
      const reconnects = collect(client, 'connecting');
      await sleep(3500);
      assert.deepEqual(reconnects.items, []);
      assert.deepEqual(disconnects.items, []);
      assert.equal(client.state, 'connected');
      [disconnects, reconnects].forEach((c) => c.stop());
      client.disconnect();
    });
  }
});

describe('emulation slow client against tandem', { timeout: 60000 }, () => {
  let srv;
  before(async () => {
    srv = await startServer({ config: emulationConfig({ client: { insecure: true, allowed_origins: ['*'], queue_max_size: 200000 } }) });
  });
  after(async () => {
    if (srv) await srv.stop();
  });

  it('ends a stream that is not read with the 3008 push and the last chunk', { timeout: TEST_TIMEOUT }, async () => {
    const sock = net.connect(srv.port, '127.0.0.1');
    const chunks = [];
    let text = '';
    let ended = false;
    const ends = new Promise((resolve) => sock.on('close', () => { ended = true; resolve(); }));
    sock.on('data', (d) => { chunks.push(d); text += d.toString('latin1'); });
    sock.on('error', () => {});
    const body = '{"connect":{},"id":1}';
    sock.write(`POST /connection/http_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    const deadline = Date.now() + 5000;
    while (!/"session":"[0-9a-f]+"/.test(text) && Date.now() < deadline) await sleep(10);
    const connect = JSON.parse(text.split('\r\n').find((l) => l.startsWith('{'))).connect;
    const channel = uniqueChannel('slow');
    const post = await fetch(`${srv.httpUrl}/emulation`, {
      method: 'POST',
      body: JSON.stringify({ session: connect.session, node: connect.node, data: `{"subscribe":{"channel":"${channel}"},"id":2}` }),
    });
    assert.equal(post.status, 204);
    sock.pause(); // stop reading: the kernel buffers fill, then tandem's queue
    const big = 'x'.repeat(60000);
    for (let i = 0; i < 200 && !ended; i++) await apiResult(srv, 'publish', { channel, data: { i, big } });
    sock.resume();
    await ends;
    const tail = text.slice(-200);
    assert.match(tail, /\{"push":\{"disconnect":\{"code":3008,"reason":"slow"\}\}\}\n\r\n0\r\n\r\n$/);
  });
});
