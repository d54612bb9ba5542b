'use strict';
// Editing traces (../shared/traces, or TANDEM_TRACES): every sequential trace replays to its
// endContent and, where yjs-derived/<name>.final.v1.yjs exists, to exactly those bytes; the
// per-txn updates of a few small traces apply in yjs; the egwalker-paper Yjs files (v2 and
// v1) show and re-encode as yjs does. Skipped when the trace directory is absent.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const cli = require('../lib/cli');
const { Y, load } = require('../lib/ydoc');
const { loadTrace, PosMap, forEachEdit } = require('../lib/trace');
const { assertBytes } = require('../lib/check');

const DIR = cli.tracesDir();
const HAVE = fs.existsSync(DIR);
const skip = HAVE ? false : `no trace directory at ${DIR} (set TANDEM_TRACES)`;
const wd = new cli.Workdir('traces');
test.after(() => wd.remove());

const readBytes = (f) => new Uint8Array(fs.readFileSync(f));

function sequentialTraces() {
  if (!HAVE) return [];
  const list = [];
  for (const f of fs.readdirSync(DIR).sort()) if (f.endsWith('.json.gz')) list.push(f);
  const ascii = path.join(DIR, 'ascii_only');
  if (fs.existsSync(ascii)) {
    for (const f of fs.readdirSync(ascii).sort()) if (f.endsWith('.json.gz')) list.push(`ascii_only/${f}`);
  }
  return list;
}

/** Replays a trace in yjs (clientID 1, root "text", one transaction per txn); per-txn updates. */
function yjsReplay(trace, v2) {
  const doc = new Y.Doc();
  doc.clientID = 1;
  const text = doc.getText('text');
  const ups = [];
  doc.on(v2 ? 'updateV2' : 'update', (u) => ups.push(u));
  const pm = new PosMap();
  for (const txn of trace.txns) {
    doc.transact(() => forEachEdit(txn, pm, (k, i, a) => (k === 'delete' ? text.delete(i, a) : text.insert(i, a))));
  }
  return { doc, ups };
}

for (const rel of sequentialTraces()) {
  test(`replay ${rel}`, { skip, timeout: 180000 }, () => {
    cli.checkBinary();
    const file = path.join(DIR, rel);
    const name = path.basename(rel, '.json.gz');
    const trace = loadTrace(file);
    const out = wd.path(`${name}.final.bin`);
    cli.ok(['replay', file, '--out', out]);
    const text = cli.ok(['show', out, '--text', 'text']).stdout.toString('utf8');
    assert.ok(text === trace.endContent, `show --text text of the replayed state differs from endContent (${text.length} vs ${trace.endContent.length} UTF-16 units)`);
    const got = readBytes(out);
    const refFile = path.join(DIR, 'yjs-derived', `${name}.final.v1.yjs`);
    if (!rel.startsWith('ascii_only/') && fs.existsSync(refFile)) {
      const ref = readBytes(refFile);
      if (Buffer.compare(Buffer.from(got), Buffer.from(ref)) !== 0) {
        let yjsText;
        try {
          yjsText = load(got).getText('text').toString();
        } catch (e) {
          yjsText = `<yjs failed: ${e.message}>`;
        }
        assertBytes(got, ref, `final v1 state vs ${path.relative(DIR, refFile)} (yjs reads the C state as ${yjsText === trace.endContent ? 'the right text' : 'a different text'})`);
      }
    } else {
      assert.ok(load(got).getText('text').toString() === trace.endContent, 'the replayed state loaded into yjs gives endContent');
    }
  });
}

