'use strict';
// The browser side of the centrifuge-js interop tests. It connects with the transports the
// URL names, subscribes with recovery, publishes once after the first server API
// publication, and reports everything it sees to the test through window.__tdReport (a
// playwright exposeFunction); without it, events go to window.__tdEvents and the console.
//
// Query parameters:
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
// Events: {type: 'connected', transport, client}, {type: 'connecting', code, reason},
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

  try {
    const hash = P.get('hash');
    if (hash && typeof globalThis.WebTransport === 'function') {
      const Base = globalThis.WebTransport;
      const hashes = [{ algorithm: 'sha-256', value: hexToBytes(hash) }];
      globalThis.WebTransport = class extends Base {
        constructor(url, options) {
          super(url, Object.assign({}, options || {}, { serverCertificateHashes: hashes }));
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
      report({ type: 'publication', data: ctx.data, offset: ctx.offset });
      // The first publication from the server API makes the page publish one of its own.
      if (!published && ctx.data && ctx.data.from === 'api') {
        published = true;
        const data = { from: 'page', reply_to: ctx.offset, text: 'héllo from the browser ✓' };
        sub.publish(data).then(
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
})();
