'use strict';
// Yjs documents through the server API (doc_state, doc_update), read-only access with a
// connection token (?token=, tandem's "yjs" claim), and the yjs metrics. Real yjs 13 and
// y-websocket 3.1 clients; tokens are HS256, signed here with node's crypto.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const Y = require('yjs');
const { WebsocketProvider } = require('y-websocket');
const WebSocket = require('ws');

const { startServer, apiCall, apiResult } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { sleep } = require('../lib/util');

const WAIT_MS = 8000;
const SECRET = 'yjs-api-secret';
const providers = new Set();

test.after(() => {
  for (const p of providers) {
    p.destroy();
    p.doc.destroy();
  }
});

function hs256(payload, secret = SECRET) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64(payload);
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function config(yjs = {}) {
  const cfg = testConfig({ yjs });
  cfg.client.token = { hmac_secret_key: SECRET };
  return cfg;
}

function connect(srv, room, opts = {}) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`ws://127.0.0.1:${srv.port}/yjs`, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    ...opts,
  });
  providers.add(provider);
  return { doc, provider };
}

function destroy(c) {
  c.provider.destroy();
  c.doc.destroy();
  providers.delete(c.provider);
}

async function until(pred, what, ms = WAIT_MS) {
  const t0 = Date.now();
  while (!(await pred())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(10);
  }
}

const synced = (c) => until(() => c.provider.synced && c.provider.wsconnected, 'provider synced');
const b64 = (u8) => Buffer.from(u8).toString('base64');
const fromB64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

/** The server's document for room, loaded into a fresh Y.Doc. */
async function serverDoc(srv, room) {
  const r = await apiResult(srv, 'doc_state', { room });
  const d = new Y.Doc();
  Y.applyUpdate(d, fromB64(r.update));
  return d;
}

async function serverText(srv, room) {
  const d = await serverDoc(srv, room);
  const t = d.getText('t').toString();
  d.destroy();
  return t;
}

