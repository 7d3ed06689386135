import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateKey } from '@tessera/common/x509';
import { type IssuedChain, TestCa } from './test-ca.js';

const NOW = new Date('2030-06-01T00:00:00Z');
const AT = String(NOW.getTime() / 1000);
const dir = mkdtempSync(join(tmpdir(), 'tessera-test-ca-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let fileCounter = 0;
function pemFile(pem: string): string {
  const p = join(dir, `f${++fileCounter}.pem`);
  writeFileSync(p, pem);
  return p;
}

/** Runs `openssl verify` at NOW for the issued chain against the CA's root. */
function opensslVerify(ca: TestCa, svid: IssuedChain, extra: string[] = []): { ok: boolean; out: string } {
  const [leaf, ...rest] = svid.certificates;
  const args = ['verify', '-attime', AT, ...extra, '-CAfile', pemFile(ca.rootPem())];
  const untrusted = rest.map((c) => c.toString()).join('');
  if (untrusted) args.push('-untrusted', pemFile(untrusted));
  args.push(pemFile((leaf as X509Certificate).toString()));
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function opensslText(cert: X509Certificate): string {
  const r = spawnSync('openssl', ['x509', '-noout', '-text'], { input: cert.toString(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('TestCa', () => {
  const root = TestCa.create({ trustDomain: 'example.org', now: NOW });

  it('issues a leaf with the SPIRE profile that openssl verifies', () => {
    const svid = root.issueX509Svid({ now: NOW });
    assert.equal(svid.certificates.length, 1);
    assert.equal(opensslVerify(root, svid).ok, true);
    const leaf = svid.leaf;
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subjectAltName, 'URI:spiffe://example.org/workload');
    assert.equal(leaf.checkIssued(root.certificate), true);
    assert.equal(leaf.verify(root.publicKey), true);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    assert.equal(new Date(leaf.validFrom).getTime(), NOW.getTime() - 10_000);
    assert.equal(new Date(leaf.validTo).getTime(), NOW.getTime() + 3600_000);
    const text = opensslText(leaf);
    assert.match(text, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/);
    assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.equal(svid.privateKey.type, 'private');
    assert.equal(leaf.checkPrivateKey(svid.privateKey), true);
    assert.match(svid.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.deepEqual(svid.chainDer, leaf.raw);
  });

  it('makes a root with the SPIFFE CA profile', () => {
    assert.equal(root.isRoot, true);
    assert.equal(root.certificate.ca, true);
    assert.equal(root.certificate.subjectAltName, 'URI:spiffe://example.org');
    assert.equal(root.certificate.verify(root.publicKey), true);
    assert.match(opensslText(root.certificate), /Key Usage: critical\s+Certificate Sign, CRL Sign/);
    assert.deepEqual(root.chainToRoot(), []);
  });

  it('builds intermediate chains leaf first without the root', () => {
    const i1 = root.createIntermediate({ now: NOW });
    const i2 = i1.createIntermediate({ now: NOW, keyType: 'ec-p384' });
    const svid = i2.issueX509Svid({ now: NOW, spiffeId: 'spiffe://example.org/db', keyType: 'rsa-2048' });
    assert.deepEqual(
      svid.certificates.map((c) => c.fingerprint256),
      [svid.leaf, i2.certificate, i1.certificate].map((c) => c.fingerprint256),
    );
    assert.equal(i2.root, root);
    assert.deepEqual(svid.chainDer, Buffer.concat(svid.certificates.map((c) => c.raw)));
    assert.equal(opensslVerify(root, svid).ok, true);
  });

  it('issues for a given public key without returning a private key', () => {
    const { publicKey } = generateKey('ed25519');
    const chain = root.issueX509Svid({ now: NOW, publicKey });
    assert.equal('privateKey' in chain, false);
    assert.equal(chain.leaf.publicKey.equals(publicKey), true);
    assert.equal(opensslVerify(root, chain).ok, true);
  });

  it('writes PEM files that openssl accepts', () => {
    const inter = root.createIntermediate({ now: NOW });
    const files = inter.writePemFiles(join(dir, 'pem'), inter.issueX509Svid({ now: NOW }));
    const r = spawnSync('openssl', [
      'verify',
      '-attime',
      AT,
      '-CAfile',
      files.rootFile,
      '-untrusted',
      files.intermediatesFile,
      files.certFile ?? '',
    ]);
    assert.equal(r.status, 0, String(r.stderr));
    assert.ok(files.keyFile);
  });

  describe('defective certificates really are defective', () => {
    const cases: {
      name: string;
      make: () => { ca: TestCa; svid: IssuedChain };
      expect: RegExp;
      check?: RegExp;
    }[] = [
      {
        name: 'an intermediate with cA=false is rejected as an invalid CA',
        make: () => {
          const ca = root.createIntermediate({ now: NOW, isCa: false });
          return { ca, svid: ca.issueX509Svid({ now: NOW }) };
        },
        expect: /invalid CA certificate/,
      },
      {
        name: 'an intermediate without keyCertSign cannot sign',
        make: () => {
          const ca = root.createIntermediate({ now: NOW, omitKeyCertSign: true });
          return { ca, svid: ca.issueX509Svid({ now: NOW }) };
        },
        expect: /key usage does not include certificate signing|invalid CA certificate/,
      },
      {
        name: 'a root with pathLen 0 cannot have an intermediate',
        make: () => {
          const r0 = TestCa.create({ trustDomain: 'example.org', now: NOW, pathLen: 0 });
          const ca = r0.createIntermediate({ now: NOW });
          return { ca, svid: ca.issueX509Svid({ now: NOW }) };
        },
        expect: /path length constraint exceeded/,
      },
      {
        name: 'a leaf outside a permitted URI name constraint is rejected',
        make: () => {
          const ca = root.createIntermediate({ now: NOW, permittedUris: ['example.org'] });
          return { ca, svid: ca.issueX509Svid({ now: NOW, spiffeId: 'spiffe://evil.org/x' }) };
        },
        expect: /permitted subtree violation/,
      },
      {
        name: 'a leaf inside an excluded URI name constraint is rejected',
        make: () => {
          const ca = root.createIntermediate({ now: NOW, excludedUris: ['example.org'] });
          return { ca, svid: ca.issueX509Svid({ now: NOW, spiffeId: 'spiffe://example.org/x' }) };
        },
        expect: /excluded subtree violation/,
      },
      {
        name: 'a corrupted signature does not verify',
        make: () => ({ ca: root, svid: root.issueX509Svid({ now: NOW, corruptSignature: true }) }),
        expect: /certificate signature failure/,
      },
      {
        name: 'an expired leaf is rejected',
        make: () => ({
          ca: root,
          svid: root.issueX509Svid({
            now: NOW,
            notBefore: new Date(NOW.getTime() - 7200_000),
            notAfter: NOW,
          }),
        }),
        expect: /certificate has expired/,
      },
      {
        name: 'a not-yet-valid leaf is rejected',
        make: () => ({
          ca: root,
          svid: root.issueX509Svid({ now: NOW, notBefore: new Date(NOW.getTime() + 60_000) }),
        }),
        expect: /certificate is not yet valid/,
      },
      {
        name: 'an expired intermediate is rejected',
        make: () => {
          const ca = root.createIntermediate({ now: NOW, notAfter: new Date(NOW.getTime() - 1000) });
          return { ca, svid: ca.issueX509Svid({ now: NOW }) };
        },
        expect: /certificate has expired/,
      },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const { ca, svid } = tc.make();
        const r = opensslVerify(ca.root, svid);
        assert.equal(r.ok, false, r.out);
        assert.match(r.out, tc.expect);
      });
    }

    const textCases: { name: string; svid: () => IssuedChain; present?: RegExp[]; absent?: RegExp[] }[] = [
      {
        name: 'a leaf marked CA carries cA=true',
        svid: () => root.issueX509Svid({ now: NOW, isCa: true }),
        present: [/CA:TRUE/],
      },
      {
        name: 'a leaf without basicConstraints has none',
        svid: () => root.issueX509Svid({ now: NOW, omitBasicConstraints: true }),
        absent: [/Basic Constraints/],
      },
      {
        name: 'a leaf without keyUsage has none',
        svid: () => root.issueX509Svid({ now: NOW, keyUsage: null }),
        absent: [/X509v3 Key Usage/],
      },
      {
        name: 'a leaf with non-critical keyUsage says so',
        svid: () => root.issueX509Svid({ now: NOW, keyUsageCritical: false }),
        present: [/X509v3 Key Usage: \n/],
      },
      {
        name: 'a leaf with keyCertSign carries it',
        svid: () => root.issueX509Svid({ now: NOW, keyUsage: ['digitalSignature', 'keyCertSign'] }),
        present: [/Key Usage: critical\s+Digital Signature, Certificate Sign\n/],
      },
      {
        name: 'a leaf with serverAuth only lacks clientAuth',
        svid: () => root.issueX509Svid({ now: NOW, extKeyUsage: ['serverAuth'] }),
        present: [/Extended Key Usage: \s+TLS Web Server Authentication\n/],
      },
      {
        name: 'a leaf without EKU has none',
        svid: () => root.issueX509Svid({ now: NOW, extKeyUsage: null }),
        absent: [/Extended Key Usage/],
      },
      {
        name: 'a leaf without URIs has no SAN',
        svid: () => root.issueX509Svid({ now: NOW, uris: [] }),
        absent: [/Subject Alternative Name/],
      },
      {
        name: 'a leaf with two URIs carries both',
        svid: () =>
          root.issueX509Svid({ now: NOW, uris: ['spiffe://example.org/a', 'spiffe://example.org/b'] }),
        present: [/URI:spiffe:\/\/example.org\/a, URI:spiffe:\/\/example.org\/b/],
      },
      {
        name: 'an empty-subject leaf has a critical SAN',
        svid: () => root.issueX509Svid({ now: NOW, emptySubject: true }),
        present: [/Subject: \n/, /Subject Alternative Name: critical/],
      },
      {
        name: 'an empty-subject leaf can be forced to a non-critical SAN',
        svid: () => root.issueX509Svid({ now: NOW, emptySubject: true, sanCritical: false }),
        present: [/Subject Alternative Name: \n/],
      },
      {
        name: 'extra DNS and IP SANs are carried',
        svid: () =>
          root.issueX509Svid({ now: NOW, dnsNames: ['a.example', 'b.example'], ipAddresses: ['::1'] }),
        present: [
          /DNS:a.example, DNS:b.example, URI:spiffe:\/\/example.org\/workload, IP Address:0:0:0:0:0:0:0:1/,
        ],
      },
    ];
    for (const tc of textCases) {
      it(tc.name, () => {
        const text = opensslText(tc.svid().leaf);
        for (const re of tc.present ?? []) assert.match(text, re);
        for (const re of tc.absent ?? []) assert.doesNotMatch(text, re);
      });
    }

    it('a CA with a path in its SPIFFE ID carries that ID', () => {
      const ca = root.createIntermediate({ now: NOW, subjectSpiffeId: 'spiffe://example.org/intermediate' });
      assert.equal(ca.certificate.subjectAltName, 'URI:spiffe://example.org/intermediate');
      const none = root.createIntermediate({ now: NOW, subjectSpiffeId: null });
      assert.equal(none.certificate.subjectAltName, undefined);
    });
  });

  it('refuses to create a root without a trust domain', () => {
    assert.throws(() => TestCa.create({}), { name: 'TypeError', message: /needs a trustDomain/ });
  });
});
