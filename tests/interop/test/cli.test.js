'use strict';
// The operator commands of the binary: version, genconfig, checkconfig, and how the server
// refuses a bad config or flag at start-up.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, it } = require('node:test');

const { binPath } = require('../lib/server');

function run(args) {
  const r = spawnSync(binPath(), args, { encoding: 'utf8', timeout: 10000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('tandem command line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-cli-'));

  it('prints its version', () => {
    const r = run(['version']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /^tandem \d+\.\d+\.\d+/);
  });

  it('writes a starter config that checkconfig accepts', () => {
    const file = path.join(dir, 'starter.json');
    assert.equal(run(['genconfig', file]).status, 0);
    const r = run(['checkconfig', file]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /valid/);
    // genconfig never overwrites an existing file.
    assert.notEqual(run(['genconfig', file]).status, 0);
  });

  it('reports the line and column of a config error', () => {
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, '{\n  "client": {\n    "ping_interval": true\n  }\n}\n');
    const r = run(['checkconfig', file]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:22: client\\.ping_interval must be a duration`));
    const syntax = path.join(dir, 'syntax.json');
    fs.writeFileSync(syntax, '{\n  "port": 8000,\n}\n');
    const s = run(['checkconfig', syntax]);
    assert.equal(s.status, 1);
    assert.match(s.stderr, /syntax\.json:3:1: /);
  });

  it('warns about unknown keys without failing', () => {
    const file = path.join(dir, 'unknown.json');
    fs.writeFileSync(file, '{"engine": {"type": "memory"}}');
    const r = run(['checkconfig', file]);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /unknown\.json:1:12: unknown key "engine"/);
  });

  it('refuses to start with a bad config or flag', () => {
    const file = path.join(dir, 'bad2.json');
    fs.writeFileSync(file, '{"port": "eighty"}');
    const r = run(['--config', file, '--port', '0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /port must be a non-negative integer/);
    assert.equal(run(['--port', 'x']).status, 2);
    assert.equal(run(['--frobnicate']).status, 2);
  });
});