async function metrics(srv) {
  const res = await fetch(`${srv.httpUrl}/metrics`);
  const text = await res.text();
  const get = (name) => {
    const m = new RegExp(`^${name} (\\d+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  return { text, get };
}

test('doc_update reaches connected providers; doc_state returns the full state and diffs', async () => {
  const srv = await startServer({ config: config() });
  try {
    const room = 'api-room';
    const a = connect(srv, room);
    await synced(a);

    // An update made elsewhere, applied through the API.
    const src = new Y.Doc();
    src.getText('t').insert(0, 'from api');
    src.getMap('m').set('k', 1);
    assert.deepEqual(await apiResult(srv, 'doc_update', { room, update: b64(Y.encodeStateAsUpdate(src)) }), {});
    await until(() => a.doc.getText('t').toString() === 'from api', 'API update reaches the provider');
    assert.equal(a.doc.getMap('m').get('k'), 1);

    // The client's edits are in doc_state; yjs loads it to the same content.
    a.doc.getText('t').insert(8, ' and client');
    await until(async () => (await serverText(srv, room)) === 'from api and client', 'client edit stored');
    const full = await serverDoc(srv, room);
    assert.equal(full.getText('t').toString(), a.doc.getText('t').toString());
    assert.deepEqual(full.getMap('m').toJSON(), a.doc.getMap('m').toJSON());

    // A partial doc (an earlier copy) catches up with the diff against its state vector.
    const partial = new Y.Doc();
    Y.applyUpdate(partial, Y.encodeStateAsUpdate(full));
    full.destroy();
    a.doc.getText('t').insert(0, '>> ');
    await until(async () => (await serverText(srv, room)).startsWith('>> '), 'second edit stored');
    const sv = b64(Y.encodeStateVector(partial));
    const diff = fromB64((await apiResult(srv, 'doc_state', { room, state_vector: sv })).update);
    const whole = fromB64((await apiResult(srv, 'doc_state', { room })).update);
    assert.ok(diff.length < whole.length, `diff (${diff.length} B) smaller than the state (${whole.length} B)`);
    Y.applyUpdate(partial, diff);
    assert.equal(partial.getText('t').toString(), a.doc.getText('t').toString());
    partial.destroy();

    // v2 encoding.
    const v2 = await apiResult(srv, 'doc_state', { room, encoding: 'v2' });
    const d2 = new Y.Doc();
    Y.applyUpdateV2(d2, fromB64(v2.update));
    assert.equal(d2.getText('t').toString(), a.doc.getText('t').toString());
    d2.destroy();

    // An unknown room answers an empty document.
    const empty = new Y.Doc();
    Y.applyUpdate(empty, fromB64((await apiResult(srv, 'doc_state', { room: 'never-used' })).update));
    assert.equal(empty.getText('t').toString(), '');
    empty.destroy();

    // doc_update loads a room that is not in memory (no connection) and persists it.
    const other = new Y.Doc();
    other.getText('t').insert(0, 'offline');
    await apiResult(srv, 'doc_update', { room: 'offline-room', update: b64(Y.encodeStateAsUpdate(other)) });
    other.destroy();
    const late = connect(srv, 'offline-room');
    await synced(late);
    await until(() => late.doc.getText('t').toString() === 'offline', 'late joiner sees the API update');
    destroy(late);
    destroy(a);
  } finally {
    await srv.stop();
  }
});

test('malformed base64, updates and state vectors answer 107 and change nothing', async () => {
  const srv = await startServer({ config: config() });
  try {
    const room = 'bad-input';
    const a = connect(srv, room);
    await synced(a);
    a.doc.getText('t').insert(0, 'keep');
    await until(async () => (await serverText(srv, room)) === 'keep', 'edit stored');
    const before = (await apiResult(srv, 'doc_state', { room })).update;

    const cases = [
      ['doc_update', { room, update: '!!not base64!!' }],
      ['doc_update', { room, update: b64(new Uint8Array([0x05, 0xff, 0xff, 0x01])) }],
      ['doc_update', { room }],
      ['doc_state', { room, state_vector: 'a=b=' }],
      ['doc_state', { room, state_vector: b64(new Uint8Array([0x05])) }],
      ['doc_state', { room, encoding: 'v3' }],
      ['doc_state', {}],
    ];
    for (const [method, body] of cases) {
      const r = await apiCall(srv, method, body);
      assert.equal(r.status, 200, `${method} ${JSON.stringify(body)}`);
      assert.ok(r.json && r.json.error, `${method} ${JSON.stringify(body)} -> ${r.text}`);
      assert.equal(r.json.error.code, 107, `${method} ${JSON.stringify(body)} -> ${r.text}`);
      assert.ok(r.json.error.message.length > 0);
    }
    assert.equal((await apiResult(srv, 'doc_state', { room })).update, before);
    assert.equal(a.doc.getText('t').toString(), 'keep');
    assert.ok(a.provider.wsconnected, 'the connected client is not affected');
    const m = await metrics(srv);
    assert.ok(m.get('tandem_yjs_rejected_total') >= 1, m.text);
    destroy(a);
  } finally {
    await srv.stop();
  }
});

test('a read-only token receives edits, its own are refused; invalid tokens are refused', async () => {
  const srv = await startServer({ config: config() });
  const origWarn = console.warn;
  const warnings = [];
  console.warn = (...args) => warnings.push(args.join(' '));
  try {
    const room = 'ro-room';
    const w = connect(srv, room);
    const ro = connect(srv, room, { params: { token: hs256({ sub: 'viewer', yjs: { [room]: 'r' } }) } });
    const other = connect(srv, room, { params: { token: hs256({ sub: 'ed', yjs: { '*': 'rw' } }) } });
    await synced(w);
    await synced(ro);
    await synced(other);

    w.doc.getText('t').insert(0, 'writer');
    await until(() => ro.doc.getText('t').toString() === 'writer', 'read-only client receives edits');
    other.doc.getText('t').insert(6, '+rw');
    await until(() => ro.doc.getText('t').toString() === 'writer+rw', 'edits of an rw token arrive');

    // The read-only client's own edit is refused with the auth message.
    ro.doc.getMap('m').set('ro', 'nope');
    await until(() => warnings.some((s) => /Permission denied/.test(s) && /read-only/.test(s)), 'auth message');
    await sleep(200);
    assert.equal(w.doc.getMap('m').get('ro'), undefined);
    assert.equal(other.doc.getMap('m').get('ro'), undefined);
    const sd = await serverDoc(srv, room);
    assert.equal(sd.getMap('m').get('ro'), undefined);
    assert.equal(sd.getText('t').toString(), 'writer+rw');
    sd.destroy();
    assert.ok(ro.provider.wsconnected, 'the read-only client stays connected');

    const m = await metrics(srv);
    assert.ok(m.get('tandem_yjs_rooms') >= 1, m.text);
    assert.equal(m.get('tandem_yjs_connections'), 3, m.text);
    assert.ok(m.get('tandem_yjs_updates_total') >= 2, m.text);
    assert.ok(m.get('tandem_yjs_rejected_total') >= 1, m.text);

    // A bad signature, and a token that does not name this room, are closed (4401, 4403)
    // and y-websocket does not reconnect.
    for (const [token, code] of [
      [hs256({ sub: 'x' }, 'wrong-secret'), 4401],
      ['not-a-token', 4401],
      [hs256({ sub: 'x', yjs: { 'other-room': 'rw' } }), 4403],
    ]) {
      const bad = connect(srv, room, { params: { token } });
      const ev = await new Promise((resolve) => bad.provider.once('connection-close', (e) => resolve(e)));
      assert.equal(ev.code, code);
      await sleep(100);
      assert.equal(bad.provider.wsconnected, false);
      destroy(bad);
    }
    destroy(w);
    destroy(ro);
    destroy(other);
  } finally {
    console.warn = origWarn;
    await srv.stop();
  }
});

test('yjs.require_token and yjs.read_only', async () => {
  const srv = await startServer({ config: config({ require_token: true }) });
  try {
    const anon = connect(srv, 'req');
    const ev = await new Promise((resolve) => anon.provider.once('connection-close', (e) => resolve(e)));
    assert.equal(ev.code, 4401);
    destroy(anon);
    const ok = connect(srv, 'req', { params: { token: hs256({ sub: 'u' }) } });
    await synced(ok);
    destroy(ok);
  } finally {
    await srv.stop();
  }
  const srv2 = await startServer({ config: config({ read_only: true }) });
  const origWarn = console.warn;
  console.warn = () => {}; // y-websocket logs the refusal of the anonymous edit
  try {
    const anon = connect(srv2, 'ro-all');
    await synced(anon);
    anon.doc.getText('t').insert(0, 'anon');
    const src = new Y.Doc();
    src.getText('t').insert(0, 'api');
    await apiResult(srv2, 'doc_update', { room: 'ro-all', update: b64(Y.encodeStateAsUpdate(src)) });
    src.destroy();
    await until(() => anon.doc.getText('t').toString().includes('api'), 'anonymous client receives');
    await sleep(200);
    assert.equal(await serverText(srv2, 'ro-all'), 'api');
    destroy(anon);
  } finally {
    console.warn = origWarn;
    await srv2.stop();
  }
});
