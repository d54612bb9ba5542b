'use strict';
// Yjs over y-websocket: unmodified WebsocketProvider clients (yjs 13, y-websocket 3.1) sync
// through tandem's /yjs/<room> endpoint. Covers concurrent editing, a late joiner served by
// the server alone, persistence across SIGTERM and kill -9, awareness (relay and removal),
// and a malformed or oversized message closing only its own connection.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Y = require('yjs');
const { WebsocketProvider } = require('y-websocket');
const WebSocket = require('ws');

const { startServer } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { sleep, withTimeout } = require('../lib/util');

const WAIT_MS = 8000;
const providers = new Set();

test.after(() => {
  for (const p of providers) {
    p.destroy();
    p.doc.destroy();
  }
});

function yjsUrl(srv) {
  return `ws://127.0.0.1:${srv.port}/yjs`;
}

/** A provider on `room` with a fresh doc. BroadcastChannel is off: every byte goes through tandem. */
function connect(srv, room, opts = {}) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(yjsUrl(srv), room, doc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    ...opts,
  });
  providers.add(provider);
  return { doc, provider };
}

// Destroying the doc too stops the awareness timer, which would keep the process alive.
function destroy(c) {
  c.provider.destroy();
  c.doc.destroy();
  providers.delete(c.provider);
}

/** Polls `pred` every 10 ms until it returns true; rejects after `ms` naming `what`. */
async function until(pred, what, ms = WAIT_MS) {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(10);
  }
}

function synced(c, what = 'provider synced') {
  return until(() => c.provider.synced && c.provider.wsconnected, what);
}

function text(c, name = 't') {
  return c.doc.getText(name).toString();
}

function tmpDataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-yjs-'));
}

function snapshot(doc) {
  return JSON.stringify({
    t: doc.getText('t').toString(),
    m: doc.getMap('m').toJSON(),
    a: doc.getArray('a').toJSON(),
  });
}

test('three providers edit text, map and array concurrently and converge', async () => {
  const srv = await startServer({ config: testConfig() });
  try {
    const cs = [connect(srv, 'converge'), connect(srv, 'converge'), connect(srv, 'converge')];
    await Promise.all(cs.map((c) => synced(c)));
    let seed = 12345;
    const rnd = (n) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let arrayInserts = 0;
    await Promise.all(
      cs.map(async (c, who) => {
        for (let i = 0; i < 40; i++) {
          const t = c.doc.getText('t');
          const op = rnd(4);
          if (op === 0 && t.length > 0) t.delete(rnd(t.length), 1);
          else if (op <= 1) t.insert(rnd(t.length + 1), `${who}${i};`);
          else if (op === 2) c.doc.getMap('m').set(`k${rnd(5)}`, { who, i });
          else {
            c.doc.getArray('a').insert(0, [who * 100 + i]);
            arrayInserts++;
          }
          await sleep(rnd(15));
        }
      })
    );
    await until(
      () => snapshot(cs[0].doc) === snapshot(cs[1].doc) && snapshot(cs[1].doc) === snapshot(cs[2].doc),
      'three documents equal'
    );
    // Arrays are only inserted into: every insert is there, once.
    assert.equal(cs[0].doc.getArray('a').length, arrayInserts);
    for (const c of cs) destroy(c);
  } finally {
    await srv.stop();
  }
});

test('a late joiner gets the full state from the server alone', async () => {
  const srv = await startServer({ config: testConfig() });
  try {
    const a = connect(srv, 'late');
    await synced(a);
    a.doc.getText('t').insert(0, 'written by a');
    a.doc.getMap('m').set('x', 1);
    // Wait until the server has it: a second client sees it.
    const b = connect(srv, 'late');
    await until(() => text(b) === 'written by a', 'b sees a');
    destroy(a);
    destroy(b);
    await sleep(50);
    const late = connect(srv, 'late');
    await synced(late);
    assert.equal(text(late), 'written by a');
    assert.deepEqual(late.doc.getMap('m').toJSON(), { x: 1 });
    destroy(late);
  } finally {
    await srv.stop();
  }
});

