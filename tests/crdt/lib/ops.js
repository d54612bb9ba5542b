'use strict';
// Random `tandem doc edit` ops (JSON), generated against a yjs model document that applies
// each op as it is made, so every op is valid and changes something.

const { randString, randAny, textBoundaries, KEYS } = require('./gen');

const EDIT_SCHEMA = { t: 'text', notes: 'text', m: 'map', a: 'array' };

/** Applies one edit op to a yjs doc in its own transaction (what `tandem doc edit` must do). */
function applyOp(doc, op) {
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
        throw new Error(`unknown op ${op.op}`);
    }
  });
}

/** One random op valid for `model` (not applied). */
function randOp(rng, model) {
  const kind = rng.weighted([
    [5, 'text'],
    [3, 'map'],
    [3, 'array'],
  ]);
  if (kind === 'text') {
    const root = rng.chance(0.75) ? 't' : 'notes';
    const b = textBoundaries(model.getText(root));
    if (b.length > 1 && rng.chance(0.35)) {
      const i = rng.int(0, b.length - 2);
      const j = rng.int(i + 1, Math.min(b.length - 1, i + 1 + rng.int(0, 8)));
      return { op: 'text_delete', root, index: b[i], len: b[j] - b[i] };
    }
    return { op: 'text_insert', root, index: rng.pick(b), text: randString(rng, 10) };
  }
  if (kind === 'map') {
    const m = model.getMap('m');
    const keys = [...m.keys()];
    if (keys.length > 0 && rng.chance(0.25)) return { op: 'map_delete', root: 'm', key: rng.pick(keys) };
    return { op: 'map_set', root: 'm', key: rng.pick(KEYS), value: randAny(rng) };
  }
  const a = model.getArray('a');
  if (a.length > 0 && rng.chance(0.3)) {
    const i = rng.int(0, a.length - 1);
    return { op: 'array_delete', root: 'a', index: i, len: rng.int(1, Math.min(4, a.length - i)) };
  }
  const values = [];
  const n = rng.int(1, 3);
  for (let i = 0; i < n; i++) values.push(randAny(rng));
  return { op: 'array_insert', root: 'a', index: rng.int(0, a.length), values };
}

/**
 * Makes `n` random ops against `model`, applying each; returns {ops, updates} where updates are
 * the per-op updates yjs emitted (v1 or v2).
 */
function randOps(rng, model, n, { v2 = false } = {}) {
  const ops = [];
  const updates = [];
  const ev = v2 ? 'updateV2' : 'update';
  const f = (u) => updates.push(u);
  model.on(ev, f);
  for (let i = 0; i < n; i++) {
    const before = updates.length;
    const op = randOp(rng, model);
    applyOp(model, op);
    if (updates.length !== before + 1) throw new Error(`generator: op made ${updates.length - before} updates`);
    ops.push(op);
  }
  model.off(ev, f);
  return { ops, updates };
}

module.exports = { EDIT_SCHEMA, applyOp, randOp, randOps };
