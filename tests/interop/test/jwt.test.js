'use strict';
// Connection and subscription JWTs with the real centrifuge client: HS256 tokens signed here
// with node's crypto, verified by tandem with client.token.hmac_secret_key.

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const { describe, it, before, after } = require('node:test');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');

const { startServer, binPath, apiCall } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool } = require('../lib/clients');
const { withTimeout, uniqueChannel, sleep } = require('../lib/util');

const SECRET = 'jwt-test-secret';

function hs256(payload, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(payload);
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);

function once(emitter, event, ms, what) {
  return withTimeout(new Promise((resolve) => emitter.once(event, resolve)), ms, what);
}

describe('tandem JWT authentication', { timeout: 60000 }, () => {
  let srv;
  const pool = new ClientPool(Centrifuge);

  before(async () => {
    const config = testConfig({});
    config.client = { token: { hmac_secret_key: SECRET }, allowed_origins: ['*'] };
    config.channel.without_namespace.allow_subscribe_for_client = true;
    config.channel.without_namespace.allow_presence_for_subscriber = true;
    srv = await startServer({ config });
  });
  after(async () => {
    pool.closeAll();
    if (srv) await srv.stop();
  });

  it('connects with a valid token as its user, with info in presence', async () => {
    const token = hs256({ sub: '42', exp: now() + 3600, info: { name: 'Ann' } });
    const { client, ctx } = await pool.connect(srv.url, { token });
    assert.equal(typeof ctx.client, 'string');
    const sub = client.newSubscription(uniqueChannel('jwt'));
    sub.subscribe();
    await sub.ready(5000);
    const presence = await sub.presence();
    const me = presence.clients[ctx.client];
    assert.equal(me.user, '42');
    assert.deepEqual(me.connInfo, { name: 'Ann' });
  });

  it('refuses a bad signature with 3500 and no reconnect', async () => {
    const client = pool.create(srv.url, { token: hs256({ sub: '1' }, 'wrong-secret') });
    const disconnected = once(client, 'disconnected', 5000, 'disconnected');
    client.connect();
    const ctx = await disconnected;
    assert.equal(ctx.code, 3500);
  });

  it('refuses a client without a token when anonymous connections are off', async () => {
    const client = pool.create(srv.url, {});
    const disconnected = once(client, 'disconnected', 5000, 'disconnected');
    client.connect();
    assert.equal((await disconnected).code, 3500);
  });

  it('asks for a new token when the first one has expired (109) and connects with it', async () => {
    let calls = 0;
    const client = pool.create(srv.url, {
      token: hs256({ sub: '7', exp: now() - 10 }),
      getToken: async () => {
        calls++;
        return hs256({ sub: '7', exp: now() + 3600 });
      },
    });
    const connected = once(client, 'connected', 8000, 'connected');
    client.connect();
    await connected;
    assert.equal(calls, 1);
  });

  it('refreshes an expiring connection token and stays connected', async () => {
    let calls = 0;
    const client = pool.create(srv.url, {
      token: hs256({ sub: '8', exp: now() + 2 }),
      getToken: async () => {
        calls++;
        return hs256({ sub: '8', exp: now() + 3600 });
      },
    });
    const disconnects = [];
    client.on('disconnected', (c) => disconnects.push(c));
    client.on('connecting', (c) => disconnects.push(c));
    const connected = once(client, 'connected', 5000, 'connected');
    client.connect();
    await connected;
    disconnects.length = 0;
    await sleep(3500);
    assert.ok(calls >= 1, 'getToken was called to refresh');
    assert.deepEqual(disconnects, []);
    assert.equal(client.state, 'connected');
  });

  it('subscribes to a private channel with a subscription token, refuses without', async () => {
    const token = hs256({ sub: '42', exp: now() + 3600 });
    const { client, ctx } = await pool.connect(srv.url, { token });
    const channel = `$${uniqueChannel('priv')}`;
    const ok = client.newSubscription(channel, {
      token: hs256({ sub: '42', channel, client: ctx.client, exp: now() + 3600 }),
    });
    ok.subscribe();
    await ok.ready(5000);
    const other = `$${uniqueChannel('priv2')}`;
    const denied = client.newSubscription(other);
    const unsub = once(denied, 'unsubscribed', 5000, 'unsubscribed');
    denied.subscribe();
    assert.equal((await unsub).code, 103);
  });

  it('closes with 3500 when a subscription token names another channel', async () => {
    const { client } = await pool.connect(srv.url, { token: hs256({ sub: '42' }) });
    const disconnected = once(client, 'disconnected', 5000, 'disconnected');
    const sub = client.newSubscription('$a-channel', {
      token: hs256({ sub: '42', channel: '$another-channel' }),
    });
    sub.subscribe();
    assert.equal((await disconnected).code, 3500);
  });

  for (const mode of ['json', 'protobuf']) {
  it(`subscribes server-side to the channels claim and recovers those on reconnect (${mode})`, async () => {
    const channel = uniqueChannel('srv');
    const C = mode === 'json' ? Centrifuge : require('centrifuge/build/protobuf').Centrifuge;
    const client = new C(srv.url, { websocket: WebSocket, token: hs256({ sub: '55', channels: [channel] }), minReconnectDelay: 100 });
    client.on('error', () => {});
    const dec = (d) => (mode === 'json' ? d : JSON.parse(Buffer.from(d).toString()));
    const subscribed = [];
    const pubs = [];
    client.on('subscribed', (ctx) => subscribed.push(ctx));
    client.on('publication', (ctx) => pubs.push(ctx));
    const until = async (pred, what) => {
      const end = Date.now() + 5000;
      while (!pred()) {
        if (Date.now() > end) throw new Error(`timed out: ${what}`);
        await sleep(20);
      }
    };
    client.connect();
    await until(() => subscribed.length === 1, 'server-side subscribed event');
    assert.equal(subscribed[0].channel, channel);
    assert.equal(subscribed[0].recoverable, true);
    const p1 = await apiCall(srv, 'publish', { channel, data: { n: 1 } });
    await until(() => pubs.length === 1, 'first publication');
    assert.equal(pubs[0].channel, channel);
    assert.equal(pubs[0].offset, p1.json.result.offset);
    client.disconnect();
    await apiCall(srv, 'publish', { channel, data: { n: 2 } });
    await apiCall(srv, 'publish', { channel, data: { n: 3 } });
    client.connect();
    await until(() => subscribed.length === 2, 'resubscribed after reconnect');
    assert.equal(subscribed[1].wasRecovering, true);
    assert.equal(subscribed[1].recovered, true);
    await until(() => pubs.length === 3, 'recovered publications');
    assert.deepEqual(pubs.map((p) => dec(p.data).n), [1, 2, 3]);
    client.disconnect();
  });
  }

  it('subscribes server-side to the subs claim; its info is the subscription channel info', async () => {
    const channel = uniqueChannel('subs');
    const other = uniqueChannel('subs');
    const token = hs256({ sub: '77', subs: { [channel]: { info: { role: 'editor' } } }, channels: [other] });
    const client = new Centrifuge(srv.url, { websocket: WebSocket, token });
    client.on('error', () => {});
    const subscribed = [];
    const joins = [];
    client.on('subscribed', (ctx) => subscribed.push(ctx.channel));
    client.on('join', (ctx) => joins.push(ctx));
    client.connect();
    const end = Date.now() + 5000;
    while (subscribed.length < 2 && Date.now() < end) await sleep(20);
    assert.deepEqual(subscribed.sort(), [channel, other].sort());
    // presence shows the channel info from the claim
    const pres = await apiCall(srv, 'presence', { channel });
    const infos = Object.values(pres.json.result.presence || {});
    assert.equal(infos.length, 1);
    assert.deepEqual(infos[0].chan_info, { role: 'editor' });
    client.disconnect();
  });

  it('tandem gentoken signs a token the server accepts', async () => {
    const cfgFile = require('node:path').join(require('node:os').tmpdir(), `tandem-jwt-${process.pid}.json`);
    require('node:fs').writeFileSync(cfgFile, JSON.stringify({ client: { token: { hmac_secret_key: SECRET } } }));
    const r = spawnSync(binPath(), ['gentoken', '--config', cfgFile, '--user', 'cli-user', '--ttl', '600'], { encoding: 'utf8' });
    require('node:fs').rmSync(cfgFile);
    assert.equal(r.status, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.sub, 'cli-user');
    assert.ok(claims.exp > now() + 500 && claims.exp <= now() + 601);
    const { client } = await pool.connect(srv.url, { token });
    assert.equal(client.state, 'connected');
  });
});
