'use strict';
// yjs applies every update the C engine produces: random local ops run through
// `tandem doc edit --updates`, each per-op update applied to a yjs doc one at a time, compared
// with a yjs model that made the same ops (content, then bytes). Also interleaved: C edits on
// top of a yjs-made document, yjs edits on top of C's state, and so on.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const cli = require('../lib/cli');
const { Rng } = require('../lib/prng');
const { randClientIds } = require('../lib/gen');
const { EDIT_SCHEMA, applyOp, randOps } = require('../lib/ops');
const { Y, content, load, asArgs, normalizeShown, svObject } = require('../lib/ydoc');
const { seeds } = require('../lib/seeds');
const { withRepro, assertBytes } = require('../lib/check');

const wd = new cli.Workdir('edit');
test.after(() => wd.remove());

const readBytes = (f) => new Uint8Array(fs.readFileSync(f));

/**
 * Runs `tandem doc edit` with `ops` (on top of `inState` if given) as client `client`, and
 * checks it against `model` (a yjs doc that already applied the same ops, emitting
 * `modelUpdates`) and `base` (a yjs doc holding inState). Returns the C state bytes.
 */
function runEdit({ seed, tag, ops, client, inState, model, modelUpdates, v2, files }) {
  const vflag = v2 ? ['--v2'] : [];
  const opsFile = wd.file(`${tag}-ops.json`, JSON.stringify(ops));
  const out = wd.path(`${tag}-state.bin`);
  const upd = wd.path(`${tag}-updates.bin`);
  const args = ['edit', opsFile, '--client', String(client), ...vflag, '--out', out, '--updates', upd];
  let inFile = null;
  if (inState) {
    inFile = wd.file(`${tag}-in.bin`, inState);
    args.push('--in', inFile);
  }
  files.push(opsFile, out, upd);
  if (inFile) files.push(inFile);
  cli.ok(args);
  const expected = content(model, EDIT_SCHEMA);
  const records = cli.readRecords(fs.readFileSync(upd));
  assert.equal(records.length, ops.length, `${tag}: one update per op`);

  // yjs applies the C updates one at a time (on top of the input state if any).
  const y = inState ? load(inState, { v2 }) : new Y.Doc();
  records.forEach((r, i) => {
    try {
      if (v2) Y.applyUpdateV2(y, r);
      else Y.applyUpdate(y, r);
    } catch (e) {
      assert.fail(`${tag}: yjs could not apply the update of op ${i} (${JSON.stringify(ops[i])}): ${e.message}`);
    }
    assert.equal(y.store.pendingStructs, null, `${tag}: update of op ${i} left pending structs in yjs`);
  });
  assert.deepEqual(content(y, EDIT_SCHEMA), expected, `${tag}: yjs after applying the C updates`);

  const state = readBytes(out);
  assert.deepEqual(content(load(state, { v2 }), EDIT_SCHEMA), expected, `${tag}: C state loaded into yjs`);
  const shown = cli.okJson(['show', out, ...asArgs(EDIT_SCHEMA), ...vflag]);
  assert.deepEqual(normalizeShown(shown, EDIT_SCHEMA), expected, `${tag}: show of the C state`);
  assert.deepEqual(
    svObject(new Uint8Array(cli.ok(['sv', out, ...vflag]).stdout)),
    svObject(Y.encodeStateVector(model)),
    `${tag}: state vector`,
  );

  // Same ops, same client, same starting state: yjs emits the same bytes.
  records.forEach((r, i) => assertBytes(r, modelUpdates[i], `${tag}: update of op ${i} (${JSON.stringify(ops[i])}) vs yjs`));
  assertBytes(state, v2 ? Y.encodeStateAsUpdateV2(model) : Y.encodeStateAsUpdate(model), `${tag}: final state vs yjs`);
  return state;
}

for (const seed of seeds(0.5, 3)) {
  test(`edit: C updates apply in yjs, seed=${seed}`, { timeout: 120000 }, () => {
    cli.checkBinary();
    const rng = new Rng(seed);
    const v2 = rng.chance(0.3);
    const [client] = randClientIds(rng, 1);
    const model = new Y.Doc();
    model.clientID = client;
    const { ops, updates } = randOps(rng, model, rng.int(10, 60), { v2 });
    const files = [];
    withRepro('edit', seed, () => files, () => {
      runEdit({ seed, tag: `e${seed}`, ops, client, model, modelUpdates: updates, v2, files });
    });
  });
}

