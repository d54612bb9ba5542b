'use strict';
// Client scenarios shared by the JSON and the Protobuf test files: the unmodified
// centrifuge-js client (the constructor passed in) against a real tandem process, over the
// `ws` WebSocket implementation. Only the public, documented client API is used.

const assert = require('node:assert/strict');
const { describe, it, before, after, afterEach } = require('node:test');

const { startServer, apiResult } = require('./server');
const { testConfig } = require('./config');
const { ClientPool, subscribe, codecs } = require('./clients');
const { sleep, waitFor, collect, uniqueChannel } = require('./util');

const TEST_TIMEOUT = 20000;
const NOT_AVAILABLE = 108;
const UNKNOWN_CHANNEL = 102;

function assertOffset(offset, what) {
  assert.ok(
    Number.isInteger(offset) && offset > 0,
    `${what}: expected a positive integer offset, got ${offset}`
  );
}

/** Asserts that publications carry consecutive offsets first, first+1, ... */
function assertContiguous(pubs, first, what) {
  const got = pubs.map((p) => p.offset);
  const want = pubs.map((_, i) => first + i);
  assert.deepEqual(got, want, `${what}: offsets`);
}

/** Awaits a promise expected to reject with a centrifuge error of the given code. */
async function assertErrorCode(promise, code, what) {
  await assert.rejects(promise, (err) => {
    assert.equal(err && err.code, code, `${what}: got ${JSON.stringify(err)}`);
    return true;
  });
}

/**
 * Declares the scenario suite for one protocol mode.
 * @param {string} mode 'json' or 'protobuf'
 * @param {Function} Centrifuge the client constructor for that mode
 */
