'use strict';
// Error handling: truncated and garbage input to each subcommand exits 1 with one stderr line
// starting "tandem doc: ", never a crash. Truncations are only asserted where yjs also rejects
// the bytes; for random garbage that yjs happens to accept, only "no crash" is asserted.

const test = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('node:zlib');
const cli = require('../lib/cli');
const { Rng } = require('../lib/prng');
const { Y } = require('../lib/ydoc');
const { assertCleanError, assertNoCrash } = require('../lib/check');

const wd = new cli.Workdir('errors');
test.after(() => wd.remove());

function sampleDoc() {
  const d = new Y.Doc();
  d.clientID = 4242;
  d.transact(() => {
    d.getText('t').insert(0, 'héllo 😀 wörld');
    d.getMap('m').set('k', { a: [1, 2.5, 'x'], b: true });
    d.getArray('a').insert(0, [1, 'two', null, new Uint8Array([1, 2])]);
    d.getMap('m').set('nested', new Y.Map());
  });
  d.getText('t').delete(2, 3);
  d.getText('t').insert(1, 'ABC', { bold: true });
  return d;
}

/** Does yjs reject these bytes as an update? */
function yjsRejects(bytes, v2) {
  try {
    if (v2) Y.decodeUpdateV2(bytes);
    else Y.decodeUpdate(bytes);
    const d = new Y.Doc();
    if (v2) Y.applyUpdateV2(d, bytes);
    else Y.applyUpdate(d, bytes);
    return false;
  } catch {
    return true;
  }
}

/** Cut points: all of them for short inputs, otherwise a spread plus both ends. */
function cuts(len, rng, max = 16) {
  if (len <= max) return Array.from({ length: len }, (_, i) => i);
  const s = new Set([0, 1, 2, len - 1, len - 2, Math.floor(len / 2)]);
  while (s.size < max) s.add(rng.int(0, len - 1));
  return [...s].sort((a, b) => a - b);
}

const good = (() => {
  const d = sampleDoc();
  return { v1: Y.encodeStateAsUpdate(d), v2: Y.encodeStateAsUpdateV2(d), sv: Y.encodeStateVector(d) };
})();

/** Every subcommand that reads an update, as argv builders over the bad file `f`. */
function updateReaders(goodFile, svFile) {
  return [
    ['merge', (f) => ['merge', f]],
    ['merge (second input)', (f) => ['merge', goodFile, f]],
    ['merge --lazy', (f) => ['merge', '--lazy', f]],
    ['merge --lazy (second input)', (f) => ['merge', '--lazy', goodFile, f]],
    ['diff', (f) => ['diff', f, svFile]],
    ['sv', (f) => ['sv', f]],
    ['show', (f) => ['show', f]],
    ['show --text', (f) => ['show', f, '--text', 't']],
    ['stats', (f) => ['stats', f]],
  ];
}

for (const v2 of [false, true]) {
  const tag = v2 ? 'v2' : 'v1';
  test(`truncated ${tag} updates are rejected by every subcommand`, { timeout: 120000 }, () => {
    cli.checkBinary();
    const rng = new Rng(v2 ? 77 : 76);
    const bytes = v2 ? good.v2 : good.v1;
    const goodFile = wd.file(`good.${tag}.bin`, bytes);
    const svFile = wd.file('good.sv.bin', good.sv);
    const vflag = v2 ? ['--v2'] : [];
    // The untruncated input works everywhere.
    for (const [, argv] of updateReaders(goodFile, svFile)) cli.ok([...argv(goodFile), ...vflag]);
    let checked = 0;
    for (const n of cuts(bytes.length, rng)) {
      const cut = bytes.subarray(0, n);
      if (!yjsRejects(cut, v2)) continue;
      const f = wd.file(`cut${n}.${tag}.bin`, cut);
      for (const [what, argv] of updateReaders(goodFile, svFile)) {
        assertCleanError(cli.run([...argv(f), ...vflag]), `${what} on the first ${n} of ${bytes.length} bytes`);
        checked++;
      }
    }
    assert.ok(checked > 0, 'some truncation was checked');
  });

  test(`garbage ${tag} input is rejected or handled, never a crash`, { timeout: 120000 }, () => {
    cli.checkBinary();
    const rng = new Rng(v2 ? 99 : 98);
    const goodFile = wd.file(`good.${tag}.bin`, v2 ? good.v2 : good.v1);
    const svFile = wd.file('good.sv.bin', good.sv);
    const vflag = v2 ? ['--v2'] : [];
    const inputs = [
      ['empty file', new Uint8Array(0)],
      ['text', new TextEncoder().encode('hello world, this is not an update\n')],
      ['0xff x 32', new Uint8Array(32).fill(0xff)],
      ['huge counts', new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02])],
    ];
    // A valid update with one byte flipped here and there.
    const base = v2 ? good.v2 : good.v1;
    for (let i = 0; i < 5; i++) {
      const b = new Uint8Array(base);
      b[rng.int(0, b.length - 1)] ^= 1 << rng.int(0, 7);
      inputs.push([`bit flip ${i}`, b]);
    }
    for (let i = 0; i < 6; i++) {
      const b = new Uint8Array(rng.int(1, 64));
      for (let j = 0; j < b.length; j++) b[j] = rng.int(0, 255);
      inputs.push([`random bytes ${i}`, b]);
    }
    for (const [name, bytes] of inputs) {
      const f = wd.file(`garbage.${tag}.bin`, bytes);
      const strict = yjsRejects(bytes, v2) && !name.startsWith('bit flip');
      for (const [what, argv] of updateReaders(goodFile, svFile)) {
        const r = cli.run([...argv(f), ...vflag]);
        if (strict) assertCleanError(r, `${what} on ${name}`);
        else assertNoCrash(r, `${what} on ${name}`);
      }
    }
  });
}