for (const how of ['SIGTERM', 'kill -9']) {
  test(`documents survive a restart (${how}); connected clients reconnect and keep editing`, async () => {
    const dataDir = tmpDataDir();
    const cfg = testConfig();
    let srv = await startServer({ config: cfg, dataDir });
    const port = srv.port;
    try {
      // Room "dur": writers leave before the restart, so afterwards only the store has it.
      const w = connect(srv, 'dur');
      await synced(w);
      for (let i = 0; i < 20; i++) w.doc.getText('t').insert(w.doc.getText('t').length, `${i},`);
      w.doc.getArray('a').push(['x', 'y']);
      const o = connect(srv, 'dur');
      const want = w.doc.getText('t').toString();
      // Broadcasts follow durable appends: once o sees everything, it is stored.
      await until(() => text(o) === want && o.doc.getArray('a').length === 2, 'observer sees writes');
      destroy(w);
      destroy(o);
      // Room "live": k stays connected across the restart.
      const k = connect(srv, 'live');
      await synced(k);
      k.doc.getText('t').insert(0, 'before|');
      const k2 = connect(srv, 'live');
      await until(() => text(k2) === 'before|', 'k2 sees k');
      destroy(k2);

      if (how === 'SIGTERM') await srv.stop();
      else await srv.kill();
      srv = await startServer({ config: cfg, dataDir, args: ['--port', String(port)] });

      const n = connect(srv, 'dur');
      await synced(n);
      assert.equal(text(n), want);
      assert.deepEqual(n.doc.getArray('a').toJSON(), ['x', 'y']);
      destroy(n);

      await until(() => k.provider.wsconnected && k.provider.synced, 'k reconnected', 10000);
      k.doc.getText('t').insert(k.doc.getText('t').length, 'after');
      const n2 = connect(srv, 'live');
      await until(() => text(n2) === 'before|after', 'n2 sees edits from before and after');
      n2.doc.getText('t').insert(0, '>');
      await until(() => text(k) === '>before|after', 'k sees n2');
      destroy(k);
      destroy(n2);
    } finally {
      await srv.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
}

test('awareness is relayed, and removed when a client leaves or its connection drops', async () => {
  const srv = await startServer({ config: testConfig() });
  try {
    const a = connect(srv, 'aware');
    const b = connect(srv, 'aware');
    await Promise.all([synced(a), synced(b)]);
    a.provider.awareness.setLocalStateField('user', { name: 'A' });
    const aid = a.doc.clientID;
    await until(() => b.provider.awareness.getStates().get(aid)?.user?.name === 'A', 'b sees a');
    // A clean leave (y-websocket sends its own removal, tandem removes it too).
    destroy(a);
    await until(() => !b.provider.awareness.getStates().has(aid), 'a removed after leaving');

    // A dropped connection: no close handshake, no removal from the client. The server
    // removes the state it set and tells the others.
    const c = connect(srv, 'aware');
    await synced(c);
    c.provider.awareness.setLocalStateField('user', { name: 'C' });
    const cid = c.doc.clientID;
    await until(() => b.provider.awareness.getStates().get(cid)?.user?.name === 'C', 'b sees c');
    c.provider.shouldConnect = false;
    c.provider.ws.terminate();
    await until(() => !b.provider.awareness.getStates().has(cid), 'c removed after its socket dropped');
    destroy(c);

    // A late joiner gets the states that exist on join.
    b.provider.awareness.setLocalStateField('user', { name: 'B' });
    const d = connect(srv, 'aware');
    const bid = b.doc.clientID;
    await until(() => d.provider.awareness.getStates().get(bid)?.user?.name === 'B', 'd sees b');
    destroy(b);
    destroy(d);
  } finally {
    await srv.stop();
  }
});

/** A raw WebSocket on /yjs/<room>; resolves once open, with its messages and close event. */
async function rawClient(srv, room) {
  const ws = new WebSocket(`${yjsUrl(srv)}/${room}`);
  ws.binaryType = 'nodebuffer';
  const msgs = [];
  ws.on('message', (m) => msgs.push(m));
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), WAIT_MS, 'raw websocket open');
  return { ws, msgs, closed };
}

test('a malformed update and an oversized message close only the offending connection', async () => {
  const srv = await startServer({ config: testConfig({ yjs: { max_update_size: 65536 } }) });
  try {
    const a = connect(srv, 'bad');
    const b = connect(srv, 'bad');
    await Promise.all([synced(a), synced(b)]);
    a.doc.getText('t').insert(0, 'one');
    await until(() => text(b) === 'one', 'b sees one');

    // The server opens with sync step1 for an existing document too.
    const raw = await rawClient(srv, 'bad');
    await until(() => raw.msgs.length >= 1, 'raw client gets step1');
    assert.deepEqual([...raw.msgs[0].subarray(0, 2)], [0, 0]);
    // messageSync, update, varUint8Array(4 bytes that are not an update)
    raw.ws.send(Buffer.from([0, 2, 4, 5, 0xff, 0xff, 1]));
    const c1 = await withTimeout(raw.closed, WAIT_MS, 'malformed client closed');
    assert.equal(c1.code, 4400);
    assert.equal(c1.reason, 'malformed update');

    const big = await rawClient(srv, 'bad');
    const payload = Buffer.alloc(100000, 1);
    big.ws.send(Buffer.concat([Buffer.from([0, 2, 0xa0, 0x8d, 0x06]), payload]));
    const c2 = await withTimeout(big.closed, WAIT_MS, 'oversized client closed');
    assert.equal(c2.code, 4413);
    assert.equal(c2.reason, 'message too big');

    const junk = await rawClient(srv, 'bad');
    junk.ws.send(Buffer.from([0, 9]));
    const c3 = await withTimeout(junk.closed, WAIT_MS, 'garbage client closed');
    assert.equal(c3.code, 4400);

    // The others are unaffected and keep syncing, and the document is intact.
    b.doc.getText('t').insert(3, ' two');
    await until(() => text(a) === 'one two', 'a sees two');
    assert.ok(a.provider.wsconnected && b.provider.wsconnected);
    const late = connect(srv, 'bad');
    await until(() => text(late) === 'one two', 'late joiner sees the intact document');
    destroy(a);
    destroy(b);
    destroy(late);
  } finally {
    await srv.stop();
  }
});
