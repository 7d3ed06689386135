import assert from 'node:assert/strict';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SpiffeError } from '@tessera/spiffe/errors';
import { idFromCert, verifyX509SvidSync, X509Svid, type X509SvidSource } from '@tessera/spiffe/svid';
import fc from 'fast-check';
import {
  type KeyKind,
  keyDer,
  keyPem,
  makeIntermediate,
  makeLeaf,
  makeRoot,
  NOW,
  newKey,
  pem,
} from './x509-fixtures.js';

const root = makeRoot('example.org');
const inter = makeIntermediate(root, 'example.org intermediate');
const ID = 'spiffe://example.org/workload';
const leaf = makeLeaf(inter, ID);
const chainPem = pem(leaf.der) + pem(inter.der);
const chainDer = Buffer.concat([leaf.der, inter.der]);
const INVALID = 'ERR_X509SVID_INVALID';

describe('X509Svid.parse', () => {
  for (const kind of ['ec', 'rsa', 'ed25519'] as KeyKind[]) {
    it(`parses a chain and a PKCS#8 ${kind} key`, () => {
      const l = makeLeaf(inter, ID, { key: newKey(kind) });
      const svid = X509Svid.parse(pem(l.der) + pem(inter.der), keyPem(l.key), 'internal');
      assert.equal(svid.id.toString(), ID);
      assert.deepEqual(
        svid.certificates.map((c) => c.fingerprint256),
        [l.cert.fingerprint256, inter.cert.fingerprint256],
      );
      assert.equal(svid.privateKey.asymmetricKeyType, kind);
      assert.equal(svid.hint, 'internal');
      assert.equal(svid.getX509Svid(), svid);
      assert.ok(Object.isFrozen(svid.certificates));
    });
  }

  it('accepts the key before or after the certificates in one text, with other blocks ignored', () => {
    const junk = 'subject=CN=workload\n';
    for (const text of [keyPem(leaf.key) + chainPem, chainPem + junk + keyPem(leaf.key)]) {
      const svid = X509Svid.parse(text, text);
      assert.equal(svid.certificates.length, 2);
      assert.equal(svid.id.toString(), ID);
    }
  });

  it('round-trips through marshal() and marshalDer()', () => {
    const svid = X509Svid.parse(chainPem, keyPem(leaf.key), 'h');
    const { certificates, privateKey } = svid.marshal();
    assert.equal(certificates, chainPem);
    const again = X509Svid.parse(certificates, privateKey, 'h');
    assert.ok(again.equals(svid));
    const der = svid.marshalDer();
    assert.deepEqual(der.certificates, chainDer);
    assert.ok(X509Svid.parseDer(der.certificates, der.privateKey, 'h').equals(svid));
    assert.ok(!X509Svid.parseDer(der.certificates, der.privateKey, 'other').equals(svid));
    assert.equal(svid.toString(), ID);
  });

  it('is usable as an X509SvidSource and its chain verifies against its bundle', () => {
    const source: X509SvidSource = X509Svid.parse(chainPem, keyPem(leaf.key));
    const r = verifyX509SvidSync(
      source.getX509Svid().certificates,
      {
        getX509BundleForTrustDomain: () => ({ x509Authorities: () => [root.cert] }),
      },
      { now: NOW },
    );
    assert.equal(r.id.toString(), ID);
    assert.equal(idFromCert(leaf.cert).toString(), ID);
  });

  const otherKey = newKey();
  const cases: { name: string; certs: () => string; key?: () => string; message: RegExp }[] = [
    {
      name: 'rejects text without PEM blocks',
      certs: () => 'not pem at all',
      message: /^x509svid: cannot parse PEM encoded certificate: no PEM blocks found$/,
    },
    {
      name: 'rejects a malformed PEM block',
      certs: () => '-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n',
      message:
        /^x509svid: cannot parse PEM encoded certificate: pem: block "CERTIFICATE" contains invalid base64$/,
    },
    {
      name: 'rejects a CERTIFICATE block that is not a certificate',
      certs: () => pem(Buffer.from('3003020101', 'hex')),
      message: /^x509svid: cannot parse PEM encoded certificate: invalid certificate$/,
    },
    {
      name: 'rejects a leaf without URI SAN',
      certs: () => pem(makeLeaf(inter, ID, { key: leaf.key, san: { dns: ['x.example'] } }).der),
      message:
        /^x509svid: certificate validation failed: cannot get leaf certificate SPIFFE ID: certificate contains no URI SAN$/,
    },
    {
      name: 'rejects a leaf with more than one URI SAN',
      certs: () => pem(makeLeaf(inter, ID, { key: leaf.key, san: { uris: [ID, `${ID}2`] } }).der),
      message:
        /^x509svid: certificate validation failed: cannot get leaf certificate SPIFFE ID: certificate contains more than one URI SAN$/,
    },
    {
      name: 'rejects a leaf whose URI SAN is not a SPIFFE ID',
      certs: () => pem(makeLeaf(inter, 'spiffe://example.org/a/../b', { key: leaf.key }).der),
      message:
        /^x509svid: certificate validation failed: cannot get leaf certificate SPIFFE ID: spiffeid: .*dot segments/,
    },
    {
      name: 'rejects a leaf with a root path',
      certs: () => pem(makeLeaf(inter, 'spiffe://example.org', { key: leaf.key }).der),
      message:
        /^x509svid: certificate validation failed: leaf certificate SPIFFE ID must have a non-root path$/,
    },
    {
      name: 'rejects a leaf marked CA',
      certs: () => pem(makeLeaf(inter, ID, { key: leaf.key, basicConstraints: { cA: true } }).der),
      message:
        /^x509svid: certificate validation failed: leaf certificate must not have CA flag set to true$/,
    },
    {
      name: 'rejects a leaf without digitalSignature',
      certs: () => pem(makeLeaf(inter, ID, { key: leaf.key, keyUsage: { bits: ['keyEncipherment'] } }).der),
      message:
        /^x509svid: certificate validation failed: leaf certificate must have 'digitalSignature' set as key usage$/,
    },
    {
      name: 'rejects a leaf with keyCertSign',
      certs: () =>
        pem(
          makeLeaf(inter, ID, { key: leaf.key, keyUsage: { bits: ['digitalSignature', 'keyCertSign'] } }).der,
        ),
      message:
        /^x509svid: certificate validation failed: leaf certificate must not have 'keyCertSign' set as key usage$/,
    },
    {
      name: 'rejects a leaf with cRLSign',
      certs: () =>
        pem(makeLeaf(inter, ID, { key: leaf.key, keyUsage: { bits: ['digitalSignature', 'cRLSign'] } }).der),
      message:
        /^x509svid: certificate validation failed: leaf certificate must not have 'cRLSign' set as key usage$/,
    },
    {
      name: 'rejects a signing certificate that is not a CA',
      certs: () => pem(leaf.der) + pem(makeIntermediate(root, 'x', { basicConstraints: { cA: false } }).der),
      message: /^x509svid: certificate validation failed: signing certificate must have CA flag set to true$/,
    },
    {
      name: 'rejects a signing certificate without keyCertSign',
      certs: () => pem(leaf.der) + pem(makeIntermediate(root, 'x', { keyUsage: { bits: ['cRLSign'] } }).der),
      message:
        /^x509svid: certificate validation failed: signing certificate must have 'keyCertSign' set as key usage$/,
    },
    {
      name: 'rejects a chain in the wrong order (X5-20)',
      certs: () => pem(inter.der) + pem(leaf.der),
      message:
        /^x509svid: certificate validation failed: cannot get leaf certificate SPIFFE ID: certificate contains no URI SAN$/,
    },
    {
      name: 'rejects a key that does not match the leaf',
      certs: () => chainPem,
      key: () => keyPem(otherKey),
      message: /^x509svid: private key validation failed: leaf certificate does not match private key$/,
    },
    {
      name: 'rejects key text without a private key',
      certs: () => chainPem,
      key: () => chainPem,
      message: /^x509svid: private key validation failed: no private key found$/,
    },
    {
      name: 'rejects a SEC1 EC PRIVATE KEY block (PKCS#8 only)',
      certs: () => chainPem,
      key: () => leaf.key.privateKey.export({ format: 'pem', type: 'sec1' }).toString(),
      message:
        /^x509svid: cannot parse PEM encoded private key: expected a PKCS#8 "PRIVATE KEY" block, found "EC PRIVATE KEY"$/,
    },
    {
      name: 'rejects a PRIVATE KEY block that is not PKCS#8',
      certs: () => chainPem,
      key: () => pem(Buffer.from('300100', 'hex'), 'PRIVATE KEY'),
      message: /^x509svid: cannot parse PEM encoded private key: invalid PKCS#8 private key$/,
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      assert.throws(() => X509Svid.parse(tc.certs(), tc.key ? tc.key() : keyPem(leaf.key)), {
        code: INVALID,
        message: tc.message,
      });
    });
  }

  it('rejects an unsupported key type', () => {
    const x448 = newKeyX448();
    assert.throws(() => X509Svid.parse(chainPem, x448), {
      code: INVALID,
      message: /^x509svid: cannot parse PEM encoded private key: unsupported private key type "x448"$/,
    });
  });

  it('throws TypeError on programmer misuse', () => {
    assert.throws(() => X509Svid.parse(42 as never, ''), TypeError);
    assert.throws(() => X509Svid.parse(chainPem, keyPem(leaf.key), 1 as never), TypeError);
    assert.throws(() => X509Svid.parseDer('x' as never, Buffer.alloc(0)), TypeError);
  });
});

