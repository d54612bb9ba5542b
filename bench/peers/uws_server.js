'use strict';
// Benchmark peer: uWebSockets.js (npm @trufflesuite/uws-js-unofficial 20.30, uWS v20.30)
// speaking bench's "raw" pub/sub protocol on 127.0.0.1 only.
//
//   subscriber: GET /sub?ch=TOPIC   (WebSocket) -> receives every payload published to TOPIC
//   publisher:  GET /pub            (WebSocket) -> sends text frames "TOPIC\n<payload>";
//                                      the payload is delivered verbatim as a text frame
//
// Usage: node uws_server.js [PORT]   (or env PORT; 0 = let the OS choose)
// Prints "listening PORT" (the real port) on stdout once ready.
//
// The package's own entry point (src/uws.js) silently falls back to a ws-based JavaScript
// implementation when the native addon does not load. A benchmark of that fallback would be
// meaningless, so this file loads the native .node file directly and exits with status 2 if
// it cannot.
const path = require('path');

function loadNative() {
  const pkgDir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
  const file = path.join(pkgDir, 'binaries',
    `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  let mod;
  try {
    mod = require(file);
  } catch (e) {
    console.error(`uws_server: FATAL: native uWebSockets.js addon did not load: ${file}\n` +
      `  ${String(e && e.message).split('\n')[0]}\n` +
      '  (refusing to run the JavaScript fallback; see BENCHMARKS.md)');
    process.exit(2);
  }
  if (typeof mod.App !== 'function' || typeof mod.us_socket_local_port !== 'function' ||
      !(file in require.cache) || !file.endsWith('.node')) {
    console.error(`uws_server: FATAL: ${file} is not the native uWebSockets.js addon`);
    process.exit(2);
  }
  return { mod, file };
}

const { mod: uWS, file: nativeFile } = loadNative();
const port = parseInt(process.argv[2] || process.env.PORT || '0', 10);
const NL = 10;

const app = uWS.App().ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 1024 * 1024,
  maxBackpressure: 256 * 1024 * 1024,
  closeOnBackpressureLimit: false,
  idleTimeout: 0, // no idle timeout
  sendPingsAutomatically: false,
  upgrade: (res, req, ctx) => {
    const url = req.getUrl();
    const data = { sub: url === '/sub', topic: req.getQuery('ch') || '' };
    if (!data.sub && url !== '/pub') {
      res.writeStatus('404 Not Found').end('unknown path\n');
      return;
    }
    if (data.sub && data.topic === '') {
      res.writeStatus('400 Bad Request').end('missing ch\n');
      return;
    }
    res.upgrade(data, req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), ctx);
  },
  open: (ws) => {
    const d = ws.getUserData();
    if (d.sub) ws.subscribe(d.topic);
  },
  message: (ws, msg /* ArrayBuffer, valid during this call only */, isBinary) => {
    if (ws.getUserData().sub) return; // subscribers do not publish
    const bytes = new Uint8Array(msg);
    const nl = bytes.indexOf(NL);
    if (nl <= 0) return;
    const topic = Buffer.from(msg, 0, nl).toString('latin1');
    // app.publish copies the payload; false = text frame.
    app.publish(topic, new Uint8Array(msg, nl + 1), false);
  },
}).listen('127.0.0.1', port, (ls) => {
  if (!ls) {
    console.error(`uws_server: FATAL: cannot listen on 127.0.0.1:${port}`);
    process.exit(1);
  }
  console.error(`uws_server: native addon ${nativeFile}`);
  console.log(`listening ${uWS.us_socket_local_port(ls)}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
