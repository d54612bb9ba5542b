// Replays the first N txns of a sequential trace into yjs (clientID 1, root "text"), writes every
// per-txn update (v1 or v2) as a (varUint length, bytes) stream to OUT.updates, and the result of
// a balanced tree of pairwise yjs mergeUpdates (split at floor(mid)) to OUT.merged, for comparing
// with td_yupdate_merge. Usage: node merge_check.js TRACE.json.gz N OUT [v2]
const fs = require('fs'), zlib = require('zlib'), Y = require('yjs'), enc = require('lib0/encoding')
const [trace, n, outp, ver] = process.argv.slice(2)
const v2 = ver === 'v2'
const data = JSON.parse(zlib.gunzipSync(fs.readFileSync(trace)))
const doc = new Y.Doc(); doc.clientID = 1
const text = doc.getText('text'); const ups = []
doc.on(v2 ? 'updateV2' : 'update', (u) => ups.push(u))
for (const txn of data.txns.slice(0, Number(n))) {
  doc.transact(() => {
    for (const [pos, del, ins] of txn.patches) {
      // code points -> UTF-16
      const s = text.toString(); const cps = Array.from(s); const p = cps.slice(0, pos).join('').length
      const d = cps.slice(pos, pos + del).join('').length
      if (d) text.delete(p, d)
      if (ins) text.insert(p, ins)
    }
  })
}
const merge = v2 ? Y.mergeUpdatesV2 : Y.mergeUpdates
const tree = (lo, hi) => hi - lo === 1 ? ups[lo] : merge([tree(lo, lo + Math.floor((hi - lo) / 2)), tree(lo + Math.floor((hi - lo) / 2), hi)])
const e = enc.createEncoder(); ups.forEach((u) => enc.writeVarUint8Array(e, u))
fs.writeFileSync(outp + '.updates', enc.toUint8Array(e))
fs.writeFileSync(outp + '.merged', tree(0, ups.length))
console.log(ups.length, 'updates')
