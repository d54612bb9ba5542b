'use strict';
// The npm peers of bench/crdt, behind one interface:
//   replay(trace, withUpdates) -> {doc, updates}   one transaction (or commit/change) per txn
//   text(doc), apply(updates) -> doc, encode(doc) -> bytes, load(bytes) -> doc, free(doc)
// `notes` says, per measurement, what the peer's native equivalent is.

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { PosMap, forEachEdit } = require('../../tests/crdt/lib/trace');

function pkgVersion(name) {
  const file = path.join(__dirname, 'node_modules', name, 'package.json');
  return JSON.parse(fs.readFileSync(file, 'utf8')).version;
}

/** Calls ins(i, s) / del(i, n) for each patch; positions in UTF-16 units or code points. */
function edits(txn, units, pm, ins, del) {
  if (units === 'cp') {
    for (const [pos, d, s] of txn.patches) {
      if (d > 0) del(pos, d);
      if (s && s.length > 0) ins(pos, s);
    }
    return;
  }
  forEachEdit(txn, pm, (k, i, a) => (k === 'delete' ? del(i, a) : ins(i, a)));
}

/**
 * Work-loop guard: check(i, n) throws once the elapsed time, projected linearly to all n items,
 * exceeds the budget (checked every 256 items, after 2% of the work and 1 s). A quadratic
 * peer is caught early, with the progress in the message.
 */
class OverBudget extends Error {}
function guard(budgetMs) {
  if (!budgetMs) return () => {};
  const t0 = performance.now();
  return (i, n) => {
    if ((i & 255) !== 0 || i < n * 0.02) return;
    const el = performance.now() - t0;
    if (el > 1000 && (el * n) / i > budgetMs) {
      throw new OverBudget(`projected ${((el * n) / i / 1000).toFixed(0)} s > ${budgetMs / 1000} s (${i} of ${n} done in ${(el / 1000).toFixed(1)} s)`);
    }
  };
}

