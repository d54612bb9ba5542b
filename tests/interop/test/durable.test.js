'use strict';
// Durable history: publications survive a clean restart and kill -9, offsets continue, the
// epoch stays, and a client subscribed across crashes recovers every publication exactly
// once. Each test starts its own tandem processes on one data directory.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Centrifuge } = require('centrifuge');

const { startServer, apiCall, apiResult } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool, subscribe } = require('../lib/clients');
const { sleep, waitFor, httpGet } = require('../lib/util');

const pool = new ClientPool(Centrifuge);
test.after(() => pool.closeAll());

function tmpDataDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-durable-'));
}

function durableConfig(extra = {}) {
  return testConfig({
    client: { recovery_max_publication_limit: 10000, history_max_publication_limit: 1000 },
    channel: {
      without_namespace: { history_size: 100000, history_ttl: '3600s' },
      namespaces: [
        { name: 'mem', history_size: 100, history_ttl: '300s', history_durable: false, force_recovery: true },
        { name: 'small', history_size: 5, history_ttl: '300s', force_recovery: true },
      ],
    },
    ...extra,
  });
}

/** Reads a channel's whole history through the API, 1000 at a time. */
async function fullHistory(srv, channel) {
  const first = await apiResult(srv, 'history', { channel, limit: 0 });
  const pubs = [];
  let since = { offset: 0, epoch: first.epoch };
  for (;;) {
    const page = await apiResult(srv, 'history', { channel, limit: 1000, since });
    const got = page.publications || [];
    pubs.push(...got);
    if (got.length === 0 || pubs.length >= page.offset) {
      return { epoch: page.epoch, top: page.offset, pubs };
    }
    since = { offset: got[got.length - 1].offset, epoch: page.epoch };
  }
}