// Per-txn updates: yjs applies each one in turn and reaches endContent; the bytes equal what yjs
// emits for the same transaction. Small traces only (yjs is the slow side here).
for (const [rel, v2] of [['friendsforever_flat.json.gz', false], ['json-crdt-blog-post.json.gz', false], ['clownschool_flat.json.gz', true]]) {
  test(`replay --updates ${rel}${v2 ? ' --v2' : ''}`, { skip, timeout: 180000 }, () => {
    cli.checkBinary();
    const file = path.join(DIR, rel);
    const name = path.basename(rel, '.json.gz');
    const trace = loadTrace(file);
    const out = wd.path(`${name}.final.bin`);
    const upd = wd.path(`${name}.updates.bin`);
    cli.ok(['replay', file, '--out', out, '--updates', upd, ...(v2 ? ['--v2'] : [])]);
    const records = cli.readRecords(fs.readFileSync(upd));
    assert.equal(records.length, trace.txns.length, 'one update per txn');
    const y = new Y.Doc();
    records.forEach((r, i) => {
      try {
        if (v2) Y.applyUpdateV2(y, r);
        else Y.applyUpdate(y, r);
      } catch (e) {
        assert.fail(`yjs could not apply the update of txn ${i}: ${e.message}`);
      }
    });
    assert.equal(y.store.pendingStructs, null, 'no pending structs in yjs after all updates');
    assert.ok(y.getText('text').toString() === trace.endContent, 'yjs applying every per-txn update reaches endContent');
    const st = readBytes(out);
    assert.ok(load(st, { v2 }).getText('text').toString() === trace.endContent, 'final state loaded into yjs');
    const ref = yjsReplay(trace, v2);
    for (let i = 0; i < records.length; i++) assertBytes(records[i], ref.ups[i], `update of txn ${i} vs yjs`);
    assertBytes(st, v2 ? Y.encodeStateAsUpdateV2(ref.doc) : Y.encodeStateAsUpdate(ref.doc), 'final state vs yjs');
  });
}

function paperFiles() {
  const d = path.join(DIR, 'egwalker-paper');
  if (!fs.existsSync(d)) return [];
  return fs
    .readdirSync(d)
    .filter((f) => f.endsWith('.yjs') && !f.endsWith('.v1.yjs'))
    .sort()
    .map((f) => path.basename(f, '.yjs'));
}

for (const name of paperFiles()) {
  test(`egwalker-paper ${name}.yjs (v2) and ${name}.v1.yjs`, { skip, timeout: 180000 }, () => {
    cli.checkBinary();
    const d = path.join(DIR, 'egwalker-paper');
    const v2File = path.join(d, `${name}.yjs`);
    const v1File = path.join(d, `${name}.v1.yjs`);
    const yv2 = load(readBytes(v2File), { v2: true });
    const want = yv2.getText('text').toString();

    const t2 = cli.ok(['show', '--v2', v2File, '--text', 'text']).stdout.toString('utf8');
    assert.ok(t2 === want, `show --v2 ${name}.yjs --text text differs from yjs (${t2.length} vs ${want.length} UTF-16 units)`);

    const m2 = wd.path(`${name}.merged.v2.bin`);
    cli.ok(['merge', '--v2', v2File, '--out', m2]);
    const m2b = readBytes(m2);
    assert.ok(load(m2b, { v2: true }).getText('text').toString() === want, `merge --v2 ${name}.yjs loaded into yjs`);

    let v1 = null;
    if (fs.existsSync(v1File)) {
      v1 = readBytes(v1File);
      const t1 = cli.ok(['show', v1File, '--text', 'text']).stdout.toString('utf8');
      assert.ok(t1 === want, `show ${name}.v1.yjs --text text differs from yjs (${t1.length} vs ${want.length})`);
      const m1 = wd.path(`${name}.merged.v1.bin`);
      cli.ok(['merge', v1File, '--out', m1]);
      // yjs re-encodes every one of these v1 files to identical bytes.
      assertBytes(readBytes(m1), v1, `merge ${name}.v1.yjs (v1 re-encode)`);
    }
    // Same document, same encoder: the v2 re-encode equals yjs's.
    assertBytes(m2b, Y.encodeStateAsUpdateV2(yv2), `merge --v2 ${name}.yjs vs yjs's v2 re-encode`);
  });
}
