'use strict';
// Prints the benchmark table for one results file written by bench/run.sh.
//   node bench/report.js bench/results/<timestamp>.jsonl
// One column per server, then tandem/peer ratios (tandem = tandem with centrifuge-protobuf).
// Failed or skipped runs show "failed" with the reason in a numbered footnote.
const fs = require('fs');

const file = process.argv[2];
if (!file) {
  console.error('usage: node bench/report.js RESULTS.jsonl');
  process.exit(2);
}
const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
let meta = {};
const res = new Map(); // "server/scenario" -> object
for (const l of lines) {
  let o;
  try {
    o = JSON.parse(l);
  } catch (e) {
    continue;
  }
  if (o.meta) meta = o.meta;
  else if (o.server && o.scenario) res.set(`${o.server}/${o.scenario}`, o);
}

const MAIN = 'tandem-pb';
const allServers = ['tandem-pb', 'tandem-json', 'uws', 'nats', 'ws'];
const servers = allServers.filter((s) => !meta.servers || meta.servers.includes(s));
const peers = servers.filter((s) => s !== MAIN && s !== 'tandem-json');
const showRatios = servers.includes(MAIN);
const header = {
  'tandem-pb': 'tandem pb',
  'tandem-json': 'tandem json',
  uws: 'uWS.js',
  nats: 'nats',
  ws: 'node ws',
};

const footnotes = [];
const LG_BUSY = 0.9;
const LG_MARK = '^';
let lgBusySeen = false;
function footnote(text) {
  let i = footnotes.indexOf(text);
  if (i < 0) {
    footnotes.push(text);
    i = footnotes.length - 1;
  }
  return `[${i + 1}]`;
}

function si(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
  if (a >= 1e3) return (v / 1e3).toFixed(1) + 'k';
  if (a >= 100) return v.toFixed(0);
  return v.toFixed(1);
}
function us(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (v >= 1e6) return (v / 1e6).toFixed(2) + ' s';
  if (v >= 1e4) return (v / 1e3).toFixed(0) + ' ms';
  if (v >= 1e3) return (v / 1e3).toFixed(1) + ' ms';
  return v.toFixed(0) + ' us';
}
function bytes(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '-';
  if (v >= 1024 * 1024) return (v / 1024 / 1024).toFixed(1) + ' MiB';
  if (v >= 10 * 1024) return (v / 1024).toFixed(0) + ' KiB';
  if (v >= 1024) return (v / 1024).toFixed(1) + ' KiB';
  return v.toFixed(0) + ' B';
}

// Metric rows. `get` reads the value from a result, `fmt` prints it. `better` says which
// direction is good (only for the legend; ratios are always tandem / peer).
const M = {
  dps: { name: 'deliveries/s', get: (o) => o.deliveries_per_s, fmt: si },
  dpc: { name: 'deliv per CPU-s', get: (o) => o.deliveries_per_cpu_s, fmt: si },
  p50: { name: 'p50 latency', get: (o) => o.lat_p50_us, fmt: us },
  p99: { name: 'p99 latency', get: (o) => o.lat_p99_us, fmt: us },
  p999: { name: 'p99.9 latency', get: (o) => o.lat_p999_us, fmt: us },
  rss: { name: 'RSS per conn', get: (o) => o.rss_per_conn_bytes, fmt: bytes },
  cps: { name: 'connects/s', get: (o) => o.connect_per_s, fmt: si },
  rate: {
    name: 'offered pub/s',
    get: (o) => (o.publications && o.seconds ? o.publications / o.seconds : null),
    fmt: si,
    noRatio: true,
  },
};

function scenarioRows() {
  const rows = [];
  const have = (prefix) => [...res.keys()].some((k) => k.split('/')[1].startsWith(prefix));
  for (const n of [1000, 10000]) {
    for (const b of [1, 16]) {
      const id = `s1-n${n}-b${b}`;
      if (have(id)) rows.push({ id, title: `(1) 1 channel, N=${n.toLocaleString('en-US')}, ${b} pub/round`, m: ['dps', 'dpc', 'p99'] });
    }
  }
  if (have('s2-')) rows.push({ id: 's2-rooms-10000x1000', title: '(2) 10,000 conns in 1,000 rooms of 10', m: ['dps', 'dpc', 'p99'] });
  const idleNs = [...new Set([...res.keys()].map((k) => k.split('/')[1]).filter((s) => s.startsWith('s3-idle-')).map((s) => +s.slice(8)))].sort((a, b) => a - b);
  for (const n of idleNs) rows.push({ id: `s3-idle-${n}`, title: `(3) idle, ${n.toLocaleString('en-US')} conns, 1 channel each`, m: ['rss'] });
  const latNs = [...new Set([...res.keys()].map((k) => k.split('/')[1]).filter((s) => s.startsWith('s4-lat-n')).map((s) => +s.split('-')[2].slice(1)))].sort((a, b) => a - b);
  for (const n of latNs) {
    for (const p of [25, 50, 75]) {
      rows.push({ id: `s4-lat-n${n}-p${p}`, title: `(4) latency, N=${n.toLocaleString('en-US')}, ${p}% of own max`, m: ['rate', 'p50', 'p99', 'p999'] });
    }
  }
  if (have('s5-')) rows.push({ id: 's5-connect-10000', title: '(5) connection setup, 10,000 clients', m: ['cps'] });
  return rows;
}

