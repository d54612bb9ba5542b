'use strict';
// Starts the real tandem binary for a test and talks to its HTTP API.
//
// startServer() writes the config to a fresh temp dir, spawns the binary on an ephemeral
// port and resolves once the server logs `msg="listening" ... port=N`. Every wait is
// bounded: a binary that is missing, exits early or never logs the line makes the
// promise reject with the captured output instead of hanging the suite.
//
// A config with tls.cert_file and tls.key_file (and tls.tcp not false) makes the server speak
// TLS only on TCP: the health check, apiCall and request() then use https with the
// certificate as the CA, and url/httpUrl are wss:// and https:// URLs.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');

const DEFAULT_BIN = path.resolve(__dirname, '../../../build/tandem');
const LISTENING_RE = /msg="listening".*port=(\d+)/;
const START_TIMEOUT_MS = 10000;
const STOP_GRACE_MS = 3000;
const API_TIMEOUT_MS = 5000;
const HEALTH_TIMEOUT_MS = 3000;

// A server that never became ready makes every later start in this process fail at once
// with the same error, so a test file fails in seconds instead of 10 s per suite.
let stuckFailure = null;

function binPath() {
  return process.env.TANDEM_BIN ? path.resolve(process.env.TANDEM_BIN) : DEFAULT_BIN;
}

function waitExit(proc, ms) {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      proc.off('exit', onExit);
      resolve(false);
    }, ms);
    function onExit() {
      clearTimeout(timer);
      resolve(true);
    }
    proc.once('exit', onExit);
  });
}

/**
 * Spawns tandem with `config` (an object, written as JSON) plus extra `args`, waits for its
 * "listening" log line, then checks that GET /health answers 200.
 * `dataDir` (optional) is used as --data-dir and survives stop(), for restart tests.
 * Resolves to {port, url, httpUrl, proc, stop(), kill(), output()}; rejects after 10 s (13 s with
 * the health check), or as soon as the process fails to start or exits, with an Error
 * carrying the captured output.
 */
/** The certificate to trust when `config` makes TCP speak TLS (docs/tls.md), else null. */
function tlsCa(config) {
  const t = config && config.tls;
  if (!t || !t.cert_file || !t.key_file || t.tcp === false) return null;
  return fs.readFileSync(t.cert_file);
}

/**
 * One HTTP request to srv (https with srv.ca when the server speaks TLS) with Node's http(s)
 * module. Resolves to {status, headers, text}; rejects on a connection error or after
 * `timeout` ms.
 */