function newKeyX448(): string {
  // x448 keys are valid PKCS#8 that X509-SVIDs do not support.
  return generateKeyPairSync('x448').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

describe('X509Svid.parseDer', () => {
  it('parses concatenated DER and a PKCS#8 DER key', () => {
    const svid = X509Svid.parseDer(chainDer, keyDer(leaf.key));
    assert.equal(svid.id.toString(), ID);
    assert.equal(svid.certificates.length, 2);
    assert.equal(svid.hint, '');
  });

  const cases: { name: string; chain: () => Uint8Array; key?: () => Uint8Array; message: RegExp }[] = [
    {
      name: 'rejects an empty chain',
      chain: () => new Uint8Array(0),
      message: /^x509svid: certificate validation failed: no certificates found$/,
    },
    {
      name: 'rejects truncated DER',
      chain: () => chainDer.subarray(0, chainDer.length - 1),
      message: /^x509svid: cannot parse DER encoded certificate: der: truncated element at offset \d+$/,
    },
    {
      name: 'rejects DER that is not a certificate',
      chain: () => Buffer.from('3003020101', 'hex'),
      message: /^x509svid: cannot parse DER encoded certificate: invalid certificate$/,
    },
    {
      name: 'rejects an empty key',
      chain: () => chainDer,
      key: () => new Uint8Array(0),
      message: /^x509svid: cannot parse DER encoded private key: no private key found$/,
    },
    {
      name: 'rejects a key that is not PKCS#8 DER',
      chain: () => chainDer,
      key: () => Buffer.from('3000', 'hex'),
      message: /^x509svid: cannot parse DER encoded private key: invalid PKCS#8 private key$/,
    },
    {
      name: 'rejects a certificate whose extension is malformed',
      chain: () =>
        makeLeaf(inter, ID, {
          key: leaf.key,
          extra: [{ oid: '2.5.29.19', critical: true, value: Buffer.from('3003010100', 'hex') }],
          basicConstraints: undefined,
        }).der,
      message:
        /^x509svid: cannot parse DER encoded certificate: malformed certificate: basic constraints encodes the default cA value$/,
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      assert.throws(() => X509Svid.parseDer(tc.chain(), tc.key ? tc.key() : keyDer(leaf.key)), {
        code: INVALID,
        message: tc.message,
      });
    });
  }
});

