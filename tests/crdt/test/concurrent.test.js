'use strict';
// Random concurrent yjs sessions (3-5 peers, text/map/array/xml edits, nested types, unicode,
// random partial delivery). Every update any peer emitted is fed to `tandem doc merge` in
// another random order with duplicates; the C engine must reach yjs's content and state
// vector, and its output (full and --lazy) must load into yjs with identical content.
// Reproduce one case with SEED=n; scale with TANDEM_CRDT_SEEDS.

const test = require('node:test');
const assert = require('node:assert/strict');
const cli = require('../lib/cli');
const { Rng } = require('../lib/prng');
const { generateSession } = require('../lib/gen');
const { Y, content, load, asArgs, normalizeShown, svObject } = require('../lib/ydoc');
const { seeds } = require('../lib/seeds');
const { withRepro } = require('../lib/check');

const wd = new cli.Workdir('concurrent');
test.after(() => wd.remove());

test('tandem binary is present', () => {
  cli.checkBinary();
});

for (const seed of seeds(1)) {
  test(`concurrent session seed=${seed}`, { timeout: 120000 }, () => {
    cli.checkBinary();
    const rng = new Rng(seed);
    const sess = generateSession(rng);
    const v2 = rng.chance(0.3);
    const enc = (u) => (v2 ? Y.convertUpdateFormatV1ToV2(u) : u);
    const vflag = v2 ? ['--v2'] : [];
    const files = sess.updates.map((u, i) => wd.file(`s${seed}-u${i}.bin`, enc(u.bytes)));
    // Another random order, with about 20% duplicates.
    const order = files.slice();
    const dups = Math.round(files.length * 0.2);
    for (let i = 0; i < dups; i++) order.push(rng.pick(files));
    const shuffled = rng.shuffle(order);
    const merged = wd.path(`s${seed}-merged.bin`);
    const lazy = wd.path(`s${seed}-lazy.bin`);
    const part = wd.path(`s${seed}-part.bin`);
    const full2 = wd.path(`s${seed}-full2.bin`);
    const saved = () => [...files, merged, lazy, part, full2].filter((f) => require('node:fs').existsSync(f));
    const expected = sess.expected;
    const expSv = svObject(sess.sv);

    withRepro('concurrent', seed, saved, () => {
      const note = `(${sess.updates.length} updates + ${dups} duplicates, ${v2 ? 'v2' : 'v1'}, clients ${sess.clients.join(',')})`;
      cli.ok(['merge', ...shuffled, ...vflag, '--out', merged]);

      const shown = cli.okJson(['show', merged, ...asArgs(sess.schema), ...vflag]);
      assert.deepEqual(normalizeShown(shown, sess.schema), expected, `show of merged state ${note}`);

      const sv = cli.ok(['sv', merged, ...vflag]).stdout;
      assert.deepEqual(svObject(new Uint8Array(sv)), expSv, `state vector of merged state ${note}`);

      const stats = cli.okJson(['stats', merged, ...vflag]);
      assert.equal(stats.pending_structs, 0, `stats.pending_structs ${note}`);
      assert.equal(stats.pending_deletes, 0, `stats.pending_deletes ${note}`);
      assert.deepEqual(stats.state_vector, expSv, `stats.state_vector ${note}`);

      const bytes = new Uint8Array(require('node:fs').readFileSync(merged));
      const y = load(bytes, { v2 });
      assert.deepEqual(content(y, sess.schema), expected, `merged state loaded into yjs ${note}`);
      assert.deepEqual(svObject(Y.encodeStateVector(y)), expSv, `yjs state vector of merged state ${note}`);

      cli.ok(['merge', '--lazy', ...shuffled, ...vflag, '--out', lazy]);
      const lz = new Uint8Array(require('node:fs').readFileSync(lazy));
      assert.deepEqual(content(load(lz, { v2 }), sess.schema), expected, `--lazy merge loaded into yjs ${note}`);
      const lzSv = v2 ? Y.encodeStateVectorFromUpdateV2(lz) : Y.encodeStateVectorFromUpdate(lz);
      assert.deepEqual(svObject(lzSv), expSv, `yjs state vector of the --lazy merge ${note}`);

      // In two steps: the first part's state (possibly with pending structs/deletes) merged
      // with the rest must give the same document.
      const k = rng.int(1, Math.max(1, shuffled.length - 1));
      cli.ok(['merge', ...shuffled.slice(0, k), ...vflag, '--out', part]);
      cli.ok(['merge', part, ...shuffled.slice(k), ...vflag, '--out', full2]);
      const shown2 = cli.okJson(['show', full2, ...asArgs(sess.schema), ...vflag]);
      assert.deepEqual(normalizeShown(shown2, sess.schema), expected, `two-step merge (split after ${k}) ${note}`);
    });
  });
}
