#!/usr/bin/env node
'use strict';
// bench/crdt: the C engine (build/dev/td_crdtbench) against the npm peers on the same traces.
//   bench/crdt/run.js [--traces automerge-paper,rustcode,...] [--runs 3] [--peers yjs,loro,...]
//                     [--budget-s 60] [--driver PATH] [--out FILE.json]
// Each peer runs in its own node process per trace (peer.js); the C driver likewise. Prints one
// table per trace (each cell: value and peer/tandem ratio; > 1 means tandem is faster/smaller)
// and writes the raw results as JSON (default bench/crdt/results/<UTC timestamp>.json).
// See README.md for what is measured.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const HERE = __dirname;
const REPO = path.resolve(HERE, '../..');
const ALL_PEERS = ['yjs', 'ywasm', 'loro', 'diamond-types', 'automerge'];
const DEFAULT_TRACES = ['automerge-paper', 'rustcode', 'friendsforever_flat'];

function parseArgs() {
  const o = {
    traces: DEFAULT_TRACES,
    runs: 3,
    peers: ALL_PEERS,
    budgetS: 60,
    driver: path.join(REPO, 'build/dev/td_crdtbench'),
    tracesDir: process.env.TANDEM_TRACES || path.resolve(REPO, '../shared/traces'),
    out: null,
  };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const v = () => {
      if (i + 1 >= a.length) throw new Error(`${a[i]} needs a value`);
      return a[++i];
    };
    switch (a[i]) {
      case '--traces':
        o.traces = v().split(',').filter(Boolean);
        break;
      case '--runs':
        o.runs = Number(v());
        break;
      case '--peers':
        o.peers = v().split(',').filter(Boolean);
        break;
      case '--budget-s':
        o.budgetS = Number(v());
        break;
      case '--driver':
        o.driver = path.resolve(v());
        break;
      case '--traces-dir':
        o.tracesDir = path.resolve(v());
        break;
      case '--out':
        o.out = path.resolve(v());
        break;
      case '-h':
      case '--help':
        console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 9).join('\n').replace(/^\/\/ ?/gm, ''));
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown argument ${a[i]} (see --help)`);
    }
  }
  for (const p of o.peers) if (!ALL_PEERS.includes(p)) throw new Error(`unknown peer ${p} (known: ${ALL_PEERS.join(', ')})`);
  return o;
}

function traceFile(o, t) {
  if (t.includes('/') || t.endsWith('.gz') || t.endsWith('.json')) return path.resolve(t);
  return path.join(o.tracesDir, `${t}.json.gz`);
}

/** Last JSON line of a child's stdout, or an error record. */
function lastJson(r, engine, trace) {
  const lines = (r.stdout || '').toString().trim().split('\n').filter((l) => l.startsWith('{'));
  if (r.status === 0 && lines.length > 0) {
    try {
      return JSON.parse(lines[lines.length - 1]);
    } catch {
      /* fall through */
    }
  }
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
  const err = (r.stderr || '').toString().trim().split('\n').slice(-3).join(' | ');
  return { engine, trace, error: `${why}${err ? `: ${err}` : ''}` };
}

function runDriver(o, file, trace) {
  if (!fs.existsSync(o.driver)) return { engine: 'tandem', trace, error: 'n/a (driver missing)' };
  const r = spawnSync(o.driver, [file, '--runs', String(o.runs)], { timeout: 30 * 60 * 1000, maxBuffer: 64 << 20 });
  return lastJson(r, 'tandem', trace);
}

function runPeer(o, peer, file, trace) {
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', '--max-old-space-size=4096', path.join(HERE, 'peer.js'), '--peer', peer, '--trace', file, '--runs', String(o.runs), '--budget-ms', String(o.budgetS * 1000)],
    { timeout: 30 * 60 * 1000, maxBuffer: 64 << 20 },
  );
  return lastJson(r, peer, trace);
}

const METRICS = [
  ['replay_ms', 'replay', 'ms'],
  ['replay_updates_ms', 'replay+upd', 'ms'],
  ['apply_updates_ms', 'apply upd', 'ms'],
  ['encode_ms', 'encode', 'ms'],
  ['load_ms', 'load', 'ms'],
  ['final_bytes', 'size', 'B'],
  ['mem_bytes', 'mem', 'B'],
  ['rss_bytes', 'rss delta', 'B'],
];

function fmtNum(v, unit) {
  if (unit === 'B') {
    if (Math.abs(v) >= 1048576) return `${(v / 1048576).toFixed(2)} MiB`;
    if (Math.abs(v) >= 1024) return `${(v / 1024).toFixed(1)} KiB`;
    return `${v} B`;
  }
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function fmtRatio(r) {
  if (!Number.isFinite(r)) return '';
  return r >= 10 ? ` (${r.toFixed(0)}x)` : ` (${r.toFixed(2)}x)`;
}

function cell(res, key, unit, ours) {
  if (res.error) return '';
  if (res.skipped && (res.skipped[key.replace(/_ms$/, '')] || res.skipped.all)) return 'skipped';
  const v = res[key];
  if (typeof v !== 'number') return 'n/a';
  const base = ours && !ours.error && typeof ours[key] === 'number' && ours[key] > 0 ? ours[key] : null;
  return fmtNum(v, unit) + (base && res.engine !== 'tandem' ? fmtRatio(v / base) : '');
}

function table(trace, rows) {
  const ours = rows.find((r) => r.engine === 'tandem');
  const head = ['engine', ...METRICS.map(([, h, u]) => `${h} (${u === 'B' ? 'bytes' : 'ms'})`), 'ok'];
  const body = rows.map((r) => {
    const name = r.version ? `${r.engine} ${r.version}` : r.engine;
    if (r.error) return [name, r.error, ...METRICS.slice(1).map(() => ''), ''];
    const ok = r.ok === true ? 'yes' : r.ok === false ? 'NO' : '-';
    return [name, ...METRICS.map(([k, , u]) => cell(r, k, u, ours)), ok];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] === undefined ? 0 : String(b[i]).length))));
  // An error message spans the metric columns; do not let it widen them.
  for (const r of rows) if (r.error) widths[1] = Math.max(head[1].length, ...body.filter((b, j) => !rows[j].error).map((b) => b[1].length));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ').trimEnd();
  const txns = rows.find((r) => r.txns)?.txns;
  const out = [`trace ${trace}${txns ? ` (${txns.toLocaleString('en-US')} txns)` : ''}`, line(head), line(widths.map((w) => '-'.repeat(w)))];
  for (const b of body) out.push(line(b));
  const skips = [];
  for (const r of rows) {
    for (const [k, why] of Object.entries(r.skipped || {})) skips.push(`  ${r.engine}: ${k} skipped: ${why}`);
  }
  return out.concat(skips).join('\n');
}

function main() {
  const o = parseArgs();
  const started = new Date();
  const results = [];
  const host = { node: process.version, cpus: require('node:os').cpus().length, cpu: require('node:os').cpus()[0]?.model };
  console.log(`bench/crdt: ${o.traces.join(', ')}; median of ${o.runs} runs; per-measurement budget ${o.budgetS} s`);
  console.log(`ratio in parentheses = peer / tandem (> 1: tandem is faster or smaller); node ${host.node}, ${host.cpus} CPUs (${host.cpu})`);
  for (const t of o.traces) {
    const file = traceFile(o, t);
    const name = path.basename(file).replace(/\.json(\.gz)?$/, '');
    if (!fs.existsSync(file)) {
      console.log(`\ntrace ${t}: ${file} not found, skipped`);
      continue;
    }
    const rows = [];
    process.stderr.write(`[${name}] tandem...\n`);
    rows.push(runDriver(o, file, name));
    for (const p of o.peers) {
      process.stderr.write(`[${name}] ${p}...\n`);
      rows.push(runPeer(o, p, file, name));
    }
    results.push(...rows);
    console.log('\n' + table(name, rows));
  }
  const outFile = o.out || path.join(HERE, 'results', `${started.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify({ started: started.toISOString(), runs: o.runs, budget_s: o.budgetS, host, results }, null, 2) + '\n');
  console.log(`\nraw results: ${path.relative(process.cwd(), outFile)}`);
}

main();
