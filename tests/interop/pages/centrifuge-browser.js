'use strict';
// The browser side of the centrifuge-js interop tests. It loads the centrifuge-js bundle the
// URL asks for, connects with the transports the URL names, subscribes with recovery,
// publishes once after the first server API publication, and reports everything it sees to
// the test through window.__tdReport (a playwright exposeFunction); without it, events go to
// window.__tdEvents and the console.
//
// Query parameters:
//   codec       "json" (default: loads centrifuge.js) or "protobuf" (loads
//               centrifuge.protobuf.js, whose Centrifuge speaks Protobuf on every transport:
//               cf_protocol=protobuf on WebTransport, the centrifuge-protobuf subprotocol on
//               WebSocket). Publication data are bytes then: the page encodes and decodes them
//               as UTF-8 JSON, so the events carry the same values with either codec.
//   transports  comma-separated list, tried in order (default "websocket"); any of
//               webtransport, websocket, http_stream, sse
//   ws          WebSocket endpoint (default ws://<this host>/connection/websocket)
//   wt          WebTransport endpoint (default https://<this host>/connection/webtransport)
//   http_stream, sse, emulation   endpoints (defaults: /connection/http_stream,
//               /connection/sse, /emulation on this host)
//   hash        hex SHA-256 of the server's certificate: WebTransport sessions are opened
//               with serverCertificateHashes (centrifuge-js uses globalThis.WebTransport,
//               so it is replaced by a subclass before the client is created)
//   token       connection token (optional)
//   channel     channel to subscribe to (default "browser")
//   reconnect   the client's fixed reconnect delay in ms (default 1500): long enough for the
//               test to publish while the client is away after a forced disconnect
//
// Events: {type: 'bundle', codec, src} once the bundle is loaded, {type: 'wt_open', url} for
// every WebTransport session the client opens (with `hash` only),
// {type: 'connected', transport, transportName, codec, client}, {type: 'connecting', code, reason},
// {type: 'disconnected', code, reason}, {type: 'error', kind, transport, message, code}, {type: 'subscribed',
// recoverable, wasRecovering, recovered, offset, epoch}, {type: 'subscribing', code, reason},
// {type: 'unsubscribed', code, reason}, {type: 'publication', data, offset},
// {type: 'published', data} or {type: 'publish_failed', error}, {type: 'fatal', error}.