test('bad state vectors for diff', () => {
  cli.checkBinary();
  const doc = wd.file('doc.bin', good.v1);
  for (const [name, sv] of [
    ['truncated', good.sv.subarray(0, good.sv.length - 1)],
    ['count without entries', new Uint8Array([5])],
    ['empty', new Uint8Array(0)],
  ]) {
    assertCleanError(cli.run(['diff', doc, wd.file('sv.bin', sv)]), `diff with a ${name} state vector`);
  }
});

test('usage errors and missing files', () => {
  cli.checkBinary();
  const doc = wd.file('doc.bin', good.v1);
  const missing = wd.path('does-not-exist.bin');
  const cases = [
    ['unknown subcommand', ['frobnicate', doc]],
    ['merge without inputs', ['merge']],
    ['diff without a state vector', ['diff', doc]],
    ['unknown option', ['show', doc, '--no-such-option']],
    ['--out without a value', ['merge', doc, '--out']],
    ['missing input', ['show', missing]],
    ['missing second input', ['merge', doc, missing]],
    ['missing sv file', ['diff', doc, missing]],
    ['missing trace', ['replay', missing]],
    ['missing ops', ['edit', missing]],
    ['--out into a missing directory', ['merge', doc, '--out', `${missing}/x/y.bin`]],
  ];
  for (const [what, args] of cases) assertCleanError(cli.run(args), what);
});

test('bad traces for replay', () => {
  cli.checkBinary();
  const gz = (s) => zlib.gzipSync(Buffer.from(s));
  const cases = [
    ['not gzip', Buffer.from('{"startContent":"","endContent":"","txns":[]')],
    ['gzip of garbage', gz('not json at all')],
    ['truncated gzip', gz(JSON.stringify({ startContent: '', endContent: 'ab', txns: [{ patches: [[0, 0, 'ab']] }] })).subarray(0, 20)],
    ['wrong endContent', gz(JSON.stringify({ startContent: '', endContent: 'xyz', txns: [{ patches: [[0, 0, 'ab']] }] }))],
    ['txns not an array', gz(JSON.stringify({ startContent: '', endContent: '', txns: 5 }))],
    ['patch out of range', gz(JSON.stringify({ startContent: '', endContent: 'a', txns: [{ patches: [[5, 0, 'a']] }] }))],
    ['delete past the end', gz(JSON.stringify({ startContent: '', endContent: '', txns: [{ patches: [[0, 3, '']] }] }))],
  ];
  for (const [what, bytes] of cases) {
    assertCleanError(cli.run(['replay', wd.file('trace.json.gz', bytes), '--out', wd.path('o.bin')]), `replay: ${what}`);
  }
  // And a tiny valid one works (astral character: code-point positions).
  const okTrace = { startContent: '', endContent: 'a😀c', txns: [{ patches: [[0, 0, 'ac']] }, { patches: [[1, 0, '😀']] }] };
  const out = wd.path('ok.bin');
  cli.ok(['replay', wd.file('ok.json.gz', gz(JSON.stringify(okTrace))), '--out', out]);
  assert.equal(cli.ok(['show', out, '--text', 'text']).stdout.toString('utf8'), 'a😀c');
});

test('bad ops for edit', () => {
  cli.checkBinary();
  const cases = [
    ['invalid JSON', '[{"op":'],
    ['not an array', '{"op":"text_insert"}'],
    ['unknown op', '[{"op":"explode","root":"t"}]'],
    ['missing text', '[{"op":"text_insert","root":"t","index":0}]'],
    ['missing root', '[{"op":"map_set","key":"k","value":1}]'],
    ['index not a number', '[{"op":"text_insert","root":"t","index":"0","text":"x"}]'],
    ['values not an array', '[{"op":"array_insert","root":"a","index":0,"values":3}]'],
  ];
  for (const [what, json] of cases) {
    assertCleanError(cli.run(['edit', wd.file('ops.json', json)]), `edit: ${what}`);
  }
  assertCleanError(cli.run(['edit', wd.file('ops.json', '[]'), '--in', wd.file('bad.bin', good.v1.subarray(0, 5))]), 'edit --in a truncated update');
  // Out-of-range positions: the contract does not say; no crash, and a clean error if any.
  for (const json of [
    '[{"op":"text_insert","root":"t","index":100,"text":"x"}]',
    '[{"op":"text_delete","root":"t","index":0,"len":100}]',
    '[{"op":"array_delete","root":"a","index":3,"len":1}]',
    '[{"op":"array_insert","root":"a","index":-1,"values":[1]}]',
  ]) {
    assertNoCrash(cli.run(['edit', wd.file('ops.json', json), '--out', wd.path('o.bin')]), `edit ${json}`);
  }
});
