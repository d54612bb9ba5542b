#!/usr/bin/env node
'use strict';
// bench/yjs: y-websocket editors typing against tandem (/yjs) and the reference server
// @y/websocket-server 0.1.1 (yjs 13.6.33), in one invocation.
//   bench/yjs/run.js [--quick | --full] [--servers tandem,ref] [--workloads A,B] [--rooms R]
//                    [--duration S] [--interval-ms MS] [--b-editors N] [--b-interval-ms MS]
//                    [--clients K] [--no-pin] [--tandem BIN] [--tandem-config FILE] [--out FILE]
// A: R rooms x 5 editors; B: one room x N editors; every editor inserts 1-3 chars at a random
// position every interval (+-50% jitter). Prints one table (peer / tandem ratios) and writes the
// raw results to bench/yjs/results/<UTC timestamp>.json. See README.md for the method.

const { spawn, fork, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');

const HERE = __dirname;
const REPO = path.resolve(HERE, '../..');
const REF_SERVER = path.join(HERE, 'node_modules/@y/websocket-server/src/server.js');
const CLK_TCK = 100;
const PAGE_KIB = 4;

function parseArgs() {
  const o = {
    mode: 'quick',
    servers: ['tandem', 'ref'],
    workloads: ['A', 'B'],
    rooms: null,
    editorsPerRoom: 5,
    duration: null,
    intervalMs: null,
    bEditors: 200,
    bIntervalMs: null,
    clients: 2,
    pin: true,
    tandem: path.join(REPO, 'build/dev/tandem'),
    tandemConfig: null,
    out: null,
  };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    const v = () => {
      if (i + 1 >= a.length) throw new Error(`${a[i]} needs a value`);
      return a[++i];
    };
    switch (a[i]) {
      case '--quick': o.mode = 'quick'; break;
      case '--full': o.mode = 'full'; break;
      case '--servers': o.servers = v().split(',').filter(Boolean); break;
      case '--workloads': o.workloads = v().toUpperCase().split(',').filter(Boolean); break;
      case '--rooms': o.rooms = Number(v()); break;
      case '--duration': o.duration = Number(v()); break;
      case '--interval-ms': o.intervalMs = Number(v()); break;
      case '--b-editors': o.bEditors = Number(v()); break;
      case '--b-interval-ms': o.bIntervalMs = Number(v()); break;
      case '--clients': o.clients = Number(v()); break;
      case '--no-pin': o.pin = false; break;
      case '--tandem': o.tandem = path.resolve(v()); break;
      case '--tandem-config': o.tandemConfig = path.resolve(v()); break;
      case '--out': o.out = path.resolve(v()); break;
      case '-h':
      case '--help':
        console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 10).join('\n').replace(/^\/\/ ?/gm, ''));
        process.exit(0);
      // eslint-disable-next-line no-fallthrough
      default:
        throw new Error(`unknown argument ${a[i]} (see --help)`);
    }
  }
  if (o.rooms === null) o.rooms = o.mode === 'full' ? 1000 : 200;
  if (o.duration === null) o.duration = o.mode === 'full' ? 20 : 10;
  if (o.intervalMs === null) o.intervalMs = o.mode === 'full' ? 5000 : 1000;
  if (o.bIntervalMs === null) o.bIntervalMs = 5000;
  for (const s of o.servers) if (!['tandem', 'ref'].includes(s)) throw new Error(`unknown server ${s}`);
  for (const w of o.workloads) if (!['A', 'B'].includes(w)) throw new Error(`unknown workload ${w}`);
  if (!(o.clients >= 1)) throw new Error('--clients must be >= 1');
  return o;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function procCpuS(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
  } catch {
    return NaN;
  }
}

