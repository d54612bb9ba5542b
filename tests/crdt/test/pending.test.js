'use strict';
// Out-of-order delivery: updates whose dependencies arrive later must wait as pending
// structs/deletes (visible in `stats`), survive being encoded, and integrate once the missing
// update arrives.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const cli = require('../lib/cli');
const { Y, content, load, asArgs, normalizeShown, svObject } = require('../lib/ydoc');

const SCHEMA = { t: 'text', m: 'map' };
const wd = new cli.Workdir('pending');
test.after(() => wd.remove());

// Client 7 writes u1 (text + map), then u2 (text after u1's text) and u3 (deletes part of u1).
// Client 3000000000 receives u1 and writes uB (an insert inside u1's text, a map overwrite).
function build() {
  const a = new Y.Doc();
  a.clientID = 7;
  const ups = [];
  a.on('update', (u) => ups.push(u));
  a.transact(() => {
    a.getText('t').insert(0, 'hello 😀');
    a.getMap('m').set('k', 1);
  });
  a.getText('t').insert(8, ' world');
  a.getText('t').delete(0, 2);
  const [u1, u2, u3] = ups;
  const b = new Y.Doc();
  b.clientID = 3000000000;
  Y.applyUpdate(b, u1);
  let uB = null;
  b.on('update', (u) => (uB = u));
  b.transact(() => {
    b.getText('t').insert(3, 'XY');
    b.getMap('m').set('k', 'b');
  });
  const all = load([u1, u2, u3, uB]);
  return { u1, u2, u3, uB, expected: content(all, SCHEMA), sv: svObject(Y.encodeStateVector(all)) };
}

function stats(file) {
  return cli.okJson(['stats', file]);
}

function shown(file) {
  return normalizeShown(cli.okJson(['show', file, ...asArgs(SCHEMA)]), SCHEMA);
}

test('pending structs and deletes wait for their dependencies', () => {
  cli.checkBinary();
  const c = build();
  const f = {};
  for (const k of ['u1', 'u2', 'u3', 'uB']) f[k] = wd.file(`${k}.bin`, c[k]);

  // u2 alone: its origin is in u1, so it is pending; the state vector stays empty.
  const p2 = wd.path('p2.bin');
  cli.ok(['merge', f.u2, '--out', p2]);
  let s = stats(p2);
  assert.ok(s.pending_structs > 0, `merge u2 alone: stats should show pending structs: ${JSON.stringify(s)}`);
  assert.deepEqual(s.state_vector, {}, 'merge u2 alone: nothing integrated');
  assert.deepEqual(svObject(new Uint8Array(cli.ok(['sv', p2]).stdout)), {}, 'sv of u2 alone');

  // u3 alone: a delete of structs the doc does not have yet.
  const p3 = wd.path('p3.bin');
  cli.ok(['merge', f.u3, '--out', p3]);
  s = stats(p3);
  assert.ok(s.pending_deletes > 0, `merge u3 alone: stats should show pending deletes: ${JSON.stringify(s)}`);

  // uB alone: depends on another client's structs.
  const pB = wd.path('pB.bin');
  cli.ok(['merge', f.uB, '--out', pB]);
  s = stats(pB);
  assert.ok(s.pending_structs > 0, `merge uB alone: stats should show pending structs: ${JSON.stringify(s)}`);

  // All but u1: everything waits; the encoded state keeps it (yjs sees the same pending).
  const p = wd.path('p.bin');
  cli.ok(['merge', f.uB, f.u3, f.u2, '--out', p]);
  s = stats(p);
  assert.ok(s.pending_structs > 0 && s.pending_deletes > 0, `merge uB,u3,u2: ${JSON.stringify(s)}`);
  assert.deepEqual(shown(p), { t: '', m: {} }, 'nothing visible before u1 arrives');
  const py = load(new Uint8Array(fs.readFileSync(p)));
  assert.ok(py.store.pendingStructs !== null, 'yjs loading the pending state also has pending structs');
  Y.applyUpdate(py, c.u1);
  assert.deepEqual(content(py, SCHEMA), c.expected, 'yjs: pending state + u1');

  // Completing it in the C engine, from the encoded pending state.
  const full = wd.path('full.bin');
  cli.ok(['merge', p, f.u1, '--out', full]);
  s = stats(full);
  assert.equal(s.pending_structs, 0, `after u1: ${JSON.stringify(s)}`);
  assert.equal(s.pending_deletes, 0, `after u1: ${JSON.stringify(s)}`);
  assert.deepEqual(s.state_vector, c.sv, 'state vector after completion');
  assert.deepEqual(shown(full), c.expected, 'content after completion');
  assert.deepEqual(content(load(new Uint8Array(fs.readFileSync(full))), SCHEMA), c.expected, 'completed state in yjs');

  // And in one go, last dependency last.
  const one = wd.path('one.bin');
  cli.ok(['merge', f.u3, f.uB, f.u2, f.u1, '--out', one]);
  assert.deepEqual(shown(one), c.expected, 'merge u3,uB,u2,u1');
  assert.deepEqual(stats(one).state_vector, c.sv, 'merge u3,uB,u2,u1: state vector');

  // --lazy merge of an incomplete set keeps what is missing; yjs completes it.
  const lz = wd.path('lazy.bin');
  cli.ok(['merge', '--lazy', f.uB, f.u3, f.u2, '--out', lz]);
  const ly = load(new Uint8Array(fs.readFileSync(lz)));
  Y.applyUpdate(ly, c.u1);
  assert.deepEqual(content(ly, SCHEMA), c.expected, 'lazy merge of uB,u3,u2 then u1 in yjs');
});

test('a pending state diffed against an empty state vector keeps the pending parts', () => {
  cli.checkBinary();
  const c = build();
  const p = wd.path('p.bin');
  cli.ok(['merge', wd.file('u2.bin', c.u2), wd.file('u3.bin', c.u3), '--out', p]);
  const d = wd.path('d.bin');
  cli.ok(['diff', p, wd.file('sv0.bin', Y.encodeStateVector(new Y.Doc())), '--out', d]);
  const y = load([new Uint8Array(fs.readFileSync(d)), c.u1, c.uB]);
  assert.deepEqual(content(y, SCHEMA), c.expected);
});
