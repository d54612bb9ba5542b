'use strict';
// bench/yjs/client.js: one client process of bench/yjs/run.js (started with child_process.fork).
// It owns a set of editors (a Y.Doc + y-websocket WebsocketProvider each, `ws` as the WebSocket)
// and is driven by IPC messages from run.js:
//   {cmd:'connect', url, editors:[{room, idx}]}  -> {ev:'connected', ms, failed}
//   {cmd:'type', durationMs, intervalMs}         -> {ev:'typed', sent}
//   {cmd:'drain', quietMs, maxMs}                 -> {ev:'drained', ms}
//   {cmd:'report'}                                -> {ev:'report', ...}
//   {cmd:'close'}                                 -> exits
// Timestamps are process.hrtime (CLOCK_MONOTONIC, shared by all processes on the machine), so the
// send time recorded here and receive times recorded in another client process are comparable.

const crypto = require('node:crypto');
const WebSocket = require('ws');
const Y = require('yjs');
const { WebsocketProvider } = require('y-websocket');

process.setMaxListeners(0); // y-websocket adds a process 'exit' listener per provider
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

/** @type {{room:string, idx:number, doc:Y.Doc, text:Y.Text, provider:any, synced:boolean, closes:number, timer:any}[]} */
let editors = [];
// "client:clock" of each local edit -> send time (us)
const sent = new Map();
// "client:clock" -> [latest receive time among this process's receivers (us), receiver count]
const recv = new Map();
let lastRecvUs = 0;
let recvTotal = 0;
let typing = false;

function send(m) {
  process.send(m);
}

function onRemoteTransaction(ed, tr) {
  const t = nowUs();
  // Which edits did this transaction integrate? Editors only insert, so an edit is identified by
  // the ID (client, clock) of its first item: the client's clock before the transaction.
  for (const [client, after] of tr.afterState) {
    const before = tr.beforeState.get(client) || 0;
    if (after <= before || client === ed.doc.clientID) continue;
    lastRecvUs = t;
    recvTotal++;
    const k = `${client}:${before}`;
    const r = recv.get(k);
    if (r === undefined) recv.set(k, [t, 1]);
    else {
      if (t > r[0]) r[0] = t;
      r[1]++;
    }
  }
}

function connect(url, list) {
  const t0 = Date.now();
  let pending = list.length;
  let failed = 0;
  return new Promise((resolve) => {
    const done = () => {
      if (--pending === 0) resolve({ ms: Date.now() - t0, failed });
    };
    let i = 0;
    // Open in batches so that a thousand handshakes do not all start in the same tick.
    const batch = () => {
      for (let n = 0; n < 50 && i < list.length; n++, i++) {
        const { room, idx } = list[i];
        const doc = new Y.Doc();
        const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true });
        const ed = { room, idx, doc, text: doc.getText('t'), provider, synced: false, closes: 0, timer: null };
        provider.on('sync', (s) => {
          if (s && !ed.synced) {
            ed.synced = true;
            done();
          }
        });
        provider.on('connection-close', () => {
          ed.closes++;
        });
        doc.on('afterTransaction', (tr) => {
          if (tr.origin === provider) onRemoteTransaction(ed, tr);
        });
        editors.push(ed);
      }
      if (i < list.length) setTimeout(batch, 20);
    };
    batch();
    setTimeout(() => {
      if (pending > 0) {
        failed = pending;
        pending = 1;
        done();
      }
    }, 30000);
  });
}

const LETTERS = 'abcdefghijklmnopqrstuvwxyz ';

function typeFor(durationMs, intervalMs) {
  typing = true;
  let count = 0;
  const step = (ed) => {
    if (!typing) return;
    const len = ed.text.length;
    const pos = Math.floor(Math.random() * (len + 1));
    const n = 1 + Math.floor(Math.random() * 3);
    let s = '';
    for (let j = 0; j < n; j++) s += LETTERS[Math.floor(Math.random() * LETTERS.length)];
    const clock = Y.getState(ed.doc.store, ed.doc.clientID);
    sent.set(`${ed.doc.clientID}:${clock}`, nowUs());
    ed.text.insert(pos, s);
    count++;
    ed.timer = setTimeout(step, intervalMs * (0.5 + Math.random()), ed);
  };
  // Start each editor at a random phase of its interval; stop all of them after durationMs.
  for (const ed of editors) ed.timer = setTimeout(step, Math.random() * intervalMs, ed);
  return new Promise((resolve) => {
    setTimeout(() => {
      typing = false;
      for (const ed of editors) clearTimeout(ed.timer);
      resolve(count);
    }, durationMs);
  });
}

function drain(quietMs, maxMs) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const check = () => {
      const quiet = (nowUs() - lastRecvUs) / 1000;
      if (quiet >= quietMs || Date.now() - t0 >= maxMs) resolve(Date.now() - t0);
      else setTimeout(check, 100);
    };
    check();
  });
}

function report() {
  // Per room: the set of distinct text digests among this process's editors of the room.
  const rooms = {};
  let unsynced = 0;
  let closes = 0;
  for (const ed of editors) {
    const h = crypto.createHash('sha1').update(ed.text.toString()).digest('hex').slice(0, 16);
    (rooms[ed.room] ||= {})[h] = (rooms[ed.room][h] || 0) + 1;
    if (!ed.provider.synced) unsynced++;
    closes += ed.closes;
  }
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return {
    ev: 'report',
    sent: [...sent],
    recv: [...recv],
    recvTotal,
    rooms,
    unsynced,
    closes,
    cpuS: (cpu.user + cpu.system) / 1e6,
    rssMiB: mem.rss / 1048576,
  };
}

process.on('message', async (m) => {
  switch (m.cmd) {
    case 'connect': {
      const r = await connect(m.url, m.editors);
      send({ ev: 'connected', ...r });
      break;
    }
    case 'type': {
      const n = await typeFor(m.durationMs, m.intervalMs);
      send({ ev: 'typed', sent: n });
      break;
    }
    case 'drain': {
      const ms = await drain(m.quietMs, m.maxMs);
      send({ ev: 'drained', ms });
      break;
    }
    case 'report':
      send(report());
      break;
    case 'close':
      typing = false;
      for (const ed of editors) {
        clearTimeout(ed.timer);
        ed.provider.destroy();
      }
      editors = [];
      setTimeout(() => process.exit(0), 200);
      break;
    default:
      break;
  }
});
process.on('disconnect', () => process.exit(0));