const PEERS = {
  yjs: () => {
    const Y = require('yjs');
    return {
      name: 'yjs',
      version: pkgVersion('yjs'),
      notes: {
        replay: 'Y.Doc (clientID 1, gc on), one doc.transact per txn, UTF-16 positions',
        updates: 'the v1 update of each transaction (doc.on("update")), applied with Y.applyUpdate',
        encode: 'Y.encodeStateAsUpdate (v1)',
        load: 'Y.applyUpdate of that state to a fresh Y.Doc',
      },
      replay(trace, withUpdates, budgetMs) {
        const check = guard(budgetMs);
        const n = trace.txns.length;
        let k = 0;
        const doc = new Y.Doc();
        doc.clientID = 1;
        const text = doc.getText('text');
        const updates = [];
        if (withUpdates) doc.on('update', (u) => updates.push(u));
        const pm = new PosMap();
        const ins = (i, s) => text.insert(i, s);
        const del = (i, n) => text.delete(i, n);
        for (const txn of trace.txns) {
          check(k++, n);
          doc.transact(() => edits(txn, 'utf16', pm, ins, del));
        }
        return { doc, updates };
      },
      text: (doc) => doc.getText('text').toString(),
      apply(updates, budgetMs) {
        const check = guard(budgetMs);
        const n = updates.length;
        let k = 0;
        const doc = new Y.Doc();
        for (const u of updates) {
          check(k++, n);
          Y.applyUpdate(doc, u);
        }
        return doc;
      },
      encode: (doc) => Y.encodeStateAsUpdate(doc),
      load(bytes) {
        const doc = new Y.Doc();
        Y.applyUpdate(doc, bytes);
        return doc;
      },
      free: (doc) => doc.destroy(),
    };
  },

  ywasm: () => {
    const Y = require('ywasm');
    return {
      name: 'ywasm',
      version: pkgVersion('ywasm'),
      notes: {
        replay: 'YDoc (clientID 1, gc on), one beginTransaction/commit per txn, UTF-16 positions',
        updates: 'the v1 update of each transaction (doc.onUpdate), applied with applyUpdate',
        encode: 'encodeStateAsUpdate (v1)',
        load: 'applyUpdate of that state to a fresh YDoc',
      },
      replay(trace, withUpdates, budgetMs) {
        const check = guard(budgetMs);
        const n = trace.txns.length;
        let k = 0;
        const doc = new Y.YDoc({ clientID: 1, gc: true });
        const text = doc.getText('text');
        const updates = [];
        let obs = null;
        if (withUpdates) obs = doc.onUpdate((u) => updates.push(u));
        const pm = new PosMap();
        for (const txn of trace.txns) {
          check(k++, n);
          const tx = doc.beginTransaction();
          edits(
            txn,
            'utf16',
            pm,
            (i, s) => text.insert(i, s, undefined, tx),
            (i, n) => text.delete(i, n, tx),
          );
          tx.commit();
          tx.free();
        }
        if (obs) obs.free();
        return { doc, updates };
      },
      text: (doc) => doc.getText('text').toString(),
      apply(updates, budgetMs) {
        const check = guard(budgetMs);
        const n = updates.length;
        let k = 0;
        const doc = new Y.YDoc({});
        for (const u of updates) {
          check(k++, n);
          Y.applyUpdate(doc, u);
        }
        return doc;
      },
      encode: (doc) => Y.encodeStateAsUpdate(doc),
      load(bytes) {
        const doc = new Y.YDoc({});
        Y.applyUpdate(doc, bytes);
        return doc;
      },
      free: (doc) => doc.free(),
    };
  },

  loro: () => {
    const { LoroDoc } = require('loro-crdt');
    return {
      name: 'loro',
      version: pkgVersion('loro-crdt'),
      notes: {
        replay: 'LoroDoc (peer 1), LoroText edits, one commit() per txn, UTF-16 positions',
        updates: 'no Yjs-style update: the bytes of each commit from subscribeLocalUpdates (Loro "update" blobs), each imported with doc.import()',
        encode: 'doc.export({mode:"snapshot"}) (state + history)',
        load: 'LoroDoc.fromSnapshot',
      },
      replay(trace, withUpdates, budgetMs) {
        const check = guard(budgetMs);
        const n = trace.txns.length;
        let k = 0;
        const doc = new LoroDoc();
        doc.setPeerId(1);
        const text = doc.getText('text');
        const updates = [];
        let unsub = null;
        if (withUpdates) unsub = doc.subscribeLocalUpdates((u) => updates.push(u));
        const pm = new PosMap();
        const ins = (i, s) => text.insert(i, s);
        const del = (i, n) => text.delete(i, n);
        for (const txn of trace.txns) {
          check(k++, n);
          edits(txn, 'utf16', pm, ins, del);
          doc.commit();
        }
        if (unsub) unsub();
        return { doc, updates };
      },
      text: (doc) => doc.getText('text').toString(),
      apply(updates, budgetMs) {
        const check = guard(budgetMs);
        const n = updates.length;
        let k = 0;
        const doc = new LoroDoc();
        for (const u of updates) {
          check(k++, n);
          doc.import(u);
        }
        return doc;
      },
      encode: (doc) => doc.export({ mode: 'snapshot' }),
      load: (bytes) => LoroDoc.fromSnapshot(bytes),
      free: (doc) => doc.free(),
    };
  },

  'diamond-types': () => {
    const dt = require('diamond-types-node');
    return {
      name: 'diamond-types',
      version: pkgVersion('diamond-types-node'),
      notes: {
        replay: 'dt Doc, ins/del per patch (no transaction concept), code-point positions',
        updates: 'no Yjs-style update: per txn, doc.getPatchSince(version before the txn), each merged with mergeBytes()',
        encode: 'doc.toBytes() (full oplog)',
        load: 'Doc.fromBytes',
      },
      replay(trace, withUpdates, budgetMs) {
        const check = guard(budgetMs);
        const n = trace.txns.length;
        let k = 0;
        const doc = new dt.Doc('bench');
        const updates = [];
        const ins = (i, s) => doc.ins(i, s);
        const del = (i, n) => doc.del(i, n);
        for (const txn of trace.txns) {
          check(k++, n);
          const v = withUpdates ? doc.getLocalVersion() : null;
          edits(txn, 'cp', null, ins, del);
          if (withUpdates) updates.push(doc.getPatchSince(v));
        }
        return { doc, updates };
      },
      text: (doc) => doc.get(),
      apply(updates, budgetMs) {
        const check = guard(budgetMs);
        const n = updates.length;
        let k = 0;
        const doc = new dt.Doc('peer');
        for (const u of updates) {
          check(k++, n);
          doc.mergeBytes(u);
        }
        return doc;
      },
      encode: (doc) => doc.toBytes(),
      load: (bytes) => dt.Doc.fromBytes(bytes),
      free: (doc) => doc.free(),
    };
  },

  automerge: () => {
    const A = require('@automerge/automerge');
    return {
      name: 'automerge',
      version: pkgVersion('@automerge/automerge'),
      notes: {
        replay: 'Automerge.change per txn with Automerge.splice on doc.text, code-point positions (plus one initial change creating the text)',
        updates: 'no Yjs-style update: Automerge.getLastLocalChange after each change, applied with applyChanges([change]) one at a time',
        encode: 'Automerge.save',
        load: 'Automerge.load',
      },
      replay(trace, withUpdates, budgetMs) {
        const check = guard(budgetMs);
        const n = trace.txns.length;
        let k = 0;
        let doc = A.init({ actor: '01' });
        doc = A.change(doc, (d) => {
          d.text = '';
        });
        const updates = [];
        if (withUpdates) updates.push(A.getLastLocalChange(doc));
        for (const txn of trace.txns) {
          check(k++, n);
          doc = A.change(doc, (d) =>
            edits(
              txn,
              'cp',
              null,
              (i, s) => A.splice(d, ['text'], i, 0, s),
              (i, n) => A.splice(d, ['text'], i, n),
            ),
          );
          if (withUpdates) updates.push(A.getLastLocalChange(doc));
        }
        return { doc, updates };
      },
      text: (doc) => doc.text,
      apply(updates, budgetMs) {
        const check = guard(budgetMs);
        const n = updates.length;
        let k = 0;
        let doc = A.init();
        for (const u of updates) {
          check(k++, n);
          [doc] = A.applyChanges(doc, [u]);
        }
        return doc;
      },
      encode: (doc) => A.save(doc),
      load: (bytes) => A.load(bytes),
      free: (doc) => A.free(doc),
    };
  },
};

module.exports = { PEERS, OverBudget };