const cols = ['scenario', 'metric', ...servers.map((s) => header[s])];
if (showRatios) for (const p of peers) cols.push(`tandem/${header[p]}`);
const table = [cols];
for (const row of scenarioRows()) {
  let first = true;
  for (const key of row.m) {
    const metric = M[key];
    const cells = [first ? row.title : '', metric.name];
    first = false;
    const vals = {};
    for (const s of servers) {
      const o = res.get(`${s}/${row.id}`);
      if (!o) {
        cells.push('-');
        continue;
      }
      if (o.failed) {
        cells.push(`${o.reason && o.reason.startsWith('skipped') ? 'skipped' : 'failed'} ${footnote(`${header[s]}: ${o.reason}`)}`);
        continue;
      }
      const v = metric.get(o);
      vals[s] = v;
      let cell = metric.fmt(v);
      const bad = [];
      if (o.errors) bad.push(`${o.errors} errors`);
      if (o.expected_deliveries != null && o.deliveries != null && o.deliveries < o.expected_deliveries && o.mode !== 'rate') {
        bad.push(`${o.deliveries} of ${o.expected_deliveries} deliveries`);
      }
      if (bad.length && key === row.m[0]) cell += ' ' + footnote(`${header[s]}, ${row.id}: ${bad.join(', ')}`);
      // The load generator is one core: when it was (nearly) saturated, the number may be
      // its limit rather than the server's.
      if (key === row.m[0] && o.mode !== 'idle' && o.loadgen_cpu_s != null && o.seconds > 0 &&
          o.loadgen_cpu_s / o.seconds >= LG_BUSY) {
        cell += ' ' + LG_MARK;
        lgBusySeen = true;
      }
      cells.push(cell);
    }
    if (showRatios) {
      for (const p of peers) {
        const a = vals[MAIN];
        const b = vals[p];
        if (metric.noRatio || a == null || b == null || !(b > 0)) cells.push('');
        else cells.push((a / b).toFixed(2) + 'x');
      }
    }
    table.push(cells);
  }
}

const widths = cols.map((_, i) => Math.max(...table.map((r) => String(r[i] ?? '').length)));
const fmtRow = (r) =>
  r.map((c, i) => (i < 2 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ').trimEnd();

const out = [];
out.push(`tandem benchmark (${meta.command || 'bench/run.sh'}), ${meta.date || ''}`);
out.push(`machine: ${meta.nproc || '?'} CPUs, ${meta.cpu || '?'}, kernel ${meta.kernel || '?'}; ${meta.pinning || ''}`);
out.push(`versions: ${meta.tandem || 'tandem'}; uWS.js ${meta.uws_js || '?'} (native); nats-server ${meta.nats_server || '?'}; ws ${meta.ws || '?'}; node ${meta.node || '?'}`);
out.push(`each measurement: ${meta.warmup_s ?? '?'} s warm-up, ${meta.measure_s ?? '?'} s measured; payload ${meta.payload ?? '?'} B; loopback 127.0.0.1`);
out.push('');
out.push(fmtRow(table[0]));
out.push(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of table.slice(1)) {
  if (r[0] !== '' && out.length > 7) out.push('');
  out.push(fmtRow(r));
}
out.push('');
out.push('tandem pb = tandem with centrifuge-protobuf (ratios use it); tandem json = centrifuge-json.');
out.push('Higher is better for deliveries/s, per CPU-s and connects/s; lower is better for latency and RSS.');
out.push('"deliv per CPU-s" = deliveries / (server user+system CPU seconds during the measurement).');
if (lgBusySeen) {
  out.push(`${LG_MARK} = the load generator used >= ${LG_BUSY * 100}% of its CPU: the figure may be its limit, not the server's.`);
}
for (const n of meta.notes || []) out.push(`note: ${n}`);
footnotes.forEach((f, i) => out.push(`[${i + 1}] ${f}`));
console.log(out.join('\n'));