function request(srv, { method = 'GET', path: reqPath = '/', headers = {}, body = null, timeout = API_TIMEOUT_MS } = {}) {
  const mod = srv.ca ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      `${srv.httpUrl}${reqPath}`,
      { method, headers, ca: srv.ca || undefined, agent: false, timeout },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
        res.on('error', reject);
      }
    );
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeout} ms: ${method} ${reqPath}`)));
    req.on('error', reject);
    req.end(body === null ? undefined : body);
  });
}

async function startServer({ config, args = [], dataDir = null } = {}) {
  if (stuckFailure) {
    throw new Error(`an earlier tandem start in this test file failed; not retrying:\n${stuckFailure.message}`);
  }
  const bin = binPath();
  try {
    fs.accessSync(bin, fs.constants.X_OK);
  } catch (e) {
    throw new Error(
      `tandem binary not found or not executable at ${bin} (${e.code}); ` +
        'build it or set TANDEM_BIN=/path/to/tandem'
    );
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-interop-'));
  const configFile = path.join(dir, 'config.json');
  fs.writeFileSync(configFile, JSON.stringify(config || {}, null, 2));
  const argv = [
    '--config', configFile,
    '--port', '0',
    '--address', '127.0.0.1',
    '--data-dir', dataDir || path.join(dir, 'data'),
    ...args,
  ];

  const proc = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let captured = '';
  let pending = '';
  let onLine = null;
  proc.stdout.setEncoding('utf8');
  proc.stderr.setEncoding('utf8');
  proc.stdout.on('data', (chunk) => {
    captured += chunk;
  });
  proc.stderr.on('data', (chunk) => {
    captured += chunk;
    pending += chunk;
    let nl;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (onLine) onLine(line);
    }
  });

  let stopped = false;
  // Stops the server with SIGTERM. Unless check is false, a server that does not shut down
  // cleanly (needs SIGKILL, exits non-zero, or a sanitizer reported anything) fails the
  // caller: under the ASan build this is how memory errors and leaks reach the test run.
  async function stop({ check = true } = {}) {
    if (stopped) return;
    stopped = true;
    let problem = null;
    if (proc.exitCode !== null || proc.signalCode !== null) {
      problem = `had already exited (code ${proc.exitCode}, signal ${proc.signalCode})`;
    } else {
      proc.kill('SIGTERM');
      if (!(await waitExit(proc, STOP_GRACE_MS))) {
        proc.kill('SIGKILL');
        await waitExit(proc, STOP_GRACE_MS);
        problem = `did not stop within ${STOP_GRACE_MS} ms of SIGTERM`;
      } else if (proc.exitCode !== 0) {
        problem = `exited with code ${proc.exitCode} after SIGTERM`;
      }
    }
    await new Promise((resolve) => setImmediate(resolve)); // let the last output arrive
    if (!problem && /AddressSanitizer|LeakSanitizer|runtime error:/.test(captured)) {
      problem = 'reported a sanitizer error';
    }
    fs.rmSync(dir, { recursive: true, force: true });
    if (check && problem) throw describeFailure(problem);
  }
  // Kills the server with SIGKILL (a crash): no checks; a dataDir passed in is kept.
  async function kill() {
    if (stopped) return;
    stopped = true;
    proc.kill('SIGKILL');
    await waitExit(proc, STOP_GRACE_MS);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const output = () => captured;
  const describeFailure = (why) =>
    new Error(`tandem (${bin} ${argv.join(' ')}) ${why}\n--- output ---\n${captured || '(none)'}`);

  const port = await new Promise((resolve, reject) => {
    let settled = false;
    const finish = (err, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      onLine = null;
      proc.off('close', onExit);
      proc.off('error', onError);
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => {
      stuckFailure = describeFailure(`did not log msg="listening" within ${START_TIMEOUT_MS} ms`);
      finish(stuckFailure);
    }, START_TIMEOUT_MS);
    // 'close' (not 'exit') so that everything the process wrote has been captured.
    function onExit(code, signal) {
      finish(describeFailure(`exited before listening (code ${code}, signal ${signal})`));
    }
    function onError(e) {
      finish(describeFailure(`failed to start: ${e.message}`));
    }
    proc.once('close', onExit);
    proc.once('error', onError);
    onLine = (line) => {
      const m = LISTENING_RE.exec(line);
      if (m) finish(null, Number(m[1]));
    };
  }).catch(async (e) => {
    await stop({ check: false });
    throw e;
  });

  const ca = tlsCa(config);
  let health;
  try {
    let status;
    if (ca) {
      const res = await request(
        { ca, httpUrl: `https://127.0.0.1:${port}` },
        { path: '/health', timeout: HEALTH_TIMEOUT_MS }
      );
      status = res.status;
    } else {
      const res = await fetch(`http://127.0.0.1:${port}/health`, {
        signal: AbortSignal.timeout(HEALTH_TIMEOUT_MS),
      });
      await res.arrayBuffer();
      status = res.status;
    }
    health = status === 200 ? null : `GET /health answered ${status}`;
  } catch (e) {
    health = `GET /health failed: ${e.cause ? e.cause.message || e.cause.code : e.message}`;
  }
  if (health) {
    stuckFailure = describeFailure(`logged listening on port ${port}, but ${health}`);
    await stop({ check: false });
    throw stuckFailure;
  }

  return {
    port,
    url: `${ca ? 'wss' : 'ws'}://127.0.0.1:${port}/connection/websocket`,
    httpUrl: `${ca ? 'https' : 'http'}://127.0.0.1:${port}`,
    ca, // the certificate to trust (a Buffer) when TCP speaks TLS, else null
    proc,
    stop,
    kill,
    output,
  };
}

/**
 * POSTs `body` (an object, sent as JSON; a string is sent as is) to /api/<method> with the
 * X-API-Key header (omitted when key is null). Resolves to {status, json}; json is null when
 * the response body is not JSON. Rejects after 5 s.
 */
async function apiCall(srv, method, body, key = 'test-api-key') {
  const headers = { 'Content-Type': 'application/json' };
  if (key !== null && key !== undefined) headers['X-API-Key'] = key;
  if (srv.ca) {
    const r = await request(srv, {
      method: 'POST',
      path: `/api/${method}`,
      headers,
      body: typeof body === 'string' ? body : JSON.stringify(body === undefined ? {} : body),
    });
    let parsed = null;
    try {
      parsed = r.text ? JSON.parse(r.text) : null;
    } catch {
      parsed = null;
    }
    return { status: r.status, json: parsed, text: r.text };
  }
  const res = await fetch(`${srv.httpUrl}/api/${method}`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body === undefined ? {} : body),
    signal: AbortSignal.timeout(API_TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, json, text };
}

/** Like apiCall, but asserts HTTP 200 and a `result` object, and returns that result. */
async function apiResult(srv, method, body) {
  const r = await apiCall(srv, method, body);
  if (r.status !== 200 || !r.json || typeof r.json.result !== 'object' || r.json.result === null) {
    throw new Error(`POST /api/${method} ${JSON.stringify(body)} -> ${r.status} ${r.text}`);
  }
  return r.json.result;
}

module.exports = { startServer, apiCall, apiResult, binPath, request };
