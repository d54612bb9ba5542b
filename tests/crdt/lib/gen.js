'use strict';
// Random content for the tests: unicode strings, Any values, and concurrent yjs sessions
// whose every emitted update is recorded.

const Y = require('yjs');
const { content } = require('./ydoc');

// Pools of characters; astral ones (emoji, musical symbols) are two UTF-16 units each.
const ASCII = 'abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789.,;\n<>&"\'';
const LATIN = ['é', 'ß', 'ñ', 'ø', 'Å', 'ü'];
const BMP = ['中', '文', 'Ж', 'я', 'א', '€', '\u200b', 'ﬁ', '\u00a0', 'ー'];
const ASTRAL = ['😀', '👍', '🏽', '𝄞', '🇫', '🇷', '🀄', '𠜎', '🎉'];
const SEQUENCES = ['e\u0301', '👍🏽', '🇫🇷', '👩‍💻', '\r\n', '\t'];

function randChar(rng) {
  return rng.weighted([
    [60, () => ASCII[rng.int(0, ASCII.length - 1)]],
    [8, () => rng.pick(LATIN)],
    [10, () => rng.pick(BMP)],
    [14, () => rng.pick(ASTRAL)],
    [6, () => rng.pick(SEQUENCES)],
    [1, () => '\u0000'],
  ])();
}

/** A random string of 1..max characters (code points or short sequences). */
function randString(rng, max = 6) {
  let s = '';
  const n = rng.int(1, max);
  for (let i = 0; i < n; i++) s += randChar(rng);
  return s;
}

const KEYS = ['a', 'b', 'c', 'key', 'k2', 'ключ', '😀', '', 'z z', '10'];

/**
 * A random JSON-compatible Any value (what `tandem doc edit` can express). `extra` also allows
 * values only yjs can produce (Uint8Array, undefined).
 */
function randAny(rng, depth = 0, extra = false) {
  const kinds = [
    [10, 'smallint'],
    [3, 'bigint'],
    [4, 'negint'],
    [4, 'float32'],
    [4, 'float64'],
    [12, 'string'],
    [4, 'bool'],
    [2, 'null'],
  ];
  if (depth < 2) kinds.push([4, 'object'], [4, 'array']);
  if (extra) kinds.push([2, 'bytes'], [1, 'undefined']);
  switch (rng.weighted(kinds)) {
    case 'smallint':
      return rng.int(0, 300);
    case 'bigint':
      return rng.pick([2147483647, 2147483648, -2147483648, 2 ** 40, 2 ** 53 - 1, 1e15 + 7]);
    case 'negint':
      return -rng.int(1, 100000);
    case 'float32':
      return rng.pick([0.5, -1.25, 1024.75, 3.5e10]);
    case 'float64':
      return rng.pick([0.1, -2.718281828459045, 1e-300, 1.7976931348623157e308, 123456.789]);
    case 'string':
      return rng.chance(0.1) ? '' : randString(rng, 8);
    case 'bool':
      return rng.chance(0.5);
    case 'null':
      return null;
    case 'bytes': {
      const b = new Uint8Array(rng.int(0, 5));
      for (let i = 0; i < b.length; i++) b[i] = rng.int(0, 255);
      return b;
    }
    case 'undefined':
      return undefined;
    case 'object': {
      const o = {};
      const n = rng.int(0, 3);
      for (let i = 0; i < n; i++) o[rng.pick(KEYS)] = randAny(rng, depth + 1, extra);
      return o;
    }
    case 'array': {
      const a = [];
      const n = rng.int(0, 3);
      for (let i = 0; i < n; i++) a.push(randAny(rng, depth + 1, extra));
      return a;
    }
  }
  throw new Error('unreachable');
}

/** Valid insert positions (UTF-16 indexes on code-point boundaries; an embed counts 1). */
function textBoundaries(ytext) {
  const pos = [0];
  let p = 0;
  for (const op of ytext.toDelta()) {
    if (typeof op.insert === 'string') {
      for (const ch of op.insert) {
        p += ch.length;
        pos.push(p);
      }
    } else {
      p += 1;
      pos.push(p);
    }
  }
  return pos;
}

function kindOf(v) {
  if (v instanceof Y.XmlText) return 'xmltext';
  if (v instanceof Y.XmlElement) return 'xmlelem';
  if (v instanceof Y.XmlFragment) return 'xmlfrag';
  if (v instanceof Y.Text) return 'text';
  if (v instanceof Y.Map) return 'map';
  if (v instanceof Y.Array) return 'array';
  return null;
}

