'use strict';
// API publish with idempotency_key: a retry inside the window returns the original offset and
// publishes nothing new.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const { Centrifuge } = require('centrifuge');

const { startServer, apiCall } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { ClientPool, subscribe } = require('../lib/clients');
const { uniqueChannel, sleep } = require('../lib/util');

describe('tandem idempotent publish', { timeout: 30000 }, () => {
  let srv;
  const pool = new ClientPool(Centrifuge);
  before(async () => {
    srv = await startServer({ config: testConfig({}) });
  });
  after(async () => {
    pool.closeAll();
    if (srv) await srv.stop();
  });

  it('returns the original offset for a retry and delivers once', async () => {
    const channel = uniqueChannel('idem');
    const { client } = await pool.connect(srv.url);
    const { sub } = await subscribe(client, channel);
    const got = [];
    sub.on('publication', (ctx) => got.push(ctx.offset));
    const body = { channel, data: { n: 1 }, idempotency_key: 'order-17' };
    const first = await apiCall(srv, 'publish', body);
    const retry = await apiCall(srv, 'publish', body);
    const other = await apiCall(srv, 'publish', { ...body, idempotency_key: 'order-18' });
    assert.equal(first.status, 200);
    assert.deepEqual(retry.json, first.json);
    assert.equal(other.json.result.offset, first.json.result.offset + 1);
    await sleep(300);
    assert.deepEqual(got, [first.json.result.offset, other.json.result.offset]);
    const hist = await apiCall(srv, 'history', { channel, limit: 10 });
    assert.equal(hist.json.result.publications.length, 2);
    const bad = await apiCall(srv, 'publish', { channel, data: 1, idempotency_key: 5 });
    assert.equal(bad.json.error.code, 107);
  });
});
