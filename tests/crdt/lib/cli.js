'use strict';
// Runs `tandem doc ...` (the binary from TANDEM_BIN, default build/tandem) and manages the
// temp files the tests hand to it.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '../../..');
const DEFAULT_BIN = path.join(REPO, 'build/tandem');
const RUN_TIMEOUT_MS = Number(process.env.TANDEM_CRDT_TIMEOUT_MS || 120000);

function binPath() {
  return process.env.TANDEM_BIN ? path.resolve(process.env.TANDEM_BIN) : DEFAULT_BIN;
}

/**
 * Directory of the editing traces: TANDEM_TRACES, else ../shared/traces next to the repo (the
 * full set), else the small subset committed in tests/crdt/traces.
 */
function tracesDir() {
  if (process.env.TANDEM_TRACES) return path.resolve(process.env.TANDEM_TRACES);
  const shared = path.resolve(REPO, '../shared/traces');
  return fs.existsSync(shared) ? shared : path.resolve(__dirname, '../traces');
}

/** Throws a readable error when the binary is missing, so every test fails fast and clearly. */
function checkBinary() {
  const bin = binPath();
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch (e) {
    throw new Error(`tandem binary not found or not executable at ${bin} (${e.code}); run \`make build\` or set TANDEM_BIN`);
  }
  return bin;
}

function quote(a) {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${String(a).replace(/'/g, `'\\''`)}'`;
}

/** The shell command line for `tandem doc args...` (for failure messages and repro notes). */
function commandLine(args) {
  return ['tandem', 'doc', ...args].map(quote).join(' ');
}

/**
 * Runs `tandem doc args...`. Resolves nothing; returns {status, signal, stdout (Buffer),
 * stderr (string), cmd}. Never throws for a non-zero exit.
 */
function run(args, { input } = {}) {
  const bin = binPath();
  const r = spawnSync(bin, ['doc', ...args], {
    input,
    maxBuffer: 512 * 1024 * 1024,
    timeout: RUN_TIMEOUT_MS,
  });
  if (r.error && r.error.code !== 'ETIMEDOUT') throw r.error;
  return {
    status: r.status,
    signal: r.signal,
    stdout: r.stdout || Buffer.alloc(0),
    stderr: r.stderr ? r.stderr.toString('utf8') : '',
    cmd: commandLine(args),
    timedOut: !!(r.error && r.error.code === 'ETIMEDOUT'),
  };
}

/** Like run() but throws (with the command and stderr) unless the exit status is 0. */
function ok(args, opts) {
  const r = run(args, opts);
  if (r.status !== 0) {
    const how = r.timedOut ? 'timed out' : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`;
    const err = new Error(`\`${r.cmd}\` failed (${how}): ${r.stderr.trim().slice(0, 2000)}`);
    err.result = r;
    throw err;
  }
  return r;
}

/** JSON printed by show/stats; checks it is exactly one line. */
function okJson(args) {
  const r = ok(args);
  const text = r.stdout.toString('utf8');
  if (!text.endsWith('\n') || text.indexOf('\n') !== text.length - 1) {
    throw new Error(`\`${r.cmd}\` should print one JSON line, got ${JSON.stringify(text.slice(0, 300))}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`\`${r.cmd}\` printed invalid JSON (${e.message}): ${text.slice(0, 300)}`);
  }
}

/** Splits a (lib0 varUint length, bytes) record stream into Uint8Arrays. */
function readRecords(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let len = 0;
    let mult = 1;
    for (;;) {
      if (pos >= buf.length) throw new Error('record stream: truncated length');
      const b = buf[pos++];
      len += (b & 0x7f) * mult;
      mult *= 128;
      if (b < 0x80) break;
    }
    if (pos + len > buf.length) throw new Error('record stream: truncated record');
    out.push(new Uint8Array(buf.subarray(pos, pos + len)));
    pos += len;
  }
  return out;
}

/** A temp directory for one test file; remove() deletes it unless TANDEM_CRDT_KEEP=1. */
class Workdir {
  constructor(tag) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `tandem-crdt-${tag}-`));
    this.n = 0;
  }

  /** Writes bytes to a fresh file and returns its path. */
  file(name, bytes) {
    const p = path.join(this.dir, `${this.n++}-${name}`);
    fs.writeFileSync(p, bytes);
    return p;
  }

  /** A fresh path (not created). */
  path(name) {
    return path.join(this.dir, `${this.n++}-${name}`);
  }

  remove() {
    if (process.env.TANDEM_CRDT_KEEP === '1') return;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Saves a failing case for the bug notes: copies `files` (paths) into a fresh directory under
 * /tmp (TANDEM_CRDT_FAILDIR to change) and writes repro.txt with the commands and the message.
 * Returns the directory.
 */
function saveRepro(tag, files, lines) {
  const base = process.env.TANDEM_CRDT_FAILDIR || os.tmpdir();
  const dir = fs.mkdtempSync(path.join(base, `tandem-crdt-fail-${tag}-`));
  const map = {};
  for (const f of files) {
    const dst = path.join(dir, path.basename(f));
    fs.copyFileSync(f, dst);
    map[f] = path.basename(f);
  }
  let text = lines.join('\n');
  for (const [from, to] of Object.entries(map)) text = text.split(from).join(to);
  fs.writeFileSync(path.join(dir, 'repro.txt'), text + '\n');
  return dir;
}

module.exports = {
  REPO,
  binPath,
  tracesDir,
  checkBinary,
  commandLine,
  run,
  ok,
  okJson,
  readRecords,
  Workdir,
  saveRepro,
};