function defineScenarios(mode, Centrifuge) {
  const codec = codecs[mode];
  const enc = codec.encode;
  const dec = codec.decode;

  describe(`centrifuge-js (${mode}) against tandem`, { timeout: 60000 }, () => {
    let srv;
    const pool = new ClientPool(Centrifuge);
    const connect = (options) => pool.connect(srv.url, options);

    before(async () => {
      srv = await startServer({ config: testConfig() });
    });
    afterEach(() => pool.closeAll());
    after(async () => {
      pool.closeAll();
      if (srv) await srv.stop();
    });

    it('connects over websocket', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await connect();
      assert.equal(typeof ctx.client, 'string');
      assert.ok(ctx.client.length > 0, 'connected ctx.client is empty');
      assert.equal(ctx.transport, 'websocket');
      assert.equal(client.state, 'connected');
      await client.ready(1000);
    });

    it('subscribes, publishes and receives its publications', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const channel = uniqueChannel('pub');
      const { sub, ctx } = await subscribe(client, channel);
      assert.equal(ctx.channel, channel);
      assert.equal(sub.state, 'subscribed');

      const pubs = collect(sub, 'publication');
      const sent = [
        { n: 1, text: 'héllo wörld ✓', list: [1, 2, 3], nested: { a: null, b: true } },
        { n: 2, text: '' },
        { n: 3, big: 'x'.repeat(2000) },
      ];
      for (const value of sent) await sub.publish(enc(value));
      const got = await pubs.next(sent.length);
      got.forEach((p, i) => {
        assert.equal(p.channel, channel);
        assert.deepEqual(dec(p.data), sent[i], `publication ${i} data`);
        assertOffset(p.offset, `publication ${i}`);
      });
      assertContiguous(got, got[0].offset, 'client publications');
      pubs.stop();
    });

    it('reports presence and presence stats', { timeout: TEST_TIMEOUT }, async () => {
      const { client, ctx } = await connect();
      const { sub } = await subscribe(client, uniqueChannel('presence'));

      const presence = await sub.presence();
      assert.ok(presence && typeof presence.clients === 'object', 'presence result has clients');
      assert.ok(
        Object.prototype.hasOwnProperty.call(presence.clients, ctx.client),
        `presence ${JSON.stringify(presence.clients)} lacks own client ${ctx.client}`
      );
      assert.equal(presence.clients[ctx.client].client, ctx.client);
      assert.equal(presence.clients[ctx.client].user, '');

      const stats = await sub.presenceStats();
      assert.ok(stats.numClients >= 1, `numClients ${stats.numClients}`);
      assert.ok(stats.numUsers >= 1, `numUsers ${stats.numUsers}`);
    });

    it('delivers join and leave of a second client', { timeout: TEST_TIMEOUT }, async () => {
      const channel = uniqueChannel('joinleave');
      const { client: first } = await connect();
      const { sub: watcher } = await subscribe(first, channel, { joinLeave: true });
      const { client: second, ctx: secondCtx } = await connect();

      const joined = waitFor(watcher, 'join', {
        filter: (c) => c.info && c.info.client === secondCtx.client,
        what: 'join of the second client',
      });
      const { sub: other } = await subscribe(second, channel);
      const join = await joined;
      assert.equal(join.channel, channel);
      assert.equal(join.info.user, '');

      const left = waitFor(watcher, 'leave', {
        filter: (c) => c.info && c.info.client === secondCtx.client,
        what: 'leave of the second client',
      });
      other.unsubscribe();
      const leave = await left;
      assert.equal(leave.channel, channel);
      assert.equal(leave.info.user, '');
    });

    it('returns history with limit, since and reverse', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const { sub } = await subscribe(client, uniqueChannel('history'));
      const sent = [{ h: 1 }, { h: 2 }, { h: 3 }];
      const pubs = collect(sub, 'publication');
      for (const value of sent) await sub.publish(enc(value));
      await pubs.next(3);
      pubs.stop();

      const all = await sub.history({ limit: 10 });
      assert.equal(all.publications.length, 3, 'history limit 10');
      all.publications.forEach((p, i) => assert.deepEqual(dec(p.data), sent[i]));
      // A fresh stream starts at offset 1 and the top is the last offset.
      assertContiguous(all.publications, 1, 'history');
      assert.equal(all.offset, 3, 'history top offset');
      assert.equal(typeof all.epoch, 'string');
      assert.ok(all.epoch.length > 0, 'history epoch is empty');

      const top = await sub.history({ limit: 0 });
      assert.equal(top.publications.length, 0, 'history limit 0 returns no publications');
      assert.equal(top.offset, 3);
      assert.equal(top.epoch, all.epoch);

      const since = await sub.history({ limit: 10, since: { offset: 1, epoch: all.epoch } });
      assert.deepEqual(since.publications.map((p) => p.offset), [2, 3], 'since offset 1');
      assert.deepEqual(dec(since.publications[0].data), sent[1]);

      const back = await sub.history({
        limit: 10,
        since: { offset: 3, epoch: all.epoch },
        reverse: true,
      });
      assert.deepEqual(back.publications.map((p) => p.offset), [2, 1], 'reverse since offset 3');

      const latest = await sub.history({ limit: 2, reverse: true });
      assert.deepEqual(latest.publications.map((p) => p.offset), [3, 2], 'reverse limit 2');
      assert.deepEqual(dec(latest.publications[0].data), sent[2]);
    });

    it('delivers a server API publish to a subscriber', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const channel = uniqueChannel('api');
      const { sub } = await subscribe(client, channel);
      const received = waitFor(sub, 'publication', { what: 'publication from /api/publish' });
      const data = { from: 'api', values: [1.5, -2, 'three'] };
      const result = await apiResult(srv, 'publish', { channel, data });
      assertOffset(result.offset, '/api/publish result');
      assert.equal(typeof result.epoch, 'string');
      assert.ok(result.epoch.length > 0, '/api/publish epoch is empty');
      const pub = await received;
      assert.deepEqual(dec(pub.data), data);
      assert.equal(pub.offset, result.offset);
    });

    it('recovers missed publications after a reconnect', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const channel = uniqueChannel('recover');
      const { sub, ctx } = await subscribe(client, channel);
      assert.equal(ctx.recoverable, true, 'force_recovery channel is recoverable');

      const first = waitFor(sub, 'publication');
      const r0 = await apiResult(srv, 'publish', { channel, data: { seq: 0 } });
      assert.equal((await first).offset, r0.offset);

      client.disconnect();
      assert.equal(client.state, 'disconnected');
      const missed = [];
      for (let i = 1; i <= 3; i++) {
        const r = await apiResult(srv, 'publish', { channel, data: { seq: i } });
        missed.push(r.offset);
      }
      assert.deepEqual(missed, [r0.offset + 1, r0.offset + 2, r0.offset + 3]);

      const resubscribed = waitFor(sub, 'subscribed', { what: 'resubscribe after reconnect' });
      const pubs = collect(sub, 'publication');
      client.connect();
      const sctx = await resubscribed;
      assert.equal(sctx.wasRecovering, true, 'wasRecovering');
      assert.equal(sctx.recovered, true, 'recovered');

      const recovered = await pubs.next(3);
      assertContiguous(recovered, r0.offset + 1, 'recovered publications');
      assert.deepEqual(recovered.map((p) => dec(p.data)), [{ seq: 1 }, { seq: 2 }, { seq: 3 }]);

      const r4 = await apiResult(srv, 'publish', { channel, data: { seq: 4 } });
      const all = await pubs.next(4);
      assert.equal(all[3].offset, r4.offset);
      assert.equal(r4.offset, r0.offset + 4);
      assert.deepEqual(dec(all[3].data), { seq: 4 });
      pubs.stop();
    });

    it('reports an unrecoverable gap when history is too short', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const channel = uniqueChannel('smallhistory:gap');
      const { sub } = await subscribe(client, channel);

      const first = waitFor(sub, 'publication');
      const r0 = await apiResult(srv, 'publish', { channel, data: { seq: 0 } });
      assert.equal((await first).offset, r0.offset);

      client.disconnect();
      for (let i = 1; i <= 5; i++) await apiResult(srv, 'publish', { channel, data: { seq: i } });

      const resubscribed = waitFor(sub, 'subscribed', { what: 'resubscribe after reconnect' });
      const pubs = collect(sub, 'publication');
      client.connect();
      const sctx = await resubscribed;
      assert.equal(sctx.wasRecovering, true, 'wasRecovering');
      assert.equal(sctx.recovered, false, 'recovered');
      assert.equal(sctx.hasRecoveredPublications, false, 'hasRecoveredPublications');

      // The first publication after the subscribe must be the live one published now:
      // nothing from the gap may be delivered.
      const live = await apiResult(srv, 'publish', { channel, data: { seq: 6 } });
      const [p] = await pubs.next(1);
      assert.equal(p.offset, live.offset, 'first publication after an unrecovered subscribe');
      assert.deepEqual(dec(p.data), { seq: 6 });
      assert.equal(pubs.items.length, 1);
      pubs.stop();
    });

    it('answers rpc with "not available" before and after connect', { timeout: TEST_TIMEOUT }, async () => {
      const client = pool.create(srv.url);
      // Called while disconnected: the call waits for the connection, then gets 108.
      const early = client.rpc('method', enc({ when: 'before' }));
      early.catch(() => {});
      client.connect();
      await assertErrorCode(early, NOT_AVAILABLE, 'rpc before connect');
      await client.ready(1000);
      await assertErrorCode(client.rpc('method', enc({ when: 'after' })), NOT_AVAILABLE, 'rpc after connect');
      assert.equal(client.state, 'connected', 'an rpc error must not disconnect');
    });

    it('refuses a channel in an unknown namespace', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await connect();
      const sub = client.newSubscription(`nope:${uniqueChannel('chan')}`);
      const subscribed = collect(sub, 'subscribed');
      const unsubscribed = waitFor(sub, 'unsubscribed', { what: 'unsubscribed after 102' });
      sub.subscribe();
      const ctx = await unsubscribed;
      assert.equal(ctx.code, UNKNOWN_CHANNEL, `unsubscribed code (reason ${ctx.reason})`);
      assert.equal(sub.state, 'unsubscribed');
      assert.equal(subscribed.items.length, 0);
      subscribed.stop();

      // The connection itself stays usable.
      assert.equal(client.state, 'connected');
      const { sub: ok } = await subscribe(client, uniqueChannel('after102'));
      assert.equal(ok.state, 'subscribed');
    });
  });

  describe(`centrifuge-js (${mode}) ping/pong`, { timeout: 30000 }, () => {
    let srv;
    const pool = new ClientPool(Centrifuge);

    before(async () => {
      srv = await startServer({
        config: testConfig({ client: { ping_interval: '1s', pong_timeout: '1s' } }),
      });
    });
    after(async () => {
      pool.closeAll();
      if (srv) await srv.stop();
    });

    it('stays connected across several server pings', { timeout: TEST_TIMEOUT }, async () => {
      const { client } = await pool.connect(srv.url);
      const channel = uniqueChannel('ping');
      const { sub } = await subscribe(client, channel);
      const disconnects = collect(client, 'disconnected');
      const reconnects = collect(client, 'connecting');
      const unsubscribes = collect(sub, 'subscribing');

      await sleep(3500); // several 1 s ping intervals, each with a 1 s pong deadline

      assert.deepEqual(disconnects.items, [], 'disconnected events while idle');
      assert.deepEqual(reconnects.items, [], 'connecting events while idle');
      assert.deepEqual(unsubscribes.items, [], 'subscription went back to subscribing');
      assert.equal(client.state, 'connected');
      assert.equal(sub.state, 'subscribed');

      const received = waitFor(sub, 'publication');
      await apiResult(srv, 'publish', { channel, data: { alive: true } });
      assert.deepEqual(dec((await received).data), { alive: true });
      [disconnects, reconnects, unsubscribes].forEach((c) => c.stop());
    });
  });
}

module.exports = { defineScenarios };
