'use strict';
// Bounded waiting helpers for event emitters (centrifuge clients and subscriptions, ws
// sockets). Every wait has a timeout and rejects with a message naming what was awaited.

const DEFAULT_WAIT_MS = 5000;

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with "timed out after N ms: <what>" unless `promise` settles first. */
function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolves with the first `event` emitted by `emitter` whose argument passes `filter`.
 * Listens from the moment of the call: create the promise before triggering the event.
 */
function waitFor(emitter, event, { timeout = DEFAULT_WAIT_MS, filter = () => true, what } = {}) {
  let listener;
  const p = new Promise((resolve) => {
    listener = (ctx) => {
      if (filter(ctx)) resolve(ctx);
    };
    emitter.on(event, listener);
  });
  const result = withTimeout(p, timeout, what || `'${event}' event`).finally(() =>
    emitter.off(event, listener)
  );
  // A test that fails before awaiting this must not also get an unhandled rejection.
  result.catch(() => {});
  return result;
}

/**
 * Records every `event` of `emitter` from now on. `next(n)` resolves once at least n events
 * were recorded (with the first n); `stop()` removes the listener.
 */
function collect(emitter, event) {
  const items = [];
  const waiters = [];
  const listener = (ctx) => {
    items.push(ctx);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (items.length >= waiters[i].n) {
        waiters[i].resolve(items.slice(0, waiters[i].n));
        waiters.splice(i, 1);
      }
    }
  };
  emitter.on(event, listener);
  return {
    items,
    next(n, timeout = DEFAULT_WAIT_MS) {
      if (items.length >= n) return Promise.resolve(items.slice(0, n));
      const p = new Promise((resolve) => waiters.push({ n, resolve }));
      const result = withTimeout(p, timeout, `${n} '${event}' events (got ${items.length})`);
      result.catch(() => {});
      return result;
    },
    stop() {
      emitter.off(event, listener);
    },
  };
}

let channelSeq = 0;
/** A channel name not used before in this process (the server may outlive a test). */
function uniqueChannel(prefix = 'ch') {
  channelSeq += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${channelSeq}`;
}

/** GET <httpUrl><path>, bounded; resolves to {status, text}. */
async function httpGet(srv, path, timeout = DEFAULT_WAIT_MS) {
  const res = await fetch(`${srv.httpUrl}${path}`, { signal: AbortSignal.timeout(timeout) });
  return { status: res.status, text: await res.text() };
}

module.exports = { DEFAULT_WAIT_MS, sleep, withTimeout, waitFor, collect, uniqueChannel, httpGet };
