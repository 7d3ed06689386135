/** x509-mint: `x509 mint --write DIR` output verified by `openssl verify` against `bundle show` output. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestCa } from '@tessera/testing';
import { TesseraServer } from '../../harness/server.js';

function opensslVerify(caFile: string, certFile: string): { ok: boolean; out: string } {
  const r = spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', caFile, certFile], {
    encoding: 'utf8',
  });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

describe('x509-mint: minted X509-SVIDs verify with openssl against the bundle', () => {
  let server: TesseraServer;
  let outDir: string;
  let bundleFile: string;

  before(async () => {
    server = await TesseraServer.start();
    outDir = join(server.dir, 'minted');
    bundleFile = join(server.dir, 'bundle-show.pem');
  });
  after(async () => {
    await server?.stop();
  });

  it('01 mints an X509-SVID with --write DIR', async () => {
    const r = await server.cli([
      'x509',
      'mint',
      '--spiffe-id',
      'spiffe://example.org/minted',
      '--dns',
      'minted.example.org',
      '--ttl',
      '10m',
      '--write',
      outDir,
    ]);
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['svid.pem', 'key.pem', 'bundle.pem']) await stat(join(outDir, f));
    assert.equal((await stat(join(outDir, 'key.pem'))).mode & 0o777, 0o600);
  });

  it('02 writes the bundle with bundle show', async () => {
    const r = await server.cli(['bundle', 'show']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^-----BEGIN CERTIFICATE-----/);
    await writeFile(bundleFile, r.stdout);
  });

  it('03 openssl verify accepts svid.pem against the bundle show output', () => {
    const v = opensslVerify(bundleFile, join(outDir, 'svid.pem'));
    assert.ok(v.ok, v.out);
    assert.match(v.out, /svid\.pem: OK/);
  });

  it('04 the certificate carries the SPIFFE ID, the DNS name, and the key in key.pem', async () => {
    const cert = new X509Certificate(await readFile(join(outDir, 'svid.pem')));
    assert.match(cert.subjectAltName ?? '', /URI:spiffe:\/\/example\.org\/minted/);
    assert.match(cert.subjectAltName ?? '', /DNS:minted\.example\.org/);
    const key = await readFile(join(outDir, 'key.pem'), 'utf8');
    assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(key)));
    const lifetime = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 1000;
    assert.ok(lifetime <= 600 + 60, `lifetime ${lifetime}s`);
  });

  it('05 bundle.pem written by mint equals the bundle show output', async () => {
    assert.equal(await readFile(join(outDir, 'bundle.pem'), 'utf8'), await readFile(bundleFile, 'utf8'));
  });

  it('06 negative control: openssl rejects the SVID against an unrelated CA', async () => {
    const other = join(server.dir, 'other-ca.pem');
    await writeFile(other, TestCa.create({ trustDomain: 'example.org' }).rootPem());
    const v = opensslVerify(other, join(outDir, 'svid.pem'));
    assert.equal(v.ok, false, v.out);
  });

  it('07 --format spiffe prints a SPIFFE bundle with the same X.509 authority', async () => {
    const r = await server.cli(['bundle', 'show', '--format', 'spiffe']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout) as { keys: { use: string; x5c?: string[] }[]; spiffe_sequence?: number };
    const x509 = doc.keys.filter((k) => k.use === 'x509-svid');
    const pemCert = new X509Certificate(await readFile(bundleFile));
    assert.ok(x509.some((k) => k.x5c?.[0] === pemCert.raw.toString('base64')));
    assert.ok(doc.keys.some((k) => k.use === 'jwt-svid'));
  });
});