function procRssMiB(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ');
    return (Number(f[1]) * PAGE_KIB) / 1024;
  } catch {
    return NaN;
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

function pinned(cpu, argv, pin) {
  return pin ? ['taskset', ['-c', String(cpu), ...argv]] : [argv[0], argv.slice(1)];
}

/** Starts a server; resolves {proc, url, name}. */
async function startServer(o, name, work) {
  let proc;
  let url;
  if (name === 'tandem') {
    const cfg = o.tandemConfig || path.join(work, 'tandem.json');
    if (!o.tandemConfig) fs.writeFileSync(cfg, JSON.stringify({ log: { level: 'warn' } }));
    const data = path.join(work, 'data');
    fs.rmSync(data, { recursive: true, force: true });
    const [cmd, args] = pinned(0, [o.tandem, '--port', '0', '--data-dir', data, '--config', cfg, '--log-level', 'info'], o.pin);
    proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const port = await new Promise((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('tandem did not log its port within 10 s')), 10000);
      proc.stderr.on('data', (d) => {
        buf += d;
        const m = /msg="listening".*?port=(\d+)/.exec(buf);
        if (m) {
          clearTimeout(t);
          resolve(Number(m[1]));
        }
        if (buf.length > 65536) buf = buf.slice(-4096);
      });
      proc.once('exit', (c) => reject(new Error(`tandem exited (${c}): ${buf.slice(-500)}`)));
    });
    proc.stderr.resume();
    url = `ws://127.0.0.1:${port}/yjs`;
  } else {
    const port = await freePort();
    const [cmd, args] = pinned(0, [process.execPath, REF_SERVER], o.pin);
    proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, HOST: '127.0.0.1', PORT: String(port) } });
    await new Promise((resolve, reject) => {
      let buf = '';
      const t = setTimeout(() => reject(new Error('reference server did not start within 10 s')), 10000);
      proc.stdout.on('data', (d) => {
        buf += d;
        if (buf.includes('running at')) {
          clearTimeout(t);
          resolve();
        }
      });
      proc.once('exit', (c) => reject(new Error(`reference server exited (${c}): ${buf}`)));
    });
    proc.stdout.resume();
    url = `ws://127.0.0.1:${port}`;
  }
  return { proc, url, name };
}

function stopServer(srv) {
  return new Promise((resolve) => {
    if (srv.proc.exitCode !== null) return resolve();
    srv.proc.once('exit', () => resolve());
    srv.proc.kill('SIGTERM');
    setTimeout(() => srv.proc.kill('SIGKILL'), 3000);
  });
}

function startClients(o, k) {
  const kids = [];
  for (let i = 0; i < k; i++) {
    // Pinned with `taskset -c 1 node client.js` so that every thread of the process is pinned.
    const c = fork(path.join(HERE, 'client.js'), [], {
      execPath: o.pin ? 'taskset' : process.execPath,
      execArgv: [
        ...(o.pin ? ['-c', '1', process.execPath] : []),
        ...(process.env.BENCH_YJS_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_YJS_PROF] : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    c.queue = [];
    c.waiters = [];
    c.on('message', (m) => {
      const w = c.waiters.shift();
      if (w) w(m);
      else c.queue.push(m);
    });
    kids.push(c);
  }
  return kids;
}

function ask(kid, msg) {
  return new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`client process exited (${code})`));
    kid.once('exit', onExit);
    kid.waiters.push((m) => {
      kid.off('exit', onExit);
      resolve(m);
    });
    kid.send(msg);
  });
}
const askAll = (kids, msg) => Promise.all(kids.map((k) => ask(k, msg)));

