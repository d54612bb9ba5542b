'use strict';
// Loads the sequential editing traces (positions in code points; also used by bench/crdt) and converts positions to
// UTF-16 indexes as a replay goes, cheaply: only astral characters make the two differ, and
// the traces hold few of them, so their UTF-16 positions are kept in a sorted list.

const fs = require('node:fs');
const zlib = require('node:zlib');

function loadTrace(file) {
  let buf = fs.readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = zlib.gunzipSync(buf);
  return JSON.parse(buf.toString('utf8'));
}

class PosMap {
  constructor() {
    this.astral = []; // sorted UTF-16 indexes of astral characters (their high surrogate)
  }

  /** UTF-16 index of code-point index `cp`. */
  u16(cp) {
    let u = cp;
    for (const p of this.astral) {
      if (p < u) u++;
      else break;
    }
    return u;
  }

  /** Records an insert of `s` at UTF-16 index `at`. */
  insert(at, s) {
    const added = [];
    let i = 0;
    for (const ch of s) {
      if (ch.length === 2) added.push(at + i);
      i += ch.length;
    }
    if (this.astral.length === 0 && added.length === 0) return;
    const out = [];
    for (const p of this.astral) out.push(p >= at ? p + s.length : p);
    this.astral = out.concat(added).sort((a, b) => a - b);
  }

  /** Records a delete of `n` UTF-16 units at `at`. */
  delete(at, n) {
    if (this.astral.length === 0) return;
    const out = [];
    for (const p of this.astral) {
      if (p < at) out.push(p);
      else if (p >= at + n) out.push(p - n);
    }
    this.astral = out;
  }
}

/**
 * Calls `apply(kind, index, arg)` for each patch of `txn` in UTF-16 units: ('delete', i, n) and
 * ('insert', i, text). `pm` is a PosMap kept in step with the document.
 */
function forEachEdit(txn, pm, apply) {
  for (const [pos, del, ins] of txn.patches) {
    const at = pm.u16(pos);
    if (del > 0) {
      const end = pm.u16(pos + del);
      apply('delete', at, end - at);
      pm.delete(at, end - at);
    }
    if (ins && ins.length > 0) {
      apply('insert', at, ins);
      pm.insert(at, ins);
    }
  }
}

/** Writes Uint8Arrays as a (lib0 varUint length, bytes) record stream. */
function encodeRecords(list) {
  const parts = [];
  for (const u of list) {
    const len = [];
    let n = u.length;
    while (n >= 0x80) {
      len.push((n & 0x7f) | 0x80);
      n = Math.floor(n / 128);
    }
    len.push(n);
    parts.push(Buffer.from(len), Buffer.from(u.buffer, u.byteOffset, u.byteLength));
  }
  return Buffer.concat(parts);
}

module.exports = { loadTrace, PosMap, forEachEdit, encodeRecords };
