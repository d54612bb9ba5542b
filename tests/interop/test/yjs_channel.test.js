'use strict';
// Yjs documents over channels ("yjs": true namespaces, docs/yjs.md): Y.Docs bound to one
// channel through clients/js/tandem-yjs-provider.js, with a JSON and a protobuf
// centrifuge-js client editing concurrently; invalid updates get 107 and reach nobody.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const Y = require('yjs');
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
let srv;

const WAIT_MS = 8000;

test.before(async () => {
  const cfg = testConfig();
  cfg.channel.namespaces.push({
    name: 'ydoc',
    yjs: true,
    history_size: 1000,
    history_ttl: '300s',
    force_recovery: true,
    allow_publish_for_subscriber: true,
    allow_history_for_subscriber: true,
  });
  srv = await startServer({ config: cfg });
});

test.after(async () => {
  for (const p of providers.splice(0)) p.destroy();
  pool.closeAll();
  pbPool.closeAll();
  if (srv) await srv.stop();
});

async function bind(clientPool, channel, binary = false) {
  const { client } = await clientPool.connect(srv.url);
  const doc = new Y.Doc();
  const provider = new TandemYjsProvider(client, channel, doc, { Y, binary });
  providers.push(provider);
  await provider.whenSynced();
  return { client, doc, provider };
}

async function until(what, cond) {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('two clients edit one document concurrently and converge; a late joiner gets it', async () => {
  const channel = uniqueChannel('ydoc:conv');
  const a = await bind(pool, channel);
  const b = await bind(pbPool, channel, true); // protobuf client, raw update bytes
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
  const expectLen = (a0, b0) => a0 === b0 && ta.length > 0;
  await until('convergence', () => expectLen(ta.toString(), tb.toString()) &&
    a.doc.getMap('m').get('k') === b.doc.getMap('m').get('k') &&
    (ta.toString().match(/b\d+ /g) || []).length === 20 && (tb.toString().match(/a\d+ /g) || []).length === 19);
  assert.equal(ta.toString(), tb.toString());
  assert.deepEqual(Y.encodeStateVector(a.doc), Y.encodeStateVector(b.doc));

  // A late joiner rebuilds the document from the channel history.
  const c = await bind(pool, channel);
  assert.equal(c.doc.getText('t').toString(), ta.toString());
  assert.equal(c.doc.getMap('m').get('k'), a.doc.getMap('m').get('k'));
});

test('an invalid update gets 107 and reaches neither subscribers nor history', async () => {
  const channel = uniqueChannel('ydoc:bad');
  const a = await bind(pool, channel);
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
  const dup = Buffer.from(Y.encodeStateAsUpdate(a.doc)).toString('base64');
  await sub.publish(dup);
  // A valid edit from the raw client arrives after all the refused ones: they were never sent.
  const other = new Y.Doc();
  other.getText('t').insert(0, 'x');
  await sub.publish(Buffer.from(Y.encodeStateAsUpdate(other)).toString('base64'));
  await until('the second valid edit', () => seen.length === 2);
  await sleep(100);
  assert.equal(seen.length, 2);
  for (const d of seen) assert.equal(typeof d, 'string');
  const hist = await sub.history({ since: { offset: 0, epoch: '' }, limit: 100 });
  assert.equal(hist.publications.length, 2);
  assert.equal(a.doc.getText('t').toString().length, 3);
});

test('the channel document is rebuilt from the durable history after a restart', async () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-ydocchan-'));
  const cfg = testConfig();
  cfg.channel.namespaces.push({ name: 'ydoc', yjs: true, history_size: 100, history_ttl: '300s' });
  const b64 = (u) => Buffer.from(u).toString('base64');
  const doc = new Y.Doc();
  const updates = [];
  doc.on('update', (u) => updates.push(u));
  doc.getText('t').insert(0, 'hello');
  doc.getText('t').insert(5, ' world'); // depends on the first insert
  let s = await startServer({ config: cfg, dataDir });
  try {
    const r1 = await apiCall(s, 'publish', { channel: 'ydoc:r', data: b64(updates[0]) });
    assert.equal(r1.json.result.offset, 1);
    await s.stop();
    s = await startServer({ config: cfg, dataDir });
    // A duplicate changes nothing: no publication, no offset.
    const dup = await apiCall(s, 'publish', { channel: 'ydoc:r', data: b64(updates[0]) });
    assert.deepEqual(dup.json, { result: {} });
    // An update building on the stored one integrates (it would wait as pending in an empty
    // document and publish nothing).
    const r2 = await apiCall(s, 'publish', { channel: 'ydoc:r', data: b64(updates[1]) });
    assert.equal(r2.json.result.offset, 2);
  } finally {
    await s.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
