'use strict';
// A raw WebTransport session to tandem's /connection/webtransport, without centrifuge-js:
// it opens a bidirectional stream, sends a JSON connect command, then (after the reply) a
// subscribe command, in Centrifugo's newline-delimited JSON framing, and reports every
// reply line and every incoming datagram to the test through window.__tdReport.
//
// Query parameters:
//   wt       session URL (default https://<this host>/connection/webtransport)
//   hash     hex SHA-256 of the server certificate (serverCertificateHashes)
//   channel  channel to subscribe to (default "browser")
//   token    connection token (optional)
//
// Events: {type: 'ready', maxDatagramSize}, {type: 'reply', line, json},
// {type: 'datagram', b64, text, len}, {type: 'stream_end'}, {type: 'closed', closeCode,
// reason} and {type: 'fatal', error}.

(function () {
  const P = new URLSearchParams(location.search);
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

  function toBase64(bytes) {
    let s = '';
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  async function readDatagrams(wt) {
    const reader = wt.datagrams.readable.getReader();
    const dec = new TextDecoder('utf-8', { fatal: false });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      report({ type: 'datagram', len: value.length, b64: toBase64(value), text: dec.decode(value) });
    }
  }

  // Reads newline-delimited replies; resolves each waiter registered for a reply id.
  async function readReplies(stream, waiters) {
    const reader = stream.readable.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buf += dec.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.trim()) continue;
        let json = null;
        try {
          json = JSON.parse(line);
        } catch (e) {
          // reported as a line without json
        }
        report({ type: 'reply', line, json });
        if (json && json.id && waiters[json.id]) waiters[json.id](json);
      }
      if (done) {
        report({ type: 'stream_end' });
        return;
      }
    }
  }

  (async () => {
    const url = P.get('wt') || 'https://' + location.host + '/connection/webtransport';
    const options = {};
    if (P.get('hash')) options.serverCertificateHashes = [{ algorithm: 'sha-256', value: hexToBytes(P.get('hash')) }];
    const wt = new WebTransport(url, options);
    window.__tdWt = wt; // for tests that also write on the session
    wt.closed.then(
      (info) => report({ type: 'closed', closeCode: info && info.closeCode, reason: info && info.reason }),
      (e) => report({ type: 'closed', error: String(e) })
    );
    await wt.ready;
    report({ type: 'ready', maxDatagramSize: wt.datagrams.maxDatagramSize });
    readDatagrams(wt).catch((e) => report({ type: 'datagram_error', error: String(e) }));

    const stream = await wt.createBidirectionalStream();
    const writer = stream.writable.getWriter();
    const enc = new TextEncoder();
    const waiters = {};
    const reply = (id) => new Promise((resolve) => (waiters[id] = resolve));
    readReplies(stream, waiters).catch((e) => report({ type: 'stream_error', error: String(e) }));

    const connect = { id: 1, connect: { name: 'wt-raw' } };
    if (P.get('token')) connect.connect.token = P.get('token');
    const connected = reply(1);
    await writer.write(enc.encode(JSON.stringify(connect) + '\n'));
    await connected;
    const subscribed = reply(2);
    await writer.write(enc.encode(JSON.stringify({ id: 2, subscribe: { channel: P.get('channel') || 'browser' } }) + '\n'));
    await subscribed;
  })().catch((e) => report({ type: 'fatal', error: String(e && e.stack ? e.stack : e) }));
})();
