'use strict';
// `tandem gencert`: the certificate must satisfy what Chromium checks for WebTransport
// serverCertificateHashes (ECDSA P-256, notAfter - notBefore <= 14 days, currently valid) and
// the printed hash must be the SHA-256 of the DER leaf certificate.

const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, it } = require('node:test');

const { binPath } = require('../lib/server');

const DAY_MS = 24 * 3600 * 1000;

function run(args) {
  const r = spawnSync(binPath(), args, { encoding: 'utf8', timeout: 20000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function parseOutput(stdout) {
  const out = {};
  for (const line of stdout.trim().split('\n')) {
    const i = line.indexOf(': ');
    assert.ok(i > 0, `unexpected output line: ${line}`);
    out[line.slice(0, i)] = line.slice(i + 2);
  }
  return out;
}

describe('tandem gencert', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-gencert-'));

  it('writes a P-256 certificate that serverCertificateHashes accepts', () => {
    const dir = path.join(root, 'a');
    const before = Date.now();
    const r = run(['gencert', '--days', '13', '--out', dir]);
    assert.equal(r.status, 0, r.stderr);
    const out = parseOutput(r.stdout);
    assert.equal(out.cert, `${dir}/cert.pem`);
    assert.equal(out.key, `${dir}/key.pem`);

    const pem = fs.readFileSync(out.cert);
    const cert = new crypto.X509Certificate(pem);

    // Key type: ECDSA on P-256 (Chromium refuses RSA for pinned certificates).
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(cert.publicKey.asymmetricKeyDetails.namedCurve, 'prime256v1');

    // Validity: at most 14 days in total, covering now, and exactly the days asked for.
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    assert.ok(to - from <= 14 * DAY_MS, `validity ${(to - from) / DAY_MS} days`);
    assert.equal(to - from, 13 * DAY_MS);
    assert.ok(from <= Date.now() && to > Date.now() + 12 * DAY_MS);
    assert.ok(from >= before - 2000, 'notBefore is not backdated');
    assert.equal(Date.parse(out.not_after), to);

    // Names: localhost and 127.0.0.1.
    assert.match(cert.subjectAltName, /DNS:localhost/);
    assert.match(cert.subjectAltName, /IP Address:127\.0\.0\.1/);
    assert.equal(cert.checkHost('localhost'), 'localhost');
    assert.equal(cert.checkIP('127.0.0.1'), '127.0.0.1');
    assert.equal(cert.ca, false);

    // The printed hash is SHA-256 over the DER certificate, in hex and in base64.
    const digest = crypto.createHash('sha256').update(cert.raw).digest();
    assert.equal(out.sha256_hex, digest.toString('hex'));
    assert.equal(out.sha256_base64, digest.toString('base64'));
    assert.equal(cert.fingerprint256.replace(/:/g, '').toLowerCase(), out.sha256_hex);

    // The key matches the certificate and is private to the owner.
    const key = crypto.createPrivateKey(fs.readFileSync(out.key));
    assert.ok(cert.checkPrivateKey(key));
    assert.equal(fs.statSync(out.key).mode & 0o077, 0);
    // It signs what the certificate's key verifies.
    const sig = crypto.sign('sha256', Buffer.from('tandem'), key);
    assert.ok(crypto.verify('sha256', Buffer.from('tandem'), cert.publicKey, sig));
  });

  it('defaults to 13 days and replaces an existing certificate', () => {
    const dir = path.join(root, 'b');
    const first = run(['gencert', '--out', dir]);
    assert.equal(first.status, 0, first.stderr);
    const second = run(['gencert', `--out=${dir}`, '--days=14']);
    assert.equal(second.status, 0, second.stderr);
    const a = parseOutput(first.stdout);
    const b = parseOutput(second.stdout);
    assert.notEqual(a.sha256_hex, b.sha256_hex);
    const cert = new crypto.X509Certificate(fs.readFileSync(b.cert));
    assert.equal(Date.parse(cert.validTo) - Date.parse(cert.validFrom), 14 * DAY_MS);
    assert.equal(crypto.createHash('sha256').update(cert.raw).digest('hex'), b.sha256_hex);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['cert.pem', 'key.pem']);
  });

  it('refuses validity periods browsers would reject, and bad arguments', () => {
    for (const days of ['15', '0', '-1', '7x', '']) {
      const r = run(['gencert', '--days', days, '--out', path.join(root, 'c')]);
      assert.equal(r.status, 2, `--days ${JSON.stringify(days)}: ${r.stderr}`);
    }
    assert.equal(fs.existsSync(path.join(root, 'c')), false);
    assert.equal(run(['gencert', '--days', '5']).status, 2); // no --out
    assert.equal(run(['gencert', '--out', path.join(root, 'd'), '--bogus']).status, 2);
  });
});
