#!/usr/bin/env node
'use strict';
// One npm peer on one trace, in its own process (run by run.js, with --expose-gc):
//   node --expose-gc peer.js --peer yjs --trace TRACE.json.gz [--runs 3] [--budget-ms 60000]
// Prints one JSON line with the same fields as td_crdtbench (see README.md for what each
// measures), plus version, notes, per-measurement run counts and skips.

const { performance } = require('node:perf_hooks');
const path = require('node:path');
const { loadTrace } = require('../../tests/crdt/lib/trace');
const { PEERS, OverBudget } = require('./peers');

function args() {
  const o = { runs: 3, budgetMs: 60000 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--peer') o.peer = a[++i];
    else if (a[i] === '--trace') o.trace = a[++i];
    else if (a[i] === '--runs') o.runs = Number(a[++i]);
    else if (a[i] === '--budget-ms') o.budgetMs = Number(a[++i]);
    else throw new Error(`unknown argument ${a[i]}`);
  }
  if (!o.peer || !o.trace) throw new Error('usage: peer.js --peer NAME --trace FILE [--runs N] [--budget-ms MS]');
  return o;
}

const gc = global.gc || (() => {});
const median = (xs) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function time(fn) {
  const t0 = performance.now();
  const r = fn();
  return [performance.now() - t0, r];
}

function main() {
  const o = args();
  const name = path.basename(o.trace).replace(/\.json(\.gz)?$/, '');
  const out = { engine: o.peer, trace: name };
  let peer;
  try {
    peer = PEERS[o.peer]();
  } catch (e) {
    out.error = `cannot load: ${e.message.split('\n')[0]}`;
    console.log(JSON.stringify(out));
    return;
  }
  const trace = loadTrace(o.trace);
  Object.assign(out, { version: peer.version, txns: trace.txns.length, notes: peer.notes, runs: {}, skipped: {} });
  const free = (d) => {
    try {
      peer.free(d);
    } catch {
      /* already freed or not freeable */
    }
  };
  let ok = true;

  // Every replay/apply run is guarded: once its projected time exceeds the budget it stops
  // (OverBudget) and that measurement is reported as skipped. Later runs reuse the first
  // run's time to decide how many runs to do (1 if a run takes over a third of the budget).
  const runsFor = (ms) => (ms > o.budgetMs / 3 ? 1 : o.runs);
  const guarded = (what, fn) => {
    try {
      return fn();
    } catch (e) {
      if (!(e instanceof OverBudget)) throw e;
      out.skipped[what] = e.message;
      return null;
    }
  };

  // Memory: heap (+ external, which holds ArrayBuffers) held by the final document after a full
  // GC, and the RSS growth (which includes wasm linear memory and never shrinks). Measured on
  // the first replay, before anything else has grown the heap.
  gc();
  gc();
  const m0 = process.memoryUsage();
  const first = guarded('replay', () => time(() => peer.replay(trace, false, o.budgetMs)));
  if (!first) {
    out.skipped.all = `replay ${out.skipped.replay}`;
    out.ok = null;
    console.log(JSON.stringify(out));
    return;
  }
  let [t, r] = first;
  gc();
  gc();
  const m1 = process.memoryUsage();
  out.mem_bytes = m1.heapUsed + m1.external - (m0.heapUsed + m0.external);
  out.rss_bytes = m1.rss - m0.rss;
  ok = ok && peer.text(r.doc) === trace.endContent;
  free(r.doc);
  r = null;
  const replay = [t];
  const nReplay = runsFor(t);
  for (let i = 1; i < nReplay; i++) {
    gc();
    const [ti, ri] = time(() => peer.replay(trace, false));
    replay.push(ti);
    free(ri.doc);
  }
  out.replay_ms = median(replay);
  out.runs.replay = replay.length;

  // Replay while producing each txn's update; keep the last run's updates and document.
  let last = null;
  const ru = [];
  for (let i = 0; i < nReplay; i++) {
    if (last) free(last.doc);
    last = null;
    gc();
    const [ti, ri] = time(() => peer.replay(trace, true));
    ru.push(ti);
    last = ri;
  }
  out.replay_updates_ms = median(ru);
  out.runs.replay_updates = ru.length;
  ok = ok && peer.text(last.doc) === trace.endContent;
  const updates = last.updates;
  out.updates = updates.length;
  out.update_bytes = updates.reduce((s, u) => s + u.length, 0);

  // Apply every per-txn update, one at a time, to a fresh document.
  gc();
  const fa = guarded('apply_updates', () => time(() => peer.apply(updates, o.budgetMs)));
  if (fa) {
    const ap = [fa[0]];
    ok = ok && peer.text(fa[1]) === trace.endContent;
    free(fa[1]);
    const n = runsFor(fa[0]);
    for (let i = 1; i < n; i++) {
      gc();
      const [ti, d] = time(() => peer.apply(updates));
      ap.push(ti);
      ok = ok && peer.text(d) === trace.endContent;
      free(d);
    }
    out.apply_updates_ms = median(ap);
    out.runs.apply_updates = ap.length;
  }

  // Encode the final document, then load that encoding into a fresh document.
  const enc = [];
  let bytes = null;
  for (let i = 0; i < (i === 0 ? 1 : runsFor(enc[0])); i++) {
    gc();
    const [ti, b] = time(() => peer.encode(last.doc));
    enc.push(ti);
    bytes = b;
  }
  out.runs.encode = enc.length;
  out.encode_ms = median(enc);
  out.final_bytes = bytes.length;
  free(last.doc);
  const ld = [];
  for (let i = 0; i < (i === 0 ? 1 : runsFor(ld[0])); i++) {
    gc();
    const [ti, d] = time(() => peer.load(bytes));
    ld.push(ti);
    ok = ok && peer.text(d) === trace.endContent;
    free(d);
  }
  out.load_ms = median(ld);
  out.runs.load = ld.length;
  out.ok = ok;
  console.log(JSON.stringify(out));
}

main();