describe('X509Svid.parseDer with malformed extensions (DER reader fails closed)', () => {
  const cases: { name: string; oid: string; value: string; message: RegExp }[] = [
    {
      name: 'key usage with too many unused bits',
      oid: '2.5.29.15',
      value: '03020880',
      message: /key usage has an invalid bit string$/,
    },
    {
      name: 'an empty SAN sequence',
      oid: '2.5.29.17',
      value: '3000',
      message: /subject alternative name is empty$/,
    },
    {
      name: 'a non-ASCII URI SAN',
      oid: '2.5.29.17',
      value: '3003860180',
      message: /URI SAN is not printable ASCII$/,
    },
    {
      name: 'an indefinite length',
      oid: '2.5.29.17',
      value: '30808601610000',
      message: /subject alternative name uses an indefinite length$/,
    },
    {
      name: 'a non-minimal length',
      oid: '2.5.29.17',
      value: '3081038601 61'.replace(' ', ''),
      message: /subject alternative name has a non-minimal length$/,
    },
    {
      name: 'a truncated element',
      oid: '2.5.29.17',
      value: '30058601',
      message: /subject alternative name is truncated$/,
    },
    {
      name: 'trailing data after the SAN',
      oid: '2.5.29.17',
      value: '300386016100',
      message: /subject alternative name has trailing data$/,
    },
    {
      name: 'an empty extended key usage',
      oid: '2.5.29.37',
      value: '3000',
      message: /extended key usage is empty$/,
    },
    {
      name: 'a negative path length',
      oid: '2.5.29.19',
      value: '30060101ff0201ff',
      message: /basic constraints path length is negative$/,
    },
    {
      name: 'a boolean that is not DER',
      oid: '2.5.29.19',
      value: '3003010101',
      message: /basic constraints cA is not a DER boolean$/,
    },
  ];
  for (const tc of cases) {
    it(`rejects ${tc.name}`, () => {
      const kind =
        tc.oid === '2.5.29.15'
          ? 'keyUsage'
          : tc.oid === '2.5.29.17'
            ? 'san'
            : tc.oid === '2.5.29.37'
              ? 'eku'
              : 'basicConstraints';
      const bad = makeLeaf(inter, ID, {
        key: leaf.key,
        [kind]: undefined,
        extra: [{ oid: tc.oid, critical: true, value: Buffer.from(tc.value, 'hex') }],
      });
      assert.throws(() => X509Svid.parseDer(bad.der, keyDer(leaf.key)), {
        code: INVALID,
        message: new RegExp(
          `^x509svid: cannot parse DER encoded certificate: malformed certificate: ${tc.message.source}`,
        ),
      });
    });
  }
});

