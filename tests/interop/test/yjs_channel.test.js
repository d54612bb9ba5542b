'use strict';
// Yjs documents over channels ("yjs": true namespaces, docs/yjs.md): Y.Docs bound to one
// channel through clients/js/tandem-yjs-provider.js, with a JSON and a protobuf
// centrifuge-js client editing concurrently; the channel `ns:R` is the y-websocket room
// `ns:R`, so an unmodified WebsocketProvider edits the same document. Invalid updates get
// 107 and reach nobody; late joiners get the whole document through the doc_state rpc (past
// the channel history); the room log keeps it across kill -9.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Y = require('yjs');
const { WebsocketProvider } = require('y-websocket');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');
const { Centrifuge: CentrifugePb } = require('centrifuge/build/protobuf');

const { startServer, apiCall } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool, subscribe } = require('../lib/clients');
const { sleep, uniqueChannel } = require('../lib/util');
const { TandemYjsProvider } = require(path.join(__dirname, '../../../clients/js/tandem-yjs-provider.js'));

const pool = new ClientPool(Centrifuge);
const pbPool = new ClientPool(CentrifugePb);
const providers = [];
const wsProviders = new Set();
let srv;

const WAIT_MS = 8000;
const b64 = (u) => Buffer.from(u).toString('base64');

function yjsNamespaces() {
  return [
    {
      name: 'ydoc',
      yjs: true,
      history_size: 1000,
      history_ttl: '300s',
      force_recovery: true,
      allow_publish_for_subscriber: true,
      allow_history_for_subscriber: true,
    },
    {
      // A history far shorter than the edit history: late joiners need doc_state.
      name: 'yshort',
      yjs: true,
      history_size: 3,
      history_ttl: '300s',
      force_recovery: true,
      allow_publish_for_subscriber: true,
      allow_history_for_subscriber: true,
    },
  ];
}

function yjsConfig() {
  const cfg = testConfig();
  cfg.channel.namespaces.push(...yjsNamespaces());
  return cfg;
}

test.before(async () => {
  srv = await startServer({ config: yjsConfig() });
});

test.after(async () => {
  for (const p of providers.splice(0)) p.destroy();
  for (const p of wsProviders) {
    p.destroy();
    p.doc.destroy();
  }
  pool.closeAll();
  pbPool.closeAll();
  if (srv) await srv.stop();
});

async function bind(clientPool, channel, { binary = false, server = srv } = {}) {
  const { client } = await clientPool.connect(server.url);
  const doc = new Y.Doc();
  const provider = new TandemYjsProvider(client, channel, doc, { Y, binary });
  providers.push(provider);
  await provider.whenSynced();
  return { client, doc, provider };
}

/** An unmodified y-websocket client of room `room` (BroadcastChannel off). */
function wsConnect(server, room) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`ws://127.0.0.1:${server.port}/yjs`, room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
  });
  wsProviders.add(provider);
  return { doc, provider };
}

function wsDestroy(c) {
  c.provider.destroy();
  c.doc.destroy();
  wsProviders.delete(c.provider);
}

