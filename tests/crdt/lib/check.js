'use strict';
// Assertion helpers that keep a reproduction of a failing case on disk.

const assert = require('node:assert/strict');
const cli = require('./cli');

/**
 * Runs fn(); if it throws, copies `files()` (paths) and a repro note into a fresh /tmp
 * directory and rethrows with the seed and that directory in the message.
 */
function withRepro(tag, seed, files, fn) {
  try {
    return fn();
  } catch (e) {
    let where = '';
    try {
      const dir = cli.saveRepro(`${tag}-${seed}`, files(), [
        `test: ${tag}, seed ${seed} (rerun: SEED=${seed} node --test --test-name-pattern='${tag}' test/)`,
        '',
        e.stack || String(e),
      ]);
      where = ` (files and note kept in ${dir})`;
    } catch (e2) {
      where = ` (could not save repro: ${e2.message})`;
    }
    e.message = `[${tag} seed=${seed}${where}] ${e.message}`;
    throw e;
  }
}

/** First differing byte offset of two buffers, or -1. */
function firstDiff(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Asserts byte equality with a short message (sizes and first differing offset). */
function assertBytes(actual, expected, what) {
  const a = Buffer.from(actual);
  const b = Buffer.from(expected);
  const d = firstDiff(a, b);
  if (d !== -1) {
    assert.fail(
      `${what}: bytes differ (actual ${a.length} B, expected ${b.length} B, first difference at offset ${d}: ` +
        `actual ${a.subarray(d, d + 12).toString('hex')} vs expected ${b.subarray(d, d + 12).toString('hex')})`,
    );
  }
}

/** Asserts the result of a command that must fail: exit 1, one stderr line `tandem doc: ...`. */
function assertCleanError(r, what) {
  assert.ok(!r.signal, `${what}: \`${r.cmd}\` was killed by ${r.signal}; stderr: ${r.stderr.slice(0, 500)}`);
  assert.ok(!r.timedOut, `${what}: \`${r.cmd}\` timed out`);
  assert.equal(r.status, 1, `${what}: \`${r.cmd}\` should exit 1, got ${r.status}; stderr: ${r.stderr.slice(0, 500)}`);
  const lines = r.stderr.split('\n');
  const ok = lines.length === 2 && lines[1] === '' && lines[0].startsWith('tandem doc: ');
  assert.ok(ok, `${what}: \`${r.cmd}\` should print one line starting "tandem doc: ", got ${JSON.stringify(r.stderr.slice(0, 500))}`);
}

/** For inputs whose validity is not decided by the contract: no crash, and a clean error if any. */
function assertNoCrash(r, what) {
  if (r.status === 0) return;
  assertCleanError(r, what);
}

module.exports = { withRepro, assertBytes, assertCleanError, assertNoCrash, firstDiff };