(function () {
  const P = new URLSearchParams(location.search);
  const here = location.host;
  const events = (window.__tdEvents = []);

  function report(ev) {
    ev.t = Math.round(performance.now());
    events.push(ev);
    console.log('tandem-page ' + JSON.stringify(ev));
    if (typeof window.__tdReport === 'function') window.__tdReport(ev);
  }

  function hexToBytes(hex) {
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  const codec = P.get('codec') || 'json';
  const bundles = { json: 'centrifuge.js', protobuf: 'centrifuge.protobuf.js' };
  // Publication data: JSON values as they are, or UTF-8 JSON bytes with Protobuf.
  const utf8Out = new TextEncoder();
  const utf8In = new TextDecoder('utf-8', { fatal: true });
  const encodeData = codec === 'protobuf' ? (v) => utf8Out.encode(JSON.stringify(v)) : (v) => v;
  function decodeData(d) {
    if (codec !== 'protobuf') return d;
    if (!(d instanceof Uint8Array)) throw new Error('protobuf data is not a Uint8Array: ' + typeof d);
    return JSON.parse(utf8In.decode(d));
  }

  if (!(codec in bundles)) {
    report({ type: 'fatal', error: 'unknown codec ' + codec });
    return;
  }
  const script = document.createElement('script');
  script.src = bundles[codec];
  script.onload = () => {
    report({ type: 'bundle', codec, src: bundles[codec] });
    run();
  };
  script.onerror = () => report({ type: 'fatal', error: 'cannot load ' + bundles[codec] });
  document.head.appendChild(script);

  function run() {
    try {
      const hash = P.get('hash');
      if (hash && typeof globalThis.WebTransport === 'function') {
        const Base = globalThis.WebTransport;
        const hashes = [{ algorithm: 'sha-256', value: hexToBytes(hash) }];
        globalThis.WebTransport = class extends Base {
          constructor(url, options) {
            super(url, Object.assign({}, options || {}, { serverCertificateHashes: hashes }));
            report({ type: 'wt_open', url: String(url) });
          }
        };
      }

      const endpoints = {
        websocket: P.get('ws') || 'ws://' + here + '/connection/websocket',
        webtransport: P.get('wt') || 'https://' + here + '/connection/webtransport',
        http_stream: P.get('http_stream') || '/connection/http_stream',
        sse: P.get('sse') || '/connection/sse',
      };
      const names = (P.get('transports') || 'websocket').split(',').filter(Boolean);
      const transports = names.map((t) => {
        if (!(t in endpoints)) throw new Error('unknown transport ' + t);
        return { transport: t, endpoint: endpoints[t] };
      });
      const delay = Number(P.get('reconnect') || 1500);
      const client = new Centrifuge(transports, {
        token: P.get('token') || '',
        emulationEndpoint: P.get('emulation') || '/emulation',
        minReconnectDelay: delay,
        maxReconnectDelay: delay,
        timeout: 5000,
        debug: P.get('debug') === '1',
      });
      window.__tdClient = client;

      client.on('connecting', (ctx) => report({ type: 'connecting', code: ctx.code, reason: ctx.reason }));
      client.on('connected', (ctx) =>
        report({
          type: 'connected',
          transport: ctx.transport,
          transportName: client._transport ? client._transport.name() : null,
          codec: client._codec ? client._codec.name() : null,
          client: ctx.client,
        })
      );
      client.on('disconnected', (ctx) => report({ type: 'disconnected', code: ctx.code, reason: ctx.reason }));
      client.on('error', (ctx) =>
        report({
          type: 'error',
          kind: ctx.type,
          transport: ctx.transport,
          message: ctx.error && ctx.error.message,
          code: ctx.error && ctx.error.code,
        })
      );

      const sub = client.newSubscription(P.get('channel') || 'browser', {
        minResubscribeDelay: 100,
        maxResubscribeDelay: 1000,
      });
      let published = false;
      sub.on('subscribing', (ctx) => report({ type: 'subscribing', code: ctx.code, reason: ctx.reason }));
      sub.on('subscribed', (ctx) =>
        report({
          type: 'subscribed',
          recoverable: ctx.recoverable,
          wasRecovering: ctx.wasRecovering,
          recovered: ctx.recovered,
          offset: ctx.streamPosition ? ctx.streamPosition.offset : null,
          epoch: ctx.streamPosition ? ctx.streamPosition.epoch : null,
        })
      );
      sub.on('unsubscribed', (ctx) => report({ type: 'unsubscribed', code: ctx.code, reason: ctx.reason }));
      sub.on('error', (ctx) =>
        report({ type: 'sub_error', kind: ctx.type, message: ctx.error && ctx.error.message, code: ctx.error && ctx.error.code })
      );
      sub.on('publication', (ctx) => {
        let value;
        try {
          value = decodeData(ctx.data);
        } catch (e) {
          report({ type: 'fatal', error: 'undecodable publication at offset ' + ctx.offset + ': ' + e });
          return;
        }
        report({ type: 'publication', data: value, offset: ctx.offset });
        // The first publication from the server API makes the page publish one of its own.
        if (!published && value && value.from === 'api') {
          published = true;
          const data = { from: 'page', reply_to: ctx.offset, text: 'héllo from the browser ✓' };
          sub.publish(encodeData(data)).then(
            () => report({ type: 'published', data }),
            (e) => report({ type: 'publish_failed', error: JSON.stringify(e) })
          );
        }
      });
      sub.subscribe();
      client.connect();
    } catch (e) {
      report({ type: 'fatal', error: String(e && e.stack ? e.stack : e) });
    }
  }
})();
