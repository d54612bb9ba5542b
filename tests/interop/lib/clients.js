'use strict';
// Creates centrifuge-js clients over the `ws` package and tracks them so a test file can
// disconnect every one of them in its after hook (a client left connected keeps timers and
// sockets alive and the test process would not exit).

const WebSocket = require('ws');
const { waitFor } = require('./util');

const textEncoder = new TextEncoder();

// How test payloads travel in each protocol mode. JSON mode sends and receives JS values
// (the protocol embeds them as raw JSON). Protobuf mode carries `bytes`: the client sends
// and receives Uint8Array, so payloads are JSON text encoded to UTF-8 bytes. The server API
// always publishes JSON, which a protobuf client receives as those JSON bytes.
const codecs = {
  json: {
    name: 'json',
    encode: (value) => value,
    decode: (data) => data,
  },
  protobuf: {
    name: 'protobuf',
    encode: (value) => textEncoder.encode(JSON.stringify(value)),
    decode: (data) => {
      if (!(data instanceof Uint8Array)) {
        throw new Error(`protobuf client: expected Uint8Array data, got ${typeof data}`);
      }
      return JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8'));
    },
  },
};

class ClientPool {
  constructor(Centrifuge) {
    this.Centrifuge = Centrifuge;
    this.clients = [];
  }

  /** A new, not yet connected client for `url`; `options` override the test defaults. */
  create(url, options = {}) {
    const client = new this.Centrifuge(url, {
      websocket: WebSocket,
      timeout: 5000,
      minReconnectDelay: 100,
      maxReconnectDelay: 1000,
      ...options,
    });
    // An unhandled 'error' event must not crash the test process (EventEmitter semantics).
    client.on('error', () => {});
    this.clients.push(client);
    return client;
  }

  /** Creates and connects a client; resolves to {client, ctx} with the `connected` context. */
  async connect(url, options = {}, timeout = 5000) {
    const client = this.create(url, options);
    const connected = waitFor(client, 'connected', { timeout, what: `connect to ${url}` });
    client.connect();
    const ctx = await connected;
    return { client, ctx };
  }

  /** Disconnects and forgets every client created so far. */
  closeAll() {
    for (const client of this.clients.splice(0)) {
      try {
        client.disconnect();
      } catch {
        // Already torn down: nothing to release.
      }
    }
  }
}

/**
 * Creates a subscription on a connected client, subscribes and resolves to {sub, ctx} with
 * the `subscribed` context. Rejects if the subscription ends up `unsubscribed` instead.
 */
async function subscribe(client, channel, options = {}, timeout = 5000) {
  const sub = client.newSubscription(channel, options);
  sub.on('error', () => {});
  const ctx = await new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      sub.off('subscribed', onSubscribed);
      sub.off('unsubscribed', onUnsubscribed);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out after ${timeout} ms: subscribe to ${channel}`));
    }, timeout);
    function onSubscribed(c) {
      done();
      resolve(c);
    }
    function onUnsubscribed(c) {
      done();
      reject(new Error(`subscribe to ${channel} failed: unsubscribed code ${c.code} ${c.reason}`));
    }
    sub.on('subscribed', onSubscribed);
    sub.on('unsubscribed', onUnsubscribed);
    sub.subscribe();
  });
  return { sub, ctx };
}

/**
 * A WebSocket class for centrifuge-js's `websocket` option whose connections get extra `ws`
 * options, e.g. webSocketWith({ ca: srv.ca }) for wss:// with a test certificate.
 */
function webSocketWith(wsOptions) {
  return class extends WebSocket {
    constructor(address, protocols, options) {
      super(address, protocols, { ...wsOptions, ...options });
    }
  };
}

module.exports = { codecs, ClientPool, subscribe, webSocketWith };
