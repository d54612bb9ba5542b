// Generates tests/crdt/vectors/yupdate_vectors.inc: Yjs updates (v1 and v2) and the results of
// yjs's own update-level functions on them, as C array initialisers for tests/unit/test_yupdate.c.
// Run: node tests/crdt/vectors/gen_yupdate_vectors.js > tests/crdt/vectors/yupdate_vectors.inc
const Y = require('yjs')
const enc = require('lib0/encoding')

const out = []
const hex = (u) => Array.from(u).join(',')
// kind: 0 round trip, 1 merge2, 2 diff(a, sv=b), 3 state vector (out = sv bytes), 4 convert v1->v2 (a is v1), 5 convert v2->v1
const add = (name, kind, version, a, b, res) => out.push({ name, kind, version, a, b: b || new Uint8Array(0), res: res || new Uint8Array(0) })

const docs = []
const mk = (client, opts) => { const d = new Y.Doc(opts); d.clientID = client; const ups = [], ups2 = []; d.on('update', (u) => ups.push(u)); d.on('updateV2', (u) => ups2.push(u)); docs.push({ d, ups, ups2 }); return { d, ups, ups2 } }

// 1. text with formats, embeds, unicode, astral splits
const A = mk(1)
const t = A.d.getText('t')
t.insert(0, 'abc'); t.insert(1, 'X'); t.delete(0, 1)
t.format(0, 2, { bold: true }); t.insertEmbed(1, { img: 'x' }); t.insert(3, 'é😀ü', { italic: 'yes' })
t.insert(0, 'a😀😀b'); t.delete(2, 1) // delete inside a surrogate pair (U+FFFD rule)
t.insert(5, '\u0000"\\\n ctl')
// 2. maps and arrays with every Any type, nested types
const B = mk(2)
const m = B.d.getMap('m')
m.set('k', 1); m.set('s', 'hi'); m.set('f', 1.5); m.set('o', { a: [true, null], u: undefined, 2: 'two', z: -0 })
m.set('b', new Uint8Array([1, 2])); m.set('k', 2); m.set('big', 2147483648); m.set('d', 0.1); m.set('neg', -7); m.set('bi', 123n)
const sub = new Y.Map(); m.set('sub', sub); sub.set('x', 'y'); sub.set('x', 'z')
const arr = B.d.getArray('a'); arr.insert(0, [1, 2, 3, 'four', { five: 5 }]); arr.delete(1, 2); arr.insert(1, [new Y.Text('nested')])
const st = new Y.Array(); m.set('arr', st); st.insert(0, [1]); m.delete('arr')
// 3. XML and subdocs
const C = mk(0xdeadbeef)
const frag = C.d.getXmlFragment('x')
const el = new Y.XmlElement('p'); frag.insert(0, [el]); el.setAttribute('class', 'c'); const xt = new Y.XmlText(); el.insert(0, [xt]); xt.insert(0, 'hello', { b: {} })
const hook = new Y.XmlHook('h'); frag.insert(1, [hook])
const sd = C.d.getMap('docs'); sd.set('d1', new Y.Doc({ guid: 'g1' })); sd.set('d2', new Y.Doc({ guid: 'g2', meta: { x: 1 }, autoLoad: true }))
// 4. two concurrent clients on the same text, synced
const D1 = mk(7), D2 = mk(8)
D1.d.getText('t').insert(0, 'hello'); D2.d.getText('t').insert(0, 'world')
Y.applyUpdate(D2.d, Y.encodeStateAsUpdate(D1.d)); Y.applyUpdate(D1.d, Y.encodeStateAsUpdate(D2.d))
D1.d.getText('t').insert(3, '---'); D2.d.getText('t').delete(1, 6)
Y.applyUpdate(D1.d, Y.encodeStateAsUpdate(D2.d))
// 5. legacy ContentJSON, gc off (hand-written v1: client 9, root "j", 3 JSON values incl. undefined)
const E = mk(10, { gc: false })
{
  const e = enc.createEncoder()
  enc.writeVarUint(e, 1); enc.writeVarUint(e, 1); enc.writeVarUint(e, 9); enc.writeVarUint(e, 0)
  enc.writeUint8(e, 2); enc.writeVarUint(e, 1); enc.writeVarString(e, 'j')
  enc.writeVarUint(e, 3); enc.writeVarString(e, '{"a":1}'); enc.writeVarString(e, 'undefined'); enc.writeVarString(e, '[1,"x"]')
  enc.writeVarUint(e, 0)
  Y.applyUpdate(E.d, enc.toUint8Array(e))
  E.d.getArray('j').delete(1, 1)
  E.d.getText('g').insert(0, 'kept'); E.d.getText('g').delete(1, 2)
}

