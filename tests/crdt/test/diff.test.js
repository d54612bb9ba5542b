'use strict';
// `tandem doc diff DOC SV`: for random pairs (a full document, the state vector of a peer that
// saw only part of the session), the diff applied to that peer in yjs reaches the full content.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const cli = require('../lib/cli');
const { Rng } = require('../lib/prng');
const { generateSession } = require('../lib/gen');
const { Y, content, load, svObject } = require('../lib/ydoc');
const { seeds } = require('../lib/seeds');
const { withRepro } = require('../lib/check');

const wd = new cli.Workdir('diff');
test.after(() => wd.remove());

for (const seed of seeds(0.3, 3)) {
  test(`diff against partial peers, seed=${seed}`, { timeout: 120000 }, () => {
    cli.checkBinary();
    const rng = new Rng(seed + 2000000);
    const sess = generateSession(rng);
    const v2 = rng.chance(0.3);
    const vflag = v2 ? ['--v2'] : [];
    const full = v2 ? Y.encodeStateAsUpdateV2(sess.ref) : Y.encodeStateAsUpdate(sess.ref);
    const docFile = wd.file(`d${seed}-doc.bin`, full);
    const files = [docFile];
    withRepro('diff', seed, () => files, () => {
      // The empty peer, the full peer, and up to four snapshots taken during the session.
      const cases = [
        { state: Y.encodeStateAsUpdate(new Y.Doc()), sv: Y.encodeStateVector(new Y.Doc()), what: 'empty peer' },
        { state: Y.encodeStateAsUpdate(sess.ref), sv: sess.sv, what: 'complete peer' },
        ...rng.shuffle(sess.snapshots).slice(0, 4).map((s, i) => ({ ...s, what: `snapshot ${i}` })),
      ];
      for (const c of cases) {
        const svFile = wd.file(`d${seed}-sv.bin`, c.sv);
        const out = wd.path(`d${seed}-diff.bin`);
        files.push(svFile, out);
        cli.ok(['diff', docFile, svFile, ...vflag, '--out', out]);
        const d = new Uint8Array(fs.readFileSync(out));
        const peer = load(c.state);
        if (v2) Y.applyUpdateV2(peer, d);
        else Y.applyUpdate(peer, d);
        assert.deepEqual(content(peer, sess.schema), sess.expected, `${c.what}: peer + diff`);
        assert.deepEqual(svObject(Y.encodeStateVector(peer)), svObject(sess.sv), `${c.what}: state vector of peer + diff`);
        assert.equal(peer.store.pendingStructs, null, `${c.what}: the diff left pending structs`);
        // What the diff holds is no more than what the peer lacks.
        const structs = (v2 ? Y.decodeUpdateV2(d) : Y.decodeUpdate(d)).structs;
        const svm = Y.decodeStateVector(c.sv);
        for (const s of structs) {
          const have = svm.get(s.id.client) || 0;
          assert.ok(s.id.clock + s.length > have, `${c.what}: the diff repeats struct ${s.id.client}:${s.id.clock} the peer has`);
        }
      }
    });
  });
}
