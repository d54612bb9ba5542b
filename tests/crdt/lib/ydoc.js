'use strict';
// Reading yjs documents in the shape `tandem doc show` prints, and comparing the two.

const Y = require('yjs');

/** Deep copy as plain JSON: Uint8Array -> array of numbers, undefined -> null, keys sorted. */
function canon(v) {
  if (v === undefined || v === null) return null;
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const out = {};
    for (const k of keys) out[k] = canon(v[k]);
    return out;
  }
  if (typeof v === 'number' && Object.is(v, -0)) return 0;
  return v;
}

const EMPTY = { text: '', map: {}, array: [], xml: '' };

/** Reads root `name` of `doc` as `kind` (text|map|array|xml), the way yjs shows it. */
function readRoot(doc, name, kind) {
  switch (kind) {
    case 'text':
      return doc.getText(name).toString();
    case 'map':
      return doc.getMap(name).toJSON();
    case 'array':
      return doc.getArray(name).toJSON();
    case 'xml':
      return doc.getXmlFragment(name).toString();
    default:
      throw new Error(`unknown root kind ${kind}`);
  }
}

/** {name: canon(value)} for every root of `schema` ({name: kind}). */
function content(doc, schema) {
  const out = {};
  for (const [name, kind] of Object.entries(schema)) out[name] = canon(readRoot(doc, name, kind));
  return out;
}

/** Loads one or more updates into a fresh yjs doc (v2 if asked) and returns it. */
function load(updates, { v2 = false } = {}) {
  const doc = new Y.Doc();
  for (const u of Array.isArray(updates) ? updates : [updates]) {
    if (v2) Y.applyUpdateV2(doc, u);
    else Y.applyUpdate(doc, u);
  }
  return doc;
}

/** `--as name=kind` arguments for `tandem doc show`. */
function asArgs(schema) {
  const args = [];
  for (const [name, kind] of Object.entries(schema)) args.push('--as', `${name}=${kind}`);
  return args;
}

/**
 * Normalizes `tandem doc show` output against a schema: a root the engine does not know (e.g.
 * every item of it was deleted and garbage collected) reads as the kind's empty value; roots
 * outside the schema are kept so that a comparison shows them.
 */
function normalizeShown(shown, schema) {
  const out = {};
  for (const [name, kind] of Object.entries(schema)) {
    out[name] = name in shown ? canon(shown[name]) : EMPTY[kind];
  }
  for (const name of Object.keys(shown)) {
    if (!(name in schema)) out[name] = canon(shown[name]);
  }
  return out;
}

/** State vector bytes (v1) -> {client: clock} with clients as decimal strings, sorted. */
function svObject(bytes) {
  const m = Y.decodeStateVector(bytes);
  const keys = [...m.keys()].sort((a, b) => a - b);
  const out = {};
  for (const k of keys) out[String(k)] = m.get(k);
  return out;
}

module.exports = { Y, canon, content, readRoot, load, asArgs, normalizeShown, svObject, EMPTY };