/** Every shared type reachable from the roots of `schema`, with its kind and depth. */
function liveTypes(doc, schema) {
  const out = [];
  const walk = (type, depth) => {
    const kind = kindOf(type);
    out.push({ type, kind, depth });
    let children = [];
    if (kind === 'map') {
      type.forEach((v) => children.push(v));
    } else if (kind === 'array' || kind === 'xmlfrag' || kind === 'xmlelem') {
      children = type.toArray();
    }
    for (const c of children) if (kindOf(c)) walk(c, depth + 1);
  };
  for (const [name, kind] of Object.entries(schema)) {
    const root =
      kind === 'text'
        ? doc.getText(name)
        : kind === 'map'
          ? doc.getMap(name)
          : kind === 'array'
            ? doc.getArray(name)
            : doc.getXmlFragment(name);
    walk(root, 0);
  }
  return out;
}

/** A value for a map/array slot: mostly an Any, sometimes a fresh nested type. */
function randSlotValue(rng, depth, inArray) {
  if (depth < 3 && rng.chance(0.2)) {
    return rng.pick([() => new Y.Map(), () => new Y.Array(), () => new Y.Text()])();
  }
  // yjs refuses a bare undefined as an array element (nested inside objects it is fine).
  for (;;) {
    const v = randAny(rng, 0, true);
    if (!(inArray && v === undefined)) return v;
  }
}

function randRange(rng, bounds) {
  const i = rng.int(0, bounds.length - 2);
  const j = rng.int(i + 1, Math.min(bounds.length - 1, i + 1 + rng.int(0, 6)));
  return [bounds[i], bounds[j] - bounds[i]];
}

/** One random edit on `target` ({type, kind, depth}); formats and embeds only when rich. */
function randEdit(rng, target, { rich = true } = {}) {
  const { type, kind, depth } = target;
  if (kind === 'text' || kind === 'xmltext') {
    const bounds = textBoundaries(type);
    const canDelete = bounds.length > 1;
    const richOk = rich && kind === 'text';
    const what = rng.weighted([
      [10, 'insert'],
      [canDelete ? 6 : 0, 'delete'],
      [richOk ? 1.5 : 0, 'insertFormatted'],
      [richOk && canDelete ? 1 : 0, 'format'],
      [richOk ? 0.7 : 0, 'embed'],
    ]);
    if (what === 'insert') type.insert(rng.pick(bounds), randString(rng));
    else if (what === 'insertFormatted')
      type.insert(rng.pick(bounds), randString(rng), rng.pick([{ bold: true }, { color: '#f00' }, { bold: null }]));
    else if (what === 'embed') type.insertEmbed(rng.pick(bounds), { image: randString(rng, 3) });
    else {
      const [i, n] = randRange(rng, bounds);
      if (what === 'delete') type.delete(i, n);
      else type.format(i, n, rng.pick([{ italic: true }, { italic: null }, { bold: true }]));
    }
    return;
  }
  if (kind === 'map') {
    const keys = [...type.keys()];
    if (keys.length > 0 && rng.chance(0.25)) type.delete(rng.pick(keys));
    else type.set(rng.pick(KEYS), randSlotValue(rng, depth, false));
    return;
  }
  if (kind === 'array') {
    const len = type.length;
    if (len > 0 && rng.chance(0.3)) {
      const i = rng.int(0, len - 1);
      type.delete(i, rng.int(1, Math.min(3, len - i)));
    } else {
      const vals = [];
      const n = rng.int(1, 3);
      for (let i = 0; i < n; i++) vals.push(randSlotValue(rng, depth, true));
      type.insert(rng.int(0, len), vals);
    }
    return;
  }
  // XmlFragment / XmlElement
  const len = type.length;
  const what = rng.weighted([
    [6, 'insert'],
    [len > 0 ? 3 : 0, 'delete'],
    [kind === 'xmlelem' ? 3 : 0, 'attr'],
  ]);
  if (what === 'insert') {
    let node;
    if (depth < 3 && rng.chance(0.5)) {
      node = new Y.XmlElement(rng.pick(['p', 'div', 'span', 'h1']));
    } else {
      node = new Y.XmlText();
    }
    type.insert(rng.int(0, len), [node]);
    if (node instanceof Y.XmlText) node.insert(0, randString(rng, 4));
    else if (rng.chance(0.5)) node.setAttribute(rng.pick(['class', 'id', 'data-x']), randString(rng, 3));
  } else if (what === 'delete') {
    const i = rng.int(0, len - 1);
    type.delete(i, rng.int(1, Math.min(2, len - i)));
  } else {
    const attrs = Object.keys(type.getAttributes());
    if (attrs.length > 0 && rng.chance(0.3)) type.removeAttribute(rng.pick(attrs));
    else type.setAttribute(rng.pick(['class', 'id', 'data-x', 'é']), randString(rng, 3));
  }
}