function pct(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** One workload against one server. */
async function runOne(o, wl, serverName, work) {
  const rooms = wl === 'A' ? o.rooms : 1;
  const perRoom = wl === 'A' ? o.editorsPerRoom : o.bEditors;
  const intervalMs = wl === 'A' ? o.intervalMs : o.bIntervalMs;
  const k = Math.min(o.clients, rooms * perRoom);
  const res = { workload: wl, server: serverName, rooms, editorsPerRoom: perRoom, intervalMs, durationS: o.duration, clientProcs: k };
  const srv = await startServer(o, serverName, work);
  const kids = startClients(o, k);
  try {
    await sleep(1000);
    res.rssBaselineMiB = procRssMiB(srv.proc.pid);
    const lists = kids.map(() => []);
    let j = 0;
    for (let r = 0; r < rooms; r++) for (let e = 0; e < perRoom; e++, j++) lists[j % k].push({ room: `bench-${wl}-${r}`, idx: e });
    const conn = await Promise.all(kids.map((c, i) => ask(c, { cmd: 'connect', url: srv.url, editors: lists[i] })));
    res.connectMs = Math.max(...conn.map((c) => c.ms));
    res.connectFailed = conn.reduce((s, c) => s + c.failed, 0);
    await sleep(1000);
    res.rssConnectedMiB = procRssMiB(srv.proc.pid);

    const cpu0 = procCpuS(srv.proc.pid);
    const kcpu0 = kids.map((c) => procCpuS(c.pid));
    const t0 = process.hrtime.bigint();
    const typed = await askAll(kids, { cmd: 'type', durationMs: o.duration * 1000, intervalMs });
    const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
    res.serverCpuS = procCpuS(srv.proc.pid) - cpu0;
    res.clientCpuS = kids.map((c, i) => procCpuS(c.pid) - kcpu0[i]);
    res.rssTypingMiB = procRssMiB(srv.proc.pid);
    res.typingWallS = wallS;
    res.updates = typed.reduce((s, t) => s + t.sent, 0);
    res.updatesPerS = res.updates / wallS;

    const dr = await askAll(kids, { cmd: 'drain', quietMs: 1500, maxMs: 20000 });
    res.drainMs = Math.max(...dr.map((d) => d.ms));
    await sleep(2000);
    res.rssIdleMiB = procRssMiB(srv.proc.pid);
    res.rssPerRoomKiB = ((res.rssIdleMiB - res.rssBaselineMiB) * 1024) / rooms;

    const reps = await askAll(kids, { cmd: 'report' });
    // Merge: per edit, the latest receive time over all receivers and how many received it.
    const recv = new Map();
    for (const r of reps)
      for (const [key, [t, n]] of r.recv) {
        const x = recv.get(key);
        if (x === undefined) recv.set(key, [t, n]);
        else {
          if (t > x[0]) x[0] = t;
          x[1] += n;
        }
      }
    const lat = [];
    let incomplete = 0;
    for (const r of reps)
      for (const [key, ts] of r.sent) {
        const x = recv.get(key);
        if (x === undefined || x[1] < perRoom - 1) incomplete++;
        else lat.push((x[0] - ts) / 1000);
      }
    lat.sort((a, b) => a - b);
    res.fanoutMs = { p50: pct(lat, 50), p99: pct(lat, 99), max: lat.length ? lat[lat.length - 1] : NaN, n: lat.length };
    res.incomplete = incomplete;
    res.deliveries = reps.reduce((s, r) => s + r.recvTotal, 0);
    // Convergence: every editor of a room holds the same text.
    const digests = new Map();
    for (const r of reps)
      for (const [room, hs] of Object.entries(r.rooms)) {
        if (!digests.has(room)) digests.set(room, new Set());
        for (const h of Object.keys(hs)) digests.get(room).add(h);
      }
    let converged = 0;
    for (const s of digests.values()) if (s.size === 1) converged++;
    res.roomsConverged = converged;
    res.unsynced = reps.reduce((s, r) => s + r.unsynced, 0);
    res.clientCloses = reps.reduce((s, r) => s + r.closes, 0);
    res.clientRssMiB = reps.map((r) => r.rssMiB);
    res.serverAlive = srv.proc.exitCode === null;
  } finally {
    for (const c of kids) if (c.connected) c.send({ cmd: 'close' });
    await Promise.all(kids.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
    await stopServer(srv);
  }
  return res;
}

// ---- output ----

const SERVER_LABEL = { tandem: 'tandem', ref: 'y-ws-server' };

function fmt(v, d = 1) {
  if (v === undefined || v === null || Number.isNaN(v)) return '-';
  if (typeof v === 'string') return v;
  if (Math.abs(v) >= 100) return v.toFixed(0);
  return v.toFixed(d);
}

function printTable(o, results) {
  const rows = [];
  const cell = (wl, s) => results.find((r) => r.workload === wl && r.server === s);
  const metrics = [
    // [label, getter, decimals, ratio?]
    ['editors (rooms x per room)', (r) => `${r.rooms}x${r.editorsPerRoom}`, 0, false],
    ['updates/s sent', (r) => r.updatesPerS, 0, true],
    ['deliveries/s to editors', (r) => r.deliveries / r.typingWallS, 0, true],
    ['fan-out p50 ms', (r) => r.fanoutMs.p50, 1, true],
    ['fan-out p99 ms', (r) => r.fanoutMs.p99, 1, true],
    ['fan-out max ms', (r) => r.fanoutMs.max, 1, true],
    ['edits not seen by all', (r) => r.incomplete, 0, false],
    ['server CPU s (typing)', (r) => r.serverCpuS, 2, true],
    ['server CPU us / update', (r) => (r.serverCpuS * 1e6) / r.updates, 1, true],
    ['server RSS MiB baseline', (r) => r.rssBaselineMiB, 1, true],
    ['server RSS MiB end of typing', (r) => r.rssTypingMiB, 1, true],
    ['server RSS MiB idle, connected', (r) => r.rssIdleMiB, 1, true],
    ['RSS KiB / idle room (with editors)', (r) => (r.rooms > 1 ? r.rssPerRoomKiB : NaN), 1, true],
    ['client CPU s (typing, per proc)', (r) => r.clientCpuS.map((c) => c.toFixed(1)).join('+'), 0, false],
    // Busy share of the cores the clients may use (1 when pinned); >= 90% means client-limited.
    ['client CPU busy %', (r) => {
      const busy = (100 * r.clientCpuS.reduce((a, b) => a + b, 0)) / r.typingWallS / (o.pin ? 1 : os.cpus().length);
      return `${busy.toFixed(0)}%${busy >= 90 ? ' ^' : ''}`;
    }, 0, false],
    ['converged rooms', (r) => `${r.roomsConverged}/${r.rooms}`, 0, false],
    ['connect failures / reconnects', (r) => `${r.connectFailed + r.unsynced}/${r.clientCloses}`, 0, false],
  ];
  for (const wl of o.workloads) {
    const t = cell(wl, 'tandem');
    const p = cell(wl, 'ref');
    const any = t || p;
    if (!any) continue;
    rows.push([`${wl}: ${wl === 'A' ? 'many rooms' : 'one crowded room'}, ${any.durationS} s, edit every ${any.intervalMs} ms`, '', '', '']);
    for (const [label, get, d, ratio] of metrics) {
      const tv = t && !t.error ? get(t) : t ? 'failed' : undefined;
      const pv = p && !p.error ? get(p) : p ? 'failed' : undefined;
      let rv = '';
      if (ratio && typeof tv === 'number' && typeof pv === 'number' && tv !== 0 && !Number.isNaN(tv) && !Number.isNaN(pv)) rv = (pv / tv).toFixed(2);
      rows.push([`  ${label}`, fmt(tv, d), fmt(pv, d), rv]);
    }
  }
  const head = ['metric', SERVER_LABEL.tandem, `${SERVER_LABEL.ref} 0.1.1`, 'peer/tandem'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(w[i]) : String(c).padStart(w[i]))).join('  ');
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of rows) console.log(line(r));
  const errs = results.filter((r) => r.error);
  for (const e of errs) console.log(`failed: ${e.workload}/${e.server}: ${e.error}`);
  console.log('^ the client processes were (nearly) saturated: latency and rates are then limited by the clients.');
  console.log('peer/tandem: > 1 means tandem is faster or smaller for latency, CPU and RSS; for rates, > 1 means the peer did more.');
}