for (const seed of seeds(0.25, 2)) {
  test(`edit: interleaved yjs and C editing, seed=${seed}`, { timeout: 120000 }, () => {
    cli.checkBinary();
    const rng = new Rng(seed + 1000000);
    const v2 = rng.chance(0.3);
    const enc = (d) => (v2 ? Y.encodeStateAsUpdateV2(d) : Y.encodeStateAsUpdate(d));
    const [ca, cb, cc] = randClientIds(rng, 3);
    const files = [];
    withRepro('interleave', seed, () => files, () => {
      // 1. yjs (client A) makes a document.
      const y1 = new Y.Doc();
      y1.clientID = ca;
      randOps(rng, y1, rng.int(5, 30));
      const s0 = enc(y1);
      // 2. C (client B) edits on top of it.
      const m2 = load(s0, { v2 });
      m2.clientID = cb;
      const r2 = randOps(rng, m2, rng.int(5, 30), { v2 });
      const s1 = runEdit({ seed, tag: `i${seed}-c1`, ops: r2.ops, client: cb, inState: s0, model: m2, modelUpdates: r2.updates, v2, files });
      // 3. yjs (client C) edits on top of C's state; C reads the result and merges the updates.
      const y3 = load(s1, { v2 });
      y3.clientID = cc;
      const r3 = randOps(rng, y3, rng.int(5, 30), { v2 });
      const s2 = enc(y3);
      const s2f = wd.file(`i${seed}-s2.bin`, s2);
      files.push(s2f);
      const vflag = v2 ? ['--v2'] : [];
      const exp3 = content(y3, EDIT_SCHEMA);
      assert.deepEqual(normalizeShown(cli.okJson(['show', s2f, ...asArgs(EDIT_SCHEMA), ...vflag]), EDIT_SCHEMA), exp3, 'show of the yjs state made on top of C state');
      const s1f = wd.file(`i${seed}-s1.bin`, s1);
      const ufiles = r3.updates.map((u, i) => wd.file(`i${seed}-y3u${i}.bin`, u));
      files.push(s1f, ...ufiles);
      const mergedF = wd.path(`i${seed}-merged.bin`);
      cli.ok(['merge', s1f, ...rng.shuffle(ufiles), ...vflag, '--out', mergedF]);
      files.push(mergedF);
      assert.deepEqual(normalizeShown(cli.okJson(['show', mergedF, ...asArgs(EDIT_SCHEMA), ...vflag]), EDIT_SCHEMA), exp3, 'C state merged with the yjs updates');
      // 4. C continues as client A again (its clock must continue after A's last one).
      const m4 = load(s2, { v2 });
      m4.clientID = ca;
      const r4 = randOps(rng, m4, rng.int(5, 30), { v2 });
      runEdit({ seed, tag: `i${seed}-c2`, ops: r4.ops, client: ca, inState: s2, model: m4, modelUpdates: r4.updates, v2, files });
    });
  });
}

test('edit: an index inside a surrogate pair behaves as in yjs (halves become U+FFFD)', () => {
  cli.checkBinary();
  const ops = [
    { op: 'text_insert', root: 't', index: 0, text: 'a😀b𝄞c' },
    { op: 'text_insert', root: 't', index: 2, text: 'X' },
    { op: 'text_delete', root: 't', index: 6, len: 1 },
  ];
  const model = new Y.Doc();
  model.clientID = 5;
  const updates = [];
  model.on('update', (u) => updates.push(u));
  for (const op of ops) applyOp(model, op);
  const files = [];
  withRepro('surrogate', 0, () => files, () => {
    runEdit({ seed: 0, tag: 'surrogate', ops, client: 5, model, modelUpdates: updates, v2: false, files });
  });
});

test('edit: numbers are encoded as yjs encodes the same JS value', () => {
  cli.checkBinary();
  const nums = [0, 1, -1, 63, 64, -64, 2147483647, -2147483647, 2147483648, -2147483648, 2 ** 40, 2 ** 53 - 1,
    0.5, -1.25, 3.5e10, 0.1, 1e-300, 1.7976931348623157e308, 5e-324, 123456.789, 1e21];
  const ops = [
    { op: 'array_insert', root: 'a', index: 0, values: nums },
    { op: 'map_set', root: 'm', key: 'n', value: { nums, nested: [{ x: 2 ** 31 }] } },
  ];
  const model = new Y.Doc();
  model.clientID = 9;
  const updates = [];
  model.on('update', (u) => updates.push(u));
  for (const op of ops) applyOp(model, op);
  const files = [];
  withRepro('numbers', 0, () => files, () => {
    runEdit({ seed: 0, tag: 'numbers', ops, client: 9, model, modelUpdates: updates, v2: false, files });
  });
});
