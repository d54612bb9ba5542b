#!/usr/bin/env node
'use strict';
// A stand-in for `tandem doc ...` built on the yjs package, implementing the same CLI contract.
// It exists to check the test harness itself: `TANDEM_BIN=tests/crdt/tools/yjs-doc-cli.js
// node --test test/` must pass, because here yjs plays both roles. Not used by `make test`.

const fs = require('node:fs');
const path = require('node:path');
const Y = require(path.join(__dirname, '../node_modules/yjs'));
const { canon } = require('../lib/ydoc');
const { loadTrace, PosMap, forEachEdit, encodeRecords } = require('../lib/trace');

function fail(msg) {
  process.stderr.write(`tandem doc: ${msg}\n`);
  process.exit(1);
}

function parse(argv) {
  const o = { pos: [], as: {}, v2: false, lazy: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--v2') o.v2 = true;
    else if (a === '--lazy') o.lazy = true;
    else if (a === '--out') o.out = val();
    else if (a === '--updates') o.updates = val();
    else if (a === '--text') o.text = val();
    else if (a === '--in') o.in = val();
    else if (a === '--client') o.client = Number(val());
    else if (a === '--as') {
      const [n, k] = val().split('=');
      o.as[n] = k;
    } else if (a.startsWith('--')) fail(`unknown option ${a}`);
    else o.pos.push(a);
  }
  return o;
}

function read(f) {
  try {
    return new Uint8Array(fs.readFileSync(f));
  } catch (e) {
    fail(`${f}: ${e.code || e.message}`);
  }
}

function apply(doc, u, v2) {
  const before = Y.encodeStateAsUpdate(doc);
  if (u.length === 0) throw new Error('empty update');
  if (v2) Y.applyUpdateV2(doc, u);
  else Y.applyUpdate(doc, u);
  // yjs ignores trailing bytes; re-decoding checks the update at least parses.
  if (v2) Y.decodeUpdateV2(u);
  else Y.decodeUpdate(u);
  return before;
}

function loadDoc(f, v2) {
  const doc = new Y.Doc();
  try {
    apply(doc, read(f), v2);
  } catch (e) {
    fail(`${f}: malformed update (${e.message})`);
  }
  return doc;
}

function out(o, bytes) {
  try {
    if (o.out) fs.writeFileSync(o.out, bytes);
    else process.stdout.write(bytes);
  } catch (e) {
    fail(`${o.out}: ${e.code || e.message}`);
  }
}

function state(doc, v2, sv) {
  return v2 ? Y.encodeStateAsUpdateV2(doc, sv) : Y.encodeStateAsUpdate(doc, sv);
}

function guessKind(type) {
  if (type._start === null) return type._map.size > 0 ? 'map' : 'text';
  let strings = true;
  for (let it = type._start; it !== null; it = it.right) {
    if (it.deleted) continue;
    const c = it.content.constructor.name;
    if (c !== 'ContentString' && c !== 'ContentFormat' && c !== 'ContentEmbed') strings = false;
  }
  return strings ? 'text' : 'array';
}

function show(doc, o) {
  if (o.text !== undefined) return process.stdout.write(doc.getText(o.text).toString());
  const res = {};
  const names = [...doc.share.keys()].sort();
  const kinds = {};
  for (const n of names) kinds[n] = o.as[n] || guessKind(doc.share.get(n));
  for (const n of names) {
    const k = kinds[n];
    if (k === 'text') res[n] = doc.getText(n).toString();
    else if (k === 'map') res[n] = doc.getMap(n).toJSON();
    else if (k === 'array') res[n] = doc.getArray(n).toJSON();
    else if (k === 'xml') res[n] = doc.getXmlFragment(n).toString();
    else fail(`unknown kind ${k}`);
  }
  process.stdout.write(JSON.stringify(canon(res)) + '\n');
}

function stats(doc, bytes) {
  let structs = 0;
  let items = 0;
  let gcs = 0;
  let deleted = 0;
  for (const list of doc.store.clients.values()) {
    for (const s of list) {
      structs++;
      if (s instanceof Y.Item) {
        items++;
        if (s.deleted) deleted++;
      } else gcs++;
    }
  }
  let pendingStructs = 0;
  let pendingDeletes = 0;
  if (doc.store.pendingStructs) pendingStructs = Y.decodeUpdateV2(doc.store.pendingStructs.update).structs.length;
  if (doc.store.pendingDs) {
    for (const r of Y.decodeUpdateV2(doc.store.pendingDs).ds.clients.values()) pendingDeletes += r.length;
  }
  const sv = {};
  for (const [c, k] of Y.decodeStateVector(Y.encodeStateVector(doc))) sv[String(c)] = k;
  return {
    bytes,
    clients: doc.store.clients.size,
    structs,
    items,
    gc_structs: gcs,
    deleted_items: deleted,
    pending_structs: pendingStructs,
    pending_deletes: pendingDeletes,
    roots: [...doc.share.keys()],
    state_vector: sv,
  };
}