async function until(what, cond) {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The server's document of `room`, through the doc_state API. */
async function serverDoc(server, room) {
  const r = await apiCall(server, 'doc_state', { room });
  assert.ok(r.json && r.json.result, `doc_state: ${JSON.stringify(r.json)}`);
  const doc = new Y.Doc();
  Y.applyUpdate(doc, Buffer.from(r.json.result.update, 'base64'));
  return doc;
}

/** Text and map content (map keys sorted: their order depends on who set them first). */
function snapshot(doc) {
  const m = doc.getMap('m').toJSON();
  const sorted = Object.fromEntries(Object.keys(m).sort().map((k) => [k, m[k]]));
  return JSON.stringify({ t: doc.getText('t').toString(), m: sorted });
}

test('two clients edit one document concurrently and converge; a late joiner gets it', async () => {
  const channel = uniqueChannel('ydoc:conv');
  const a = await bind(pool, channel);
  const b = await bind(pbPool, channel, { binary: true }); // protobuf: raw bytes, rpc as bytes
  const ta = a.doc.getText('t');
  const tb = b.doc.getText('t');
  // Concurrent bursts: each side edits without waiting for the other.
  for (let i = 0; i < 20; i++) {
    ta.insert(0, `a${i} `);
    tb.insert(tb.length, `b${i} `);
    if (i % 5 === 4) {
      a.doc.getMap('m').set('k', `a${i}`);
      b.doc.getMap('m').set('k', `b${i}`);
    }
  }
  ta.delete(0, 3);
  await until('convergence', () => ta.toString() === tb.toString() &&
    a.doc.getMap('m').get('k') === b.doc.getMap('m').get('k') &&
    (ta.toString().match(/b\d+ /g) || []).length === 20 && (tb.toString().match(/a\d+ /g) || []).length === 19);
  assert.deepEqual(Y.encodeStateVector(a.doc), Y.encodeStateVector(b.doc));

  // A late joiner (JSON and protobuf) gets the document from the server's room.
  for (const [p, binary] of [[pool, false], [pbPool, true]]) {
    const c = await bind(p, channel, { binary });
    assert.equal(c.doc.getText('t').toString(), ta.toString());
    assert.equal(c.doc.getMap('m').get('k'), a.doc.getMap('m').get('k'));
  }
  assert.equal(snapshot(await serverDoc(srv, channel)), snapshot(a.doc));
});

test('a late joiner gets the whole document even when the history kept only its tail', async () => {
  const channel = uniqueChannel('yshort:long');
  const a = await bind(pool, channel);
  const t = a.doc.getText('t');
  for (let i = 0; i < 30; i++) {
    t.insert(t.length, `${i},`);
    await sleep(2);
  }
  const want = Array.from({ length: 30 }, (_, i) => `${i},`).join('');
  let doc;
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; await sleep(20)) {
    doc = await serverDoc(srv, channel);
    if (doc.getText('t').toString() === want) break;
  }
  assert.equal(doc.getText('t').toString(), want);
  // The channel history holds 3 publications: it alone could not rebuild the text.
  const { client } = await pool.connect(srv.url);
  const { sub } = await subscribe(client, channel);
  const hist = await sub.history({ since: { offset: 0, epoch: '' }, limit: 100 });
  assert.equal(hist.publications.length, 3);
  const c = await bind(pool, channel);
  assert.equal(c.doc.getText('t').toString(), want);
});

test('doc_state rpc: only for a subscribed channel of a "yjs" namespace', async () => {
  const channel = uniqueChannel('ydoc:rpc');
  const { client } = await pool.connect(srv.url);
  await assert.rejects(client.rpc('doc_state', { channel }), (err) => err.code === 103);
  await assert.rejects(client.rpc('other', { channel }), (err) => err.code === 108);
  const { sub } = await subscribe(client, channel);
  const empty = await client.rpc('doc_state', { channel });
  assert.deepEqual(empty.data, { update: 'AAA=', sv: 'AA==' }); // an empty document
  const d = new Y.Doc();
  d.getText('t').insert(0, 'rpc');
  await sub.publish(b64(Y.encodeStateAsUpdate(d)));
  const sv = b64(Y.encodeStateVector(new Y.Doc()));
  const full = await client.rpc('doc_state', { channel, sv });
  const e = new Y.Doc();
  Y.applyUpdate(e, Buffer.from(full.data.update, 'base64'));
  assert.equal(e.getText('t').toString(), 'rpc');
  // Against a state vector holding everything: an empty diff.
  const none = await client.rpc('doc_state', { channel, sv: b64(Y.encodeStateVector(e)) });
  assert.equal(none.data.update, 'AAA=');
  // The server's state vector comes with every answer: e holds exactly the server's state.
  assert.equal(none.data.sv, b64(Y.encodeStateVector(e)));
  assert.equal(full.data.sv, none.data.sv);
  await assert.rejects(client.rpc('doc_state', { channel, sv: 'BQ==' }), (err) => err.code === 107);
  await assert.rejects(client.rpc('doc_state', [channel]), (err) => err.code === 107);
  const plain = uniqueChannel('nohistory:p');
  await subscribe(client, plain);
  await assert.rejects(client.rpc('doc_state', { channel: plain }), (err) => err.code === 108);
});

