'use strict';
// JSON and Protobuf clients in one channel: JSON payloads reach both; a binary payload that
// is not JSON cannot be carried by the JSON protocol, so the JSON client is closed with 3506
// (as Centrifugo does) while the Protobuf client receives it.

const assert = require('node:assert/strict');
const { describe, it, before, after } = require('node:test');
const WebSocket = require('ws');
const { Centrifuge } = require('centrifuge');
const { Centrifuge: CentrifugePb } = require('centrifuge/build/protobuf');

const { startServer } = require('../lib/server');
const { testConfig } = require('../lib/config');
const { uniqueChannel, withTimeout, sleep } = require('../lib/util');

describe('tandem mixed JSON and Protobuf subscribers', { timeout: 30000 }, () => {
  let srv;
  const clients = [];
  before(async () => {
    srv = await startServer({ config: testConfig({}) });
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    if (srv) await srv.stop();
  });

  const make = (C) => {
    const c = new C(srv.url, { websocket: WebSocket, minReconnectDelay: 5000, maxReconnectDelay: 5000 });
    c.on('error', () => {});
    clients.push(c);
    return c;
  };
  const subscribed = (sub) =>
    withTimeout(new Promise((r) => sub.once('subscribed', r)), 5000, 'subscribed');

  it('delivers JSON to both, and closes the JSON client with 3506 on binary data', async () => {
    const channel = uniqueChannel('mixed');
    const json = make(Centrifuge);
    const pb = make(CentrifugePb);
    const jsonPubs = [];
    const pbPubs = [];
    const js = json.newSubscription(channel);
    const ps = pb.newSubscription(channel);
    js.on('publication', (ctx) => jsonPubs.push(ctx.data));
    ps.on('publication', (ctx) => pbPubs.push(Buffer.from(ctx.data)));
    js.subscribe();
    ps.subscribe();
    json.connect();
    pb.connect();
    await Promise.all([subscribed(js), subscribed(ps)]);

    await ps.publish(new TextEncoder().encode('{"ok":true}'));
    const end = Date.now() + 3000;
    while ((jsonPubs.length < 1 || pbPubs.length < 1) && Date.now() < end) await sleep(20);
    assert.deepEqual(jsonPubs, [{ ok: true }]);
    assert.equal(pbPubs[0].toString(), '{"ok":true}');

    const disconnected = withTimeout(
      new Promise((r) => json.once('disconnected', r)),
      5000,
      'JSON client disconnected'
    );
    await ps.publish(new Uint8Array([0xff, 0x00, 0x01]));
    assert.equal((await disconnected).code, 3506);
    while (pbPubs.length < 2 && Date.now() < end + 3000) await sleep(20);
    assert.deepEqual([...pbPubs[1]], [0xff, 0x00, 0x01]);
    assert.equal(pb.state, 'connected');
  });
});