function edit(o) {
  let ops;
  try {
    ops = JSON.parse(fs.readFileSync(o.pos[0], 'utf8'));
  } catch (e) {
    fail(`${o.pos[0]}: ${e.message}`);
  }
  if (!Array.isArray(ops)) fail('ops must be a JSON array');
  const doc = o.in ? loadDoc(o.in, o.v2) : new Y.Doc();
  doc.clientID = o.client === undefined ? 1 : o.client;
  const ups = [];
  doc.on(o.v2 ? 'updateV2' : 'update', (u) => ups.push(u));
  ops.forEach((op, i) => {
    try {
      if (typeof op !== 'object' || op === null || typeof op.root !== 'string') throw new Error('bad op');
      if (op.op === 'text_insert' && (typeof op.text !== 'string' || typeof op.index !== 'number')) throw new Error('bad text_insert');
      if (op.op === 'array_insert' && !Array.isArray(op.values)) throw new Error('bad array_insert');
      doc.transact(() => {
        switch (op.op) {
          case 'text_insert':
            return doc.getText(op.root).insert(op.index, op.text);
          case 'text_delete':
            return doc.getText(op.root).delete(op.index, op.len);
          case 'map_set':
            return doc.getMap(op.root).set(op.key, op.value);
          case 'map_delete':
            return doc.getMap(op.root).delete(op.key);
          case 'array_insert':
            return doc.getArray(op.root).insert(op.index, op.values);
          case 'array_delete':
            return doc.getArray(op.root).delete(op.index, op.len);
          default:
            throw new Error(`unknown op ${JSON.stringify(op.op)}`);
        }
      });
    } catch (e) {
      fail(`op ${i}: ${e.message}`);
    }
  });
  if (o.updates) fs.writeFileSync(o.updates, encodeRecords(ups));
  out(o, state(doc, o.v2));
}

function replay(o) {
  let t;
  try {
    t = loadTrace(o.pos[0]);
  } catch (e) {
    fail(`${o.pos[0]}: ${e.message}`);
  }
  if (!t || !Array.isArray(t.txns)) fail(`${o.pos[0]}: not a trace`);
  try {
    replayInto(t, o);
  } catch (e) {
    fail(`${o.pos[0]}: ${e.message}`);
  }
}

function checkIndex(i, max) {
  if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i > max) throw new Error(`index ${i} out of range`);
}

function replayInto(t, o) {
  const doc = new Y.Doc();
  doc.clientID = 1;
  const text = doc.getText('text');
  const ups = [];
  doc.on(o.v2 ? 'updateV2' : 'update', (u) => ups.push(u));
  const pm = new PosMap();
  if (t.startContent) {
    text.insert(0, t.startContent);
    pm.insert(0, t.startContent);
  }
  for (const txn of t.txns) {
    doc.transact(() =>
      forEachEdit(txn, pm, (k, i, a) => {
        checkIndex(i, text.length);
        if (k === 'delete') {
          checkIndex(i + a, text.length);
          text.delete(i, a);
        } else text.insert(i, a);
      }),
    );
  }
  if (text.toString() !== t.endContent) fail('final text differs from endContent');
  if (o.updates) fs.writeFileSync(o.updates, encodeRecords(ups));
  out(o, state(doc, o.v2));
}

function main() {
  const argv = process.argv.slice(2);
  if (argv[0] !== 'doc') fail('usage: doc SUBCOMMAND ...');
  const sub = argv[1];
  const o = parse(argv.slice(2));
  switch (sub) {
    case 'merge': {
      if (o.pos.length === 0) fail('merge needs at least one update');
      const ups = o.pos.map(read);
      if (o.lazy) {
        try {
          for (const u of ups) (o.v2 ? Y.decodeUpdateV2 : Y.decodeUpdate)(u);
          out(o, o.v2 ? Y.mergeUpdatesV2(ups) : Y.mergeUpdates(ups));
        } catch (e) {
          fail(`malformed update (${e.message})`);
        }
        return;
      }
      const doc = new Y.Doc();
      ups.forEach((u, i) => {
        try {
          apply(doc, u, o.v2);
        } catch (e) {
          fail(`${o.pos[i]}: malformed update (${e.message})`);
        }
      });
      return out(o, state(doc, o.v2));
    }
    case 'diff': {
      if (o.pos.length !== 2) fail('diff needs DOC and SV');
      const doc = loadDoc(o.pos[0], o.v2);
      let sv;
      try {
        sv = read(o.pos[1]);
        Y.decodeStateVector(sv);
      } catch (e) {
        fail(`${o.pos[1]}: malformed state vector`);
      }
      return out(o, state(doc, o.v2, sv));
    }
    case 'sv':
      return out(o, Y.encodeStateVector(loadDoc(o.pos[0], o.v2)));
    case 'show':
      return show(loadDoc(o.pos[0], o.v2), o);
    case 'stats':
      return process.stdout.write(JSON.stringify(stats(loadDoc(o.pos[0], o.v2), read(o.pos[0]).length)) + '\n');
    case 'replay':
      return replay(o);
    case 'edit':
      return edit(o);
    default:
      fail(`unknown subcommand ${sub}`);
  }
}

main();