test('an invalid update gets 107 and reaches neither subscribers, history nor the room', async () => {
  const channel = uniqueChannel('ydoc:bad');
  const a = await bind(pool, channel);
  const ws = wsConnect(srv, channel);
  await until('y-websocket synced', () => ws.provider.synced);
  let wsUpdates = 0;
  ws.doc.on('update', () => wsUpdates++);
  const { client } = await pool.connect(srv.url);
  const { sub } = await subscribe(client, channel);
  const seen = [];
  a.provider.sub.on('publication', (ctx) => seen.push(ctx.data));

  for (const data of ['not base64!', Buffer.from([1, 2, 255, 255]).toString('base64'), { x: 1 }, 42]) {
    await assert.rejects(sub.publish(data), (err) => err.code === 107, `publish ${JSON.stringify(data)}`);
  }
  const api = await apiCall(srv, 'publish', { channel, data: 'AQL/' });
  assert.equal(api.json.error && api.json.error.code, 107);

  // A duplicate of what the server already has publishes nothing but succeeds.
  a.doc.getText('t').insert(0, 'ok');
  await until('the valid edit', () => seen.length === 1);
  const dup = b64(Y.encodeStateAsUpdate(a.doc));
  await sub.publish(dup);
  const apiDup = await apiCall(srv, 'publish', { channel, data: dup });
  assert.deepEqual(apiDup.json, { result: {} });
  // A valid edit from the raw client arrives after all the refused ones: they were never sent.
  const other = new Y.Doc();
  other.getText('t').insert(0, 'x');
  await sub.publish(b64(Y.encodeStateAsUpdate(other)));
  await until('the second valid edit', () => seen.length === 2);
  await sleep(100);
  assert.equal(seen.length, 2);
  for (const d of seen) assert.equal(typeof d, 'string');
  const hist = await sub.history({ since: { offset: 0, epoch: '' }, limit: 100 });
  assert.equal(hist.publications.length, 2);
  assert.equal(a.doc.getText('t').toString().length, 3);
  // The y-websocket client got exactly the two valid edits.
  await until('y-websocket has both edits', () => ws.doc.getText('t').toString().length === 3);
  assert.equal(wsUpdates, 2);
  assert.equal((await serverDoc(srv, channel)).getText('t').toString(), a.doc.getText('t').toString());
  wsDestroy(ws);
});