function randClientIds(rng, n) {
  const ids = new Set();
  while (ids.size < n) {
    ids.add(
      rng.weighted([
        [3, () => rng.int(0, 200)],
        [3, () => rng.int(201, 2 ** 31 - 1)],
        [2, () => rng.int(2 ** 31, 2 ** 32 - 1)],
      ])(),
    );
  }
  return [...ids];
}

const SCHEMA = { t: 'text', m: 'map', a: 'array', x: 'xml' };

/**
 * Plays a random concurrent session between 3..5 yjs peers with random partial delivery.
 * Returns {schema, clients, updates: [{bytes, from}], snapshots: [{state, sv}], ref (a Y.Doc
 * holding everything), expected (content of ref), sv (state vector bytes of ref)}.
 * Throws if the yjs peers themselves do not converge (a broken generator).
 */
function generateSession(rng, { steps = rng.int(15, 45), rich = true } = {}) {
  const schema = SCHEMA;
  const n = rng.int(3, 5);
  const clients = randClientIds(rng, n);
  const peers = clients.map((id) => {
    const d = new Y.Doc();
    d.clientID = id;
    return d;
  });
  const updates = [];
  const delivered = peers.map(() => new Set());
  const listeners = peers.map((d, i) => {
    const f = (u) => updates.push({ bytes: u, from: i });
    d.on('update', f);
    return f;
  });
  const snapshots = [{ state: Y.encodeStateAsUpdate(new Y.Doc()), sv: Y.encodeStateVector(new Y.Doc()) }];
  for (let s = 0; s < steps; s++) {
    const a = rng.int(0, n - 1);
    const doc = peers[a];
    const txns = rng.chance(0.2) ? 2 : 1;
    for (let t = 0; t < txns; t++) {
      doc.transact(() => {
        const k = rng.int(1, 3);
        for (let i = 0; i < k; i++) {
          const types = liveTypes(doc, schema);
          randEdit(rng, rng.pick(types), { rich });
        }
      });
    }
    if (rng.chance(0.6)) {
      const j = rng.int(0, n - 1);
      const cand = [];
      for (let u = 0; u < updates.length; u++) {
        if (updates[u].from !== j && !delivered[j].has(u) && rng.chance(0.5)) cand.push(u);
      }
      if (rng.chance(0.15) && delivered[j].size > 0) cand.push(rng.pick([...delivered[j]]));
      for (const u of rng.shuffle(cand)) {
        delivered[j].add(u);
        Y.applyUpdate(peers[j], updates[u].bytes, 'remote');
      }
    }
    if (rng.chance(0.2)) {
      const p = peers[rng.int(0, n - 1)];
      snapshots.push({ state: Y.encodeStateAsUpdate(p), sv: Y.encodeStateVector(p) });
    }
  }
  peers.forEach((d, i) => d.off('update', listeners[i]));
  const ref = new Y.Doc();
  for (const u of updates) Y.applyUpdate(ref, u.bytes);
  const expected = content(ref, schema);
  // Sanity: after a full exchange every yjs peer has the same content as ref.
  for (const d of peers) {
    for (const u of updates) Y.applyUpdate(d, u.bytes);
    const got = content(d, schema);
    if (JSON.stringify(got) !== JSON.stringify(expected)) {
      throw new Error('generator: yjs peers did not converge');
    }
  }
  return { schema, clients, updates, snapshots, ref, expected, sv: Y.encodeStateVector(ref) };
}

module.exports = {
  randString,
  randAny,
  randChar,
  textBoundaries,
  liveTypes,
  randEdit,
  randClientIds,
  generateSession,
  SCHEMA,
  KEYS,
};
