import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { X509Bundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { caA, caB, caRsa } from './fixtures.js';

const td = TrustDomain.fromString('example.org');

describe('X509Bundle', () => {
  it('parses PEM certificates, ignoring text between blocks', () => {
    const text = `subject=CN = a\n${caA.pem}\nBag Attributes: x\n${caB.pem}trailing words`;
    const b = X509Bundle.parse(td, text);
    assert.equal(b.x509Authorities().length, 2);
    assert.ok(b.hasX509Authority(caA.cert));
    assert.ok(b.hasX509Authority(caB.cert));
    assert.equal(b.hasX509Authority(caRsa.cert), false);
    assert.ok(b.trustDomain.equals(td));
  });

  it('tolerates CRLF line endings and extra whitespace inside a block', () => {
    const crlf = caA.pem.replace(/\n/g, '\r\n').replace('-----\r\n', '-----\r\n  \r\n');
    assert.ok(X509Bundle.parse(td, crlf).hasX509Authority(caA.cert));
  });

  it('de-duplicates authorities, keeping the first-seen order', () => {
    const b = X509Bundle.parse(td, caB.pem + caA.pem + caB.pem);
    assert.deepEqual(
      b.x509Authorities().map((c) => c.fingerprint256),
      [caB.cert.fingerprint256, caA.cert.fingerprint256],
    );
  });

  it('gives an empty bundle for empty or blank input', () => {
    assert.equal(X509Bundle.parse(td, '').x509Authorities().length, 0);
    assert.equal(X509Bundle.parse(td, ' \n').isEmpty(), true);
    assert.equal(X509Bundle.parseDer(td, new Uint8Array()).isEmpty(), true);
  });

  const badPem: Array<{ name: string; text: string; message: RegExp }> = [
    { name: 'text without any block', text: 'hello', message: /no PEM blocks found/ },
    {
      name: 'a private key block',
      text: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
      message: /expected block type "CERTIFICATE"; got "PRIVATE KEY"/,
    },
    {
      name: 'bad base64 inside a block',
      text: caA.pem.replace(/\n(.)/, '\n*$1'),
      message: /invalid base64/,
    },
    {
      name: 'url-safe base64 inside a block',
      text: '-----BEGIN CERTIFICATE-----\nab-_\n-----END CERTIFICATE-----\n',
      message: /invalid base64/,
    },
    { name: 'a missing END line', text: caA.pem.replace(/-----END[^\n]*\n/, ''), message: /has no END line/ },
    {
      name: 'a mismatched END label',
      text: caA.pem.replace('END CERTIFICATE', 'END X509 CRL'),
      message: /is not terminated by "-----END CERTIFICATE-----"/,
    },
    {
      name: 'an empty block',
      text: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
      message: /is empty/,
    },
    {
      name: 'a block that is not a certificate',
      text: '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n',
      message: /^x509bundle: cannot parse certificate: /,
    },
  ];
  for (const tc of badPem) {
    it(`rejects PEM with ${tc.name}`, () => {
      assert.throws(() => X509Bundle.parse(td, tc.text), {
        name: 'BundleError',
        code: 'ERR_BUNDLE_INVALID',
        message: tc.message,
      });
    });
  }

  it('parses concatenated DER and marshals back to the same bytes and PEM', () => {
    const der = Buffer.concat([caA.der, caRsa.der]);
    const b = X509Bundle.parseDer(td, der);
    assert.equal(b.x509Authorities().length, 2);
    assert.ok(b.marshalDer().equals(der));
    const again = X509Bundle.parse(td, b.marshal());
    assert.ok(again.equals(b));
    assert.match(
      b.marshal(),
      /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n/,
    );
  });

  const badDer: Array<{ name: string; der: Buffer; message: RegExp }> = [
    { name: 'a truncated certificate', der: caA.der.subarray(0, caA.der.length - 1), message: /truncated/ },
    { name: 'trailing garbage', der: Buffer.concat([caA.der, Buffer.from([0x30])]), message: /truncated/ },
    { name: 'a non-SEQUENCE element', der: Buffer.from([0x02, 0x01, 0x00]), message: /expected a SEQUENCE/ },
    {
      name: 'an indefinite length',
      der: Buffer.from([0x30, 0x80, 0x00, 0x00]),
      message: /indefinite length/,
    },
    { name: 'a SEQUENCE that is not a certificate', der: Buffer.from([0x30, 0x00]), message: /cannot parse/ },
  ];
  for (const tc of badDer) {
    it(`rejects DER with ${tc.name}`, () => {
      assert.throws(() => X509Bundle.parseDer(td, tc.der), {
        code: 'ERR_BUNDLE_INVALID',
        message: tc.message,
      });
    });
  }

  it('rejects a certificate whose public key cannot be loaded (found by the property test)', () => {
    const ecOid = Buffer.from([0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
    const at = caA.der.indexOf(ecOid);
    assert.ok(at > 0);
    const broken = Buffer.from(caA.der);
    broken[at + 2] = 0x00;
    broken[at + 3] = 0xfe;
    assert.throws(() => X509Bundle.parseDer(td, broken), {
      code: 'ERR_BUNDLE_INVALID',
      message: /^x509bundle: cannot parse certificate: /,
    });
  });

  it('compares by trust domain and authority set', () => {
    const ab = X509Bundle.fromAuthorities(td, [caA.cert, caB.cert]);
    assert.ok(ab.equals(X509Bundle.fromAuthorities(td, [caB.cert, caA.cert])));
    assert.equal(ab.equals(X509Bundle.fromAuthorities(td, [caA.cert])), false);
    assert.equal(
      ab.equals(X509Bundle.fromAuthorities(TrustDomain.fromString('other.org'), [caA.cert, caB.cert])),
      false,
    );
    assert.ok(X509Bundle.fromAuthorities(td, [caA.cert]).withX509Authorities(caB.cert).equals(ab));
  });

  it('is a source of itself only', () => {
    const b = X509Bundle.fromAuthorities(td, [caA.cert]);
    assert.equal(b.getX509BundleForTrustDomain(TrustDomain.fromString('example.org')), b);
    assert.throws(() => b.getX509BundleForTrustDomain(TrustDomain.fromString('other.org')), {
      name: 'BundleError',
      code: 'ERR_BUNDLE_NOT_FOUND',
      message: 'x509bundle: no X.509 bundle found for trust domain: "other.org"',
    });
  });

  it('loads a PEM file, and reports an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-x509bundle-'));
    try {
      const file = join(dir, 'bundle.pem');
      writeFileSync(file, caA.pem + caB.pem);
      assert.equal(X509Bundle.load(td, file).x509Authorities().length, 2);
      assert.throws(() => X509Bundle.load(td, join(dir, 'missing.pem')), {
        code: 'ERR_BUNDLE_INVALID',
        message: /^x509bundle: unable to load X.509 bundle file ".*missing.pem": /,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