async function main() {
  const o = parseArgs();
  if (o.servers.includes('tandem') && !fs.existsSync(o.tandem)) throw new Error(`missing ${o.tandem} (cmake --build --preset dev)`);
  if (o.pin) {
    try {
      execFileSync('taskset', ['-c', '0', 'true']);
    } catch {
      o.pin = false;
    }
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-yjs-bench-'));
  const results = [];
  const started = new Date();
  try {
    for (const wl of o.workloads)
      for (const s of o.servers) {
        process.stderr.write(`bench/yjs: workload ${wl} against ${SERVER_LABEL[s]}...\n`);
        try {
          results.push(await runOne(o, wl, s, work));
        } catch (e) {
          results.push({ workload: wl, server: s, error: String((e && e.message) || e) });
        }
      }
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  const versions = {};
  for (const p of ['yjs', 'y-websocket', '@y/websocket-server', 'ws']) {
    try {
      versions[p] = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', p, 'package.json'), 'utf8')).version;
    } catch {
      versions[p] = null;
    }
  }
  const meta = {
    date: started.toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0] && os.cpus()[0].model,
    pinned: o.pin ? 'server on CPU 0, client processes on CPU 1' : 'no',
    versions,
    options: o,
  };
  printTable(o, results);
  const out = o.out || path.join(HERE, 'results', `${started.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}.json`);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ meta, results }, null, 1) + '\n');
  console.log(`raw results: ${path.relative(process.cwd(), out)}`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(`bench/yjs: ${e.stack || e}`);
  process.exit(2);
});