for (const [i, { d, ups, ups2 }] of docs.entries()) {
  const full1 = Y.encodeStateAsUpdate(d), full2 = Y.encodeStateAsUpdateV2(d)
  add(`doc${i}_full`, 0, 1, full1); add(`doc${i}_full`, 0, 2, full2)
  add(`doc${i}_sv`, 3, 1, full1, null, Y.encodeStateVectorFromUpdate(full1))
  add(`doc${i}_sv`, 3, 2, full2, null, Y.encodeStateVectorFromUpdate(full1))
  add(`doc${i}_conv12`, 4, 1, full1, null, Y.convertUpdateFormatV1ToV2(full1))
  add(`doc${i}_conv21`, 5, 2, full2, null, Y.convertUpdateFormatV2ToV1(full2))
  ups.forEach((u, k) => add(`doc${i}_up${k}`, 0, 1, u))
  ups2.forEach((u, k) => add(`doc${i}_up${k}`, 0, 2, u))
  for (let k = 0; k + 1 < ups.length; k++) {
    add(`doc${i}_merge${k}`, 1, 1, ups[k], ups[k + 1], Y.mergeUpdates([ups[k], ups[k + 1]]))
    add(`doc${i}_mergeR${k}`, 1, 1, ups[k + 1], ups[k], Y.mergeUpdates([ups[k + 1], ups[k]]))
    add(`doc${i}_merge${k}`, 1, 2, ups2[k], ups2[k + 1], Y.mergeUpdatesV2([ups2[k], ups2[k + 1]]))
    if (k + 2 < ups.length) add(`doc${i}_mergegap${k}`, 1, 1, ups[k], ups[k + 2], Y.mergeUpdates([ups[k], ups[k + 2]]))
    if (k % 12 === 0) add(`doc${i}_mergefull${k}`, 1, 1, full1, ups[k], Y.mergeUpdates([full1, ups[k]]))
    add(`doc${i}_mergedup${k}`, 1, 1, ups[k], ups[k], Y.mergeUpdates([ups[k], ups[k]]))
  }
  // diff against the state after each prefix of updates
  const pre = new Y.Doc({ gc: d.gc })
  ups.forEach((u, k) => {
    Y.applyUpdate(pre, u)
    const sv = Y.encodeStateVector(pre)
    if (k % 8 !== 1 && k + 1 !== ups.length) return
    add(`doc${i}_diff${k}`, 2, 1, full1, sv, Y.diffUpdate(full1, sv))
    add(`doc${i}_diff${k}`, 2, 2, full2, sv, Y.diffUpdateV2(full2, sv))
  })
}
// diffs that cut strings inside: sv in the middle of a run, and in a surrogate pair
{
  const d = new Y.Doc(); d.clientID = 3; d.getText('t').insert(0, 'ab😀cd'); const f = Y.encodeStateAsUpdate(d)
  for (let c = 1; c < 6; c++) {
    const e = enc.createEncoder(); enc.writeVarUint(e, 1); enc.writeVarUint(e, 3); enc.writeVarUint(e, c)
    const sv = enc.toUint8Array(e)
    add(`astral_diff${c}`, 2, 1, f, sv, Y.diffUpdate(f, sv))
    add(`astral_diff${c}`, 2, 2, Y.encodeStateAsUpdateV2(d), sv, Y.diffUpdateV2(Y.encodeStateAsUpdateV2(d), sv))
  }
  // merge of two overlapping slices of the same string (forces sliceStruct)
  const p1 = Y.diffUpdate(f, new Uint8Array([1, 3, 3])), p2 = Y.diffUpdate(f, new Uint8Array([1, 3, 1]))
  add('astral_merge_slices', 1, 1, p1, p2, Y.mergeUpdates([p1, p2]))
  add('astral_merge_slices2', 1, 1, p2, f, Y.mergeUpdates([p2, f]))
  add('astral_merge_slices3', 1, 1, f, p1, Y.mergeUpdates([f, p1]))
}

const cstr = (s) => JSON.stringify(s)
console.log('/* generated by tests/crdt/vectors/gen_yupdate_vectors.js with yjs ' + require('yjs/package.json').version + '; do not edit */')
const pool = new Map()
const ref = (u) => { const k = hex(u); if (!pool.has(k)) { pool.set(k, pool.size); console.log(`static const uint8_t yb${pool.size - 1}[] = {${k || '0'}};`) } return `yb${pool.get(k)}` }
const rows = out.map((v) => `    {${cstr(v.name)}, ${v.kind}, ${v.version}, ${ref(v.a)}, ${v.a.length}, ${ref(v.b)}, ${v.b.length}, ${ref(v.res)}, ${v.res.length}},`)
console.log('static const struct yvec yvecs[] = {')
rows.forEach((r) => console.log(r))
console.log('};')