describe('X509Svid.load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-x509svid-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the chain and the key from files (or one file holding both)', () => {
    writeFileSync(join(dir, 'svid.pem'), chainPem);
    writeFileSync(join(dir, 'svid.key'), keyPem(leaf.key), { mode: 0o600 });
    writeFileSync(join(dir, 'both.pem'), keyPem(leaf.key) + chainPem, { mode: 0o600 });
    assert.equal(X509Svid.load(join(dir, 'svid.pem'), join(dir, 'svid.key')).id.toString(), ID);
    assert.equal(X509Svid.load(join(dir, 'both.pem'), join(dir, 'both.pem')).certificates.length, 2);
  });

  it('rejects a missing file', () => {
    const missing = join(dir, 'missing.pem');
    assert.throws(() => X509Svid.load(missing, missing), {
      code: INVALID,
      message: /^x509svid: cannot read certificate file ".*missing\.pem": ENOENT$/,
    });
  });
});

describe('X509-SVID parsing properties', () => {
  function assertSpiffeFailure(fn: () => unknown): void {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof SpiffeError, `unexpected error ${String(err)}`);
      assert.equal(err.code, INVALID);
      assert.match(err.message, /^x509svid: /);
      return;
    }
  }

  it('never crashes on arbitrary bytes given to parseDer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 200 }), (chain, key) => {
        assertSpiffeFailure(() => X509Svid.parseDer(chain, key));
      }),
      { numRuns: 500 },
    );
  });

  it('never crashes on mutations of a valid chain, and accepts only well-formed SVIDs', () => {
    const key = keyDer(leaf.key);
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(chainDer.length - 1), value: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
        (edits) => {
          const mutated = Buffer.from(chainDer);
          for (const e of edits) mutated[e.at] = e.value;
          let svid: X509Svid | undefined;
          assertSpiffeFailure(() => {
            svid = X509Svid.parseDer(mutated, key);
          });
          if (svid !== undefined) assert.equal(svid.certificates.length >= 1, true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('never crashes on arbitrary PEM-ish text given to parse', () => {
    const pemish = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc
        .tuple(
          fc.constantFrom('CERTIFICATE', 'PRIVATE KEY', 'EC PRIVATE KEY', 'X'),
          fc.base64String({ maxLength: 300 }),
        )
        .map(([label, body]) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`),
      fc.uint8Array({ maxLength: 300 }).map((b) => pem(Buffer.from(b))),
    );
    fc.assert(
      fc.property(pemish, pemish, (certs, key) => {
        assertSpiffeFailure(() => X509Svid.parse(certs, key));
      }),
      { numRuns: 500 },
    );
  });

  it('never crashes on verification of a mutated leaf, and never accepts a changed one', () => {
    const src = { getX509BundleForTrustDomain: () => ({ x509Authorities: () => [root.cert] }) };
    fc.assert(
      fc.property(fc.nat(leaf.der.length - 1), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const der = Buffer.from(leaf.der);
        der[at] = value;
        let cert: X509Certificate;
        try {
          cert = new X509Certificate(der);
        } catch {
          return;
        }
        try {
          verifyX509SvidSync([cert, inter.cert], src, { now: NOW });
          assert.ok(der.equals(leaf.der), 'a modified certificate verified');
        } catch (err) {
          assert.ok(err instanceof SpiffeError, `unexpected error ${String(err)}`);
          assert.equal(err.code, 'ERR_X509SVID_VERIFY_FAILED');
        }
      }),
      { numRuns: 400 },
    );
  });
});