test('history, offsets and epoch survive a clean restart (SIGTERM)', async () => {
  const dataDir = tmpDataDir();
  try {
    const cfg = durableConfig();
    let srv = await startServer({ config: cfg, dataDir });
    const results = [];
    for (let i = 1; i <= 30; i++) {
      results.push(await apiResult(srv, 'publish', { channel: 'restart', data: { i } }));
    }
    assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 30 }, (_, i) => i + 1));
    const epoch = results[0].epoch;
    assert.ok(results.every((r) => r.epoch === epoch));
    // A channel that was created but never published to keeps its epoch too.
    const quiet = await apiResult(srv, 'history', { channel: 'quiet', limit: 0 });
    // Memory-only namespace: history is gone after restart, by configuration.
    await apiResult(srv, 'publish', { channel: 'mem:x', data: { m: 1 } });
    await srv.stop();

    srv = await startServer({ config: cfg, dataDir });
    assert.match(srv.output(), /msg="history restored".*channels=2 publications=30/);
    const h = await fullHistory(srv, 'restart');
    assert.equal(h.epoch, epoch);
    assert.equal(h.top, 30);
    assert.deepEqual(h.pubs.map((p) => p.offset), results.map((r) => r.offset));
    assert.deepEqual(h.pubs.map((p) => p.data.i), Array.from({ length: 30 }, (_, i) => i + 1));
    const next = await apiResult(srv, 'publish', { channel: 'restart', data: { i: 31 } });
    assert.equal(next.offset, 31);
    assert.equal(next.epoch, epoch);
    const quiet2 = await apiResult(srv, 'history', { channel: 'quiet', limit: 0 });
    assert.equal(quiet2.epoch, quiet.epoch);
    const mem = await apiResult(srv, 'history', { channel: 'mem:x', limit: 10 });
    assert.equal((mem.publications || []).length, 0);
    await srv.stop();

    // history_size is enforced in the store: after a restart only the newest 5 remain.
    srv = await startServer({ config: cfg, dataDir });
    for (let i = 1; i <= 12; i++) await apiResult(srv, 'publish', { channel: 'small:t', data: { i } });
    await srv.stop();
    srv = await startServer({ config: cfg, dataDir });
    const small = await fullHistory(srv, 'small:t');
    assert.deepEqual(small.pubs.map((p) => p.offset), [8, 9, 10, 11, 12]);
    await srv.stop();
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('idempotency keys survive a restart', async () => {
  const dataDir = tmpDataDir();
  try {
    const cfg = durableConfig();
    let srv = await startServer({ config: cfg, dataDir });
    const a = await apiResult(srv, 'publish', { channel: 'idem', data: { v: 1 }, idempotency_key: 'k1' });
    const b = await apiResult(srv, 'publish', { channel: 'idem', data: { v: 1 }, idempotency_key: 'k1' });
    assert.deepEqual(b, a);
    await srv.kill();
    srv = await startServer({ config: cfg, dataDir });
    const c = await apiResult(srv, 'publish', { channel: 'idem', data: { v: 1 }, idempotency_key: 'k1' });
    assert.deepEqual(c, a, 'a retry after a crash returns the original offset');
    const d = await apiResult(srv, 'publish', { channel: 'idem', data: { v: 2 }, idempotency_key: 'k2' });
    assert.equal(d.offset, a.offset + 1);
    const h = await fullHistory(srv, 'idem');
    assert.equal(h.pubs.length, 2);
    await srv.stop();
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a data directory that cannot be used stops startup with a clear error', async () => {
  const dir = tmpDataDir();
  const file = path.join(dir, 'not-a-dir');
  fs.writeFileSync(file, 'x');
  try {
    await assert.rejects(
      startServer({ config: durableConfig(), dataDir: file }),
      /cannot (create data directory|open the durable store)/
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('kill -9 at random moments: every acknowledged publication is kept exactly once', async () => {
  const dataDir = tmpDataDir();
  const cfg = durableConfig();
  const channel = 'crash';
  const acked = new Map(); // n -> offset
  const attempted = new Set();
  let epoch = null;
  let port = 0;
  let n = 0;
  let seed = Number(process.env.SEED || Date.now() % 100000);
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  let srv = null;
  try {
    srv = await startServer({ config: cfg, dataDir });
    port = srv.port;
    // One client stays subscribed across every crash and must recover each time.
    const received = [];
    const client = pool.create(srv.url, { maxReconnectDelay: 300 });
    client.connect();
    await waitFor(client, 'connected');
    const { sub } = await subscribe(client, channel, { since: undefined });
    sub.on('publication', (ctx) => received.push({ offset: ctx.offset, n: ctx.data.n }));
    const recoveries = [];
    sub.on('subscribed', (ctx) => recoveries.push(ctx));

    for (let round = 0; round < 4; round++) {
      let running = true;
      const publisher = async () => {
        while (running) {
          const k = ++n;
          attempted.add(k);
          let r;
          try {
            r = await apiCall(srv, 'publish', { channel, data: { n: k, pad: 'x'.repeat(k % 200) } });
          } catch {
            return; // the server is gone: k is unacknowledged (may or may not be stored)
          }
          if (r.status !== 200 || !r.json || !r.json.result) return;
          acked.set(k, r.json.result.offset);
          if (epoch === null) epoch = r.json.result.epoch;
          assert.equal(r.json.result.epoch, epoch, 'the epoch never changes');
        }
      };
      const workers = Array.from({ length: 16 }, publisher);
      await sleep(300 + Math.floor(rand() * 700));
      running = false;
      await srv.kill();
      await Promise.all(workers);
      srv = await startServer({ config: cfg, dataDir, args: ['--port', String(port)] });
      // Give the subscribed client time to reconnect and recover.
      await waitFor(sub, 'subscribed', { timeout: 8000 });
    }

    const h = await fullHistory(srv, channel);
    assert.equal(h.epoch, epoch);
    assert.ok(acked.size > 500, `only ${acked.size} acknowledged publications`);
    console.log(`crash test: ${acked.size} acknowledged, ${h.top} stored, ${attempted.size} attempted`);
    // Offsets are contiguous from 1.
    assert.deepEqual(h.pubs.map((p) => p.offset), Array.from({ length: h.top }, (_, i) => i + 1));
    // Each publication appears at most once, and only publications that were attempted.
    const seen = new Map();
    for (const p of h.pubs) {
      assert.ok(attempted.has(p.data.n), `history holds ${p.data.n}, which was never sent`);
      assert.ok(!seen.has(p.data.n), `publication ${p.data.n} stored twice`);
      assert.equal(p.data.pad, 'x'.repeat(p.data.n % 200), 'a stored publication is intact');
      seen.set(p.data.n, p.offset);
    }
    // Every acknowledged publication is there, at the offset it was acknowledged with.
    for (const [k, off] of acked) assert.equal(seen.get(k), off, `acknowledged ${k} at ${off}`);

    // The client recovered across every crash: every stored publication exactly once, in order.
    const top = h.top;
    const deadline = Date.now() + 8000;
    while (received.length < top && Date.now() < deadline) await sleep(50);
    assert.deepEqual(received.map((r) => r.offset), h.pubs.map((p) => p.offset));
    assert.deepEqual(received.map((r) => r.n), h.pubs.map((p) => p.data.n));
    assert.equal(recoveries.length, 4);
    for (const ctx of recoveries) assert.equal(ctx.recovered, true);

    // /metrics reports the store.
    await apiResult(srv, 'publish', { channel: 'metrics', data: {} });
    const metrics = await httpGet(srv, '/metrics');
    assert.match(metrics.text, /tandem_store_commit_seconds_count [1-9]/);
    await srv.stop();
  } catch (e) {
    if (srv) await srv.kill();
    throw e;
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
