'use strict';
// tandem-yjs-provider.js - binds a Y.Doc to a tandem channel of a namespace with
// "yjs": true (docs/yjs.md, "Documents over channels"), through the `centrifuge` client.
//
//   const Y = require('yjs')
//   const { Centrifuge } = require('centrifuge')
//   const { TandemYjsProvider } = require('./tandem-yjs-provider')
//   const client = new Centrifuge('ws://HOST:PORT/connection/websocket')
//   const provider = new TandemYjsProvider(client, 'docs:my-doc', new Y.Doc(), { Y })
//   client.connect()
//   await provider.whenSynced()
//
// `Y` is passed in rather than required so that the provider uses the application's own
// copy of yjs (two copies of yjs in one program do not mix).
//
// The channel `ns:R` is the server's Yjs room `ns:R`: y-websocket clients of
// ws://HOST:PORT/yjs/ns:R edit the same document, and the server keeps it durably (its
// room log with snapshots), not in the channel history.
//
// How it works:
// - The channel is subscribed with recovery. Every publication is one Yjs update (the
//   server's normalized form, from a channel client or a y-websocket client), applied to
//   the doc as it arrives; Yjs updates commute, so order and duplicates do not matter.
// - On every (re)subscribe the provider asks the server for what its doc lacks with
//   tandem's `doc_state` rpc (data {channel, sv: base64 state vector}, answer {update,
//   sv}: base64 of the missing update and of the server document's state vector) and
//   applies it: that is how a late joiner gets the whole document, however long its
//   history. Publications that arrive meanwhile are applied too (duplicates are harmless).
// - Then it publishes what the server lacks (computed against the server's state vector):
//   usually nothing; after edits made while unsubscribed, exactly those.
// - Local doc updates are published while subscribed.
//
// Wire form: JSON clients publish a JSON string of base64; protobuf clients (`binary: true`)
// publish the raw update bytes. Every publication arrives as a JSON string of base64 (a
// protobuf client receives the UTF-8 bytes of that JSON string). The rpc data and answer
// are JSON objects (UTF-8 JSON bytes for protobuf clients).
//
// The namespace must allow publish to subscribers (the rpc only needs the subscription).

const REMOTE = Symbol('tandem-yjs-remote'); // transaction origin of updates from the channel

function toBase64(u8) {
  if (typeof Buffer !== 'undefined') return Buffer.from(u8).toString('base64');
  let s = '';
  for (const b of u8) s += String.fromCharCode(b);
  return btoa(s);
}

function fromBase64(s) {
  if (typeof Buffer !== 'undefined') return new Uint8Array(Buffer.from(s, 'base64'));
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

/** The update carried by publication data (a base64 string, or its JSON as bytes). */
function decodeData(data) {
  if (typeof data === 'string') return fromBase64(data);
  return fromBase64(JSON.parse(new TextDecoder().decode(data)));
}

class TandemYjsProvider {
  /**
   * client: a `centrifuge` Centrifuge instance; channel: a channel of a "yjs" namespace
   * (the namespace must allow publish for subscribers); doc: the Y.Doc;
   * opts.Y: the yjs module; opts.binary: true with centrifuge's protobuf build.
   */
  constructor(client, channel, doc, { Y, binary = false } = {}) {
    if (!Y) throw new Error('TandemYjsProvider: pass the yjs module as opts.Y');
    this.Y = Y;
    this.client = client;
    this.channel = channel;
    this.doc = doc;
    this.binary = binary;
    this.synced = false;
    this._waiters = [];
    this.sub = client.getSubscription(channel) || client.newSubscription(channel, { recoverable: true });
    this._onPublication = (ctx) => this._applyRemote(ctx.data);
    this._onSubscribed = (ctx) => {
      this._catchUp().catch((err) => this._log('catch-up failed', err));
    };
    this._onUpdate = (update, origin) => {
      if (origin !== REMOTE && this.sub.state === 'subscribed') this._publish(update);
    };
    this.sub.on('publication', this._onPublication);
    this.sub.on('subscribed', this._onSubscribed);
    doc.on('update', this._onUpdate);
    this.sub.subscribe();
  }

  /** Resolves once the doc holds the server's document (after the first subscribe). */
  whenSynced() {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this._waiters.push(resolve));
  }

  /** Stops syncing: unsubscribes and detaches from the doc (the doc itself is kept). */
  destroy() {
    this.doc.off('update', this._onUpdate);
    this.sub.removeListener('publication', this._onPublication);
    this.sub.removeListener('subscribed', this._onSubscribed);
    this.sub.unsubscribe();
  }

  _applyRemote(data) {
    try {
      this.Y.applyUpdate(this.doc, decodeData(data), REMOTE);
    } catch (err) {
      this._log('bad publication ignored', err);
    }
  }

  _publish(update) {
    const data = this.binary ? update : toBase64(update);
    this.sub.publish(data).catch((err) => this._log('publish failed', err));
  }

  /**
   * Asks the server (rpc doc_state) for what the doc lacks, applies it, and returns the
   * server document's state vector.
   */
  async _fetchState() {
    const req = { channel: this.channel, sv: toBase64(this.Y.encodeStateVector(this.doc)) };
    const data = this.binary ? new TextEncoder().encode(JSON.stringify(req)) : req;
    const res = await this.client.rpc('doc_state', data);
    let answer = res.data;
    if (answer instanceof Uint8Array) answer = JSON.parse(new TextDecoder().decode(answer));
    if (!answer || typeof answer.update !== 'string' || typeof answer.sv !== 'string') {
      throw new Error('bad doc_state answer');
    }
    this.Y.applyUpdate(this.doc, fromBase64(answer.update), REMOTE);
    return fromBase64(answer.sv);
  }

  async _catchUp() {
    // Also after a recovered resubscribe: edits made while unsubscribed were not published.
    const serverSv = await this._fetchState();
    // Only what the server lacks ([0, 0] is an empty update), so a large document is never
    // sent whole just to repair a few offline edits.
    const missing = this.Y.encodeStateAsUpdate(this.doc, serverSv);
    if (missing.length > 2) this._publish(missing);
    this.synced = true;
    for (const resolve of this._waiters.splice(0)) resolve();
  }

  _log(what, err) {
    if (typeof console !== 'undefined') console.warn(`tandem-yjs-provider: ${what}:`, err && err.message);
  }
}

module.exports = { TandemYjsProvider };
