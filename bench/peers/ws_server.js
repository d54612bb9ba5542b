'use strict';
// Benchmark peer: node `ws` (v8) speaking bench's "raw" pub/sub protocol on 127.0.0.1 only.
// The common baseline: a plain per-subscriber send loop over Map<topic, Set<socket>>.
//
//   subscriber: GET /sub?ch=TOPIC   (WebSocket) -> receives every payload published to TOPIC
//   publisher:  GET /pub            (WebSocket) -> sends text frames "TOPIC\n<payload>";
//                                      the payload is delivered verbatim as a text frame
//
// Usage: node ws_server.js [PORT]   (or env PORT; 0 = let the OS choose)
// Prints "listening PORT" (the real port) on stdout once ready.
const { WebSocketServer } = require('ws');

const port = parseInt(process.argv[2] || process.env.PORT || '0', 10);
const NL = 10;
const topics = new Map(); // topic -> Set<WebSocket>

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  perMessageDeflate: false,
  clientTracking: false,
  maxPayload: 1024 * 1024,
});

wss.on('connection', (ws, req) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname === '/sub') {
    const topic = url.searchParams.get('ch');
    if (!topic) {
      ws.close(1008, 'missing ch');
      return;
    }
    let set = topics.get(topic);
    if (!set) topics.set(topic, (set = new Set()));
    set.add(ws);
    ws.on('close', () => {
      set.delete(ws);
      if (set.size === 0 && topics.get(topic) === set) topics.delete(topic);
    });
    return;
  }
  if (url.pathname !== '/pub') {
    ws.close(1008, 'unknown path');
    return;
  }
  ws.on('message', (data, isBinary) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    const nl = buf.indexOf(NL);
    if (nl <= 0) return;
    const set = topics.get(buf.toString('latin1', 0, nl));
    if (!set) return;
    const payload = buf.subarray(nl + 1);
    for (const sub of set) sub.send(payload, { binary: false });
  });
});

wss.on('listening', () => console.log(`listening ${wss.address().port}`));
wss.on('error', (e) => {
  console.error(`ws_server: FATAL: ${e.message}`);
  process.exit(1);
});

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