test('y-websocket and channel clients edit one document; late joiner; kill -9 keeps it', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-ydocmix-'));
  let s = await startServer({ config: yjsConfig(), dataDir });
  const room = 'ydoc:mixed';
  try {
    const ws = wsConnect(s, room);
    const ch = await bind(pool, room, { server: s });
    await until('y-websocket synced', () => ws.provider.synced);
    const wt = ws.doc.getText('t');
    const ct = ch.doc.getText('t');
    // Both edit the same Y.Text and Y.Map at once, with random pauses.
    const rnd = (n) => Math.floor(Math.random() * n);
    const editor = async (doc, tag) => {
      const t = doc.getText('t');
      for (let i = 0; i < 25; i++) {
        t.insert(rnd(t.length + 1), `${tag}${i} `);
        if (i % 4 === 0) doc.getMap('m').set(`${tag}`, i);
        if (i % 6 === 5) doc.getMap('m').set('shared', `${tag}${i}`);
        if (i % 7 === 6 && t.length > 4) t.delete(rnd(t.length - 2), 1);
        await sleep(rnd(15));
      }
    };
    await Promise.all([editor(ws.doc, 'w'), editor(ch.doc, 'c')]);
    await until('convergence', () => snapshot(ws.doc) === snapshot(ch.doc) &&
      ws.doc.getMap('m').get('w') === 24 && ws.doc.getMap('m').get('c') === 24 &&
      ch.doc.getMap('m').get('w') === 24 && ch.doc.getMap('m').get('c') === 24);
    assert.deepEqual(Y.encodeStateVector(ws.doc), Y.encodeStateVector(ch.doc));
    assert.equal(ct.toString(), wt.toString());
    // The server's room holds the same document.
    let server;
    for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; await sleep(20)) {
      server = await serverDoc(s, room);
      if (snapshot(server) === snapshot(ws.doc)) break;
    }
    assert.equal(snapshot(server), snapshot(ws.doc));
    const want = snapshot(ws.doc);

    // Both leave; a third client joins over the channel later and gets everything.
    wsDestroy(ws);
    ch.provider.destroy();
    ch.client.disconnect();
    await sleep(50);
    const late = await bind(pool, room, { server: s });
    assert.equal(snapshot(late.doc), want);
    late.provider.destroy();

    // A crash: the room log survives, the channel history (memory) does not.
    await s.kill();
    s = await startServer({ config: yjsConfig(), dataDir });
    const after = await bind(pool, room, { server: s });
    assert.equal(snapshot(after.doc), want);
    const ws2 = wsConnect(s, room);
    await until('y-websocket after restart', () => ws2.provider.synced && snapshot(ws2.doc) === want);
    // Edits keep flowing both ways after the restart.
    ws2.doc.getText('t').insert(0, 'W!');
    after.doc.getText('t').insert(0, 'C!');
    await until('post-restart convergence', () => snapshot(ws2.doc) === snapshot(after.doc) &&
      ws2.doc.getText('t').toString().includes('W!') && ws2.doc.getText('t').toString().includes('C!'));
    wsDestroy(ws2);
  } finally {
    await s.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('API publishes into a "yjs" channel are room updates and survive a restart', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-ydocchan-'));
  const doc = new Y.Doc();
  const updates = [];
  doc.on('update', (u) => updates.push(u));
  doc.getText('t').insert(0, 'hello');
  doc.getText('t').insert(5, ' world'); // depends on the first insert
  let s = await startServer({ config: yjsConfig(), dataDir });
  try {
    const r1 = await apiCall(s, 'publish', { channel: 'ydoc:r', data: b64(updates[0]) });
    assert.equal(r1.json.result.offset, 1);
    await s.kill();
    s = await startServer({ config: yjsConfig(), dataDir });
    // A duplicate changes nothing: no publication, no offset.
    const dup = await apiCall(s, 'publish', { channel: 'ydoc:r', data: b64(updates[0]) });
    assert.deepEqual(dup.json, { result: {} });
    // An update building on the stored one integrates (it would wait as pending in an empty
    // document and publish nothing): the first publication of this process's channel.
    const r2 = await apiCall(s, 'publish', { channel: 'ydoc:r', data: b64(updates[1]) });
    assert.equal(r2.json.result.offset, 1);
    assert.equal((await serverDoc(s, 'ydoc:r')).getText('t').toString(), 'hello world');
    // doc_update on the room reaches the channel's subscribers as a publication.
    const { client } = await pool.connect(s.url);
    const { sub } = await subscribe(client, 'ydoc:r');
    const got = [];
    sub.on('publication', (ctx) => got.push(ctx.data));
    doc.getText('t').insert(0, '>');
    const up = await apiCall(s, 'doc_update', { room: 'ydoc:r', update: b64(updates[2]) });
    assert.deepEqual(up.json, { result: {} });
    await until('the doc_update publication', () => got.length === 1);
    const check = new Y.Doc();
    Y.applyUpdate(check, Y.encodeStateAsUpdate(await serverDoc(s, 'ydoc:r')));
    Y.applyUpdate(check, Buffer.from(got[0], 'base64'));
    assert.equal(check.getText('t').toString(), '>hello world');
  } finally {
    await s.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a "yjs" namespace needs yjs.enabled', async () => {
  const cfg = yjsConfig();
  cfg.yjs = { enabled: false };
  await assert.rejects(startServer({ config: cfg }), /yjs.enabled is false/);
});
