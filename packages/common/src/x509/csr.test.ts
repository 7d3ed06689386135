import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, it } from 'node:test';
import { X509SvidError } from '@tessera/spiffe/errors';
import fc from 'fast-check';
import { encodeName } from './certificate.js';
import { buildCsr, buildP256Csr, parseCsr } from './csr.js';
import { bitString, implicit, integer, octetString, oid, sequence, setOf } from './der-writer.js';
import { generateKey, KEY_TYPES, spkiDer } from './keys.js';
import { ExtensionOidDer, Oid, SignatureAlgorithmDer } from './oids.js';

function openssl(args: string[], input?: string | Buffer): { ok: boolean; out: string; stdout: Buffer } {
  const r = spawnSync('openssl', args, input === undefined ? {} : { input });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

function assertInvalid(der: Uint8Array, message: RegExp): void {
  assert.throws(
    () => parseCsr(der),
    (err: unknown) => {
      assert.ok(err instanceof X509SvidError, String(err));
      assert.equal(err.code, 'ERR_X509SVID_INVALID');
      assert.match(err.message, /^csr: /);
      assert.match(err.message, message);
      return true;
    },
  );
}

/** An openssl-made DER CSR for a fresh key of the given `-newkey` spec. */
function opensslCsr(newkey: string[], extra: string[] = []): Buffer {
  const r = openssl([
    'req', '-new', ...newkey, '-nodes', '-keyout', '/dev/null', '-subj', '/CN=openssl', '-outform', 'DER', ...extra,
  ]); // biome-ignore format: argument list
  assert.equal(r.ok, true, r.out);
  return r.stdout;
}

describe('buildCsr and parseCsr', () => {
  for (const type of KEY_TYPES) {
    it(`builds a ${type} CSR that openssl verifies and parseCsr round-trips`, () => {
      const { privateKey, publicKey } = generateKey(type);
      const der = buildCsr(privateKey, {
        uris: ['spiffe://example.org/agent'],
        dnsNames: ['node1.example'],
        ipAddresses: ['192.0.2.1', '2001:db8::2'],
        subject: { country: 'US', organization: 'Tessera', commonName: 'node1' },
      });
      const r = openssl(['req', '-verify', '-noout', '-text', '-inform', 'DER'], der);
      assert.equal(r.ok, true, r.out);
      assert.match(r.out, /verify OK|Certificate request self-signature verify OK/);
      assert.match(r.out, /URI:spiffe:\/\/example.org\/agent/);
      const parsed = parseCsr(der);
      assert.deepEqual(parsed.uris, ['spiffe://example.org/agent']);
      assert.deepEqual(parsed.dnsNames, ['node1.example']);
      assert.deepEqual(parsed.ipAddresses, ['192.0.2.1', '2001:db8:0:0:0:0:0:2']);
      assert.deepEqual(parsed.subject, { country: 'US', organization: 'Tessera', commonName: 'node1' });
      assert.deepEqual(parsed.spkiDer, spkiDer(publicKey));
      assert.equal(parsed.publicKey.equals(publicKey), true);
    });
  }

  it('builds a CSR without SANs or subject', () => {
    const der = buildCsr(generateKey().privateKey);
    assert.equal(openssl(['req', '-verify', '-noout', '-inform', 'DER'], der).ok, true);
    const parsed = parseCsr(der);
    assert.deepEqual([parsed.uris, parsed.dnsNames, parsed.subject], [[], [], {}]);
  });

  it('parses a CSR made by openssl', () => {
    const der = opensslCsr(
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      ['-addext', 'subjectAltName=URI:spiffe://example.org/x,DNS:x.example,email:a@b.example'],
    );
    const parsed = parseCsr(der);
    assert.deepEqual(parsed.uris, ['spiffe://example.org/x']);
    assert.deepEqual(parsed.dnsNames, ['x.example']);
    assert.equal(parsed.subject.commonName, 'openssl');
  });

  it('refuses to build with a public key', () => {
    assert.throws(() => buildCsr(generateKey().publicKey), {
      name: 'TypeError',
      message: /needs a private key/,
    });
  });
});

describe('buildP256Csr', () => {
  const { privateKey: pkcs8, publicKey: spki } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });

  it('builds, from DER alone, a CSR that openssl verifies and parseCsr accepts for the same key', () => {
    const der = buildP256Csr({ pkcs8, spki }, { uris: ['spiffe://example.org/w'] });
    const r = openssl(['req', '-verify', '-noout', '-text', '-inform', 'DER'], der);
    assert.equal(r.ok, true, r.out);
    assert.match(r.out, /ecdsa-with-SHA256/);
    const parsed = parseCsr(der);
    assert.deepEqual(parsed.spkiDer, spki);
    assert.deepEqual(parsed.uris, ['spiffe://example.org/w']);
  });

  it("gives a CSR that fails proof of possession when the private key is not the SPKI's", () => {
    const other = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'der' },
      privateKeyEncoding: { type: 'pkcs8', format: 'der' },
    });
    assertInvalid(buildP256Csr({ pkcs8: other.privateKey, spki }), /signature/);
  });
});

describe('parseCsr rejects', () => {
  const key = generateKey('ec-p256').privateKey;
  const good = buildCsr(key, { uris: ['spiffe://example.org/x'] });

  /** Re-signs a CertificationRequestInfo with `key` under the given algorithm identifier. */
  function signed(
    info: Buffer,
    algorithm = SignatureAlgorithmDer.ecdsaWithSha256,
    hash: string | null = 'sha256',
  ) {
    return sequence(info, algorithm, bitString(sign(hash, info, key)));
  }
  const spki = spkiDer(key);
  const emptyAttrs = Buffer.from('a000', 'hex');

  const cases: { name: string; der: () => Uint8Array; message: RegExp }[] = [
    { name: 'an empty input', der: () => Buffer.alloc(0), message: /malformed request: missing/ },
    { name: 'trailing data', der: () => Buffer.concat([good, Buffer.from([0])]), message: /trailing data/ },
    { name: 'a truncated request', der: () => good.subarray(0, good.length - 3), message: /truncated/ },
    {
      name: 'a tampered signature',
      der: () => {
        const d = Buffer.from(good);
        d[d.length - 1] = (d[d.length - 1] as number) ^ 1;
        return d;
      },
      message: /signature does not verify/,
    },
    {
      name: 'a tampered request body',
      der: () => {
        const d = Buffer.from(good);
        const i = d.indexOf(Buffer.from('example.org'));
        d[i] = 'E'.charCodeAt(0);
        return d;
      },
      message: /signature does not verify/,
    },
    {
      name: 'a signature algorithm that does not match the key',
      der: () =>
        signed(sequence(integer(0), encodeName({}), spki, emptyAttrs), SignatureAlgorithmDer.sha256WithRsa),
      message: /does not match a "ec" key/,
    },
    {
      name: 'version 2',
      der: () => signed(sequence(integer(1), encodeName({}), spki, emptyAttrs)),
      message: /unsupported version/,
    },
    {
      name: 'a missing attributes field',
      der: () => signed(sequence(integer(0), encodeName({}), spki)),
      message: /missing attributes/,
    },
    {
      name: 'an unsupported signature algorithm',
      der: () =>
        signed(
          sequence(integer(0), encodeName({}), spki, emptyAttrs),
          Buffer.from('300a06082a8648ce3d040301', 'hex'), // ecdsa-with-SHA224
        ),
      message: /unsupported signature algorithm "1.2.840.10045.4.3.1"/,
    },
    {
      name: 'a P-256 point that is not on the curve',
      der: () => {
        const offCurve = Buffer.from(spki);
        offCurve[offCurve.length - 1] = (offCurve[offCurve.length - 1] as number) ^ 1;
        return signed(sequence(integer(0), encodeName({}), offCurve, emptyAttrs));
      },
      message: /invalid subject public key/,
    },
    {
      name: 'an RSA key under 2048 bits',
      der: () => opensslCsr(['-newkey', 'rsa:1024']),
      message: /unsupported public key "rsa"/,
    },
    {
      name: 'a P-521 key',
      der: () => opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521']),
      message: /unsupported public key "ec secp521r1"/,
    },
    {
      name: 'a duplicate subjectAltName extension',
      der: () => {
        const san = (u: string) =>
          sequence(ExtensionOidDer.subjectAltName, octetString(sequence(implicit(6, Buffer.from(u)))));
        const req = sequence(
          oid(Oid.extensionRequest),
          setOf(sequence(san('spiffe://a.org/x'), san('spiffe://b.org/x'))),
        );
        return signed(sequence(integer(0), encodeName({}), spki, implicit(0, req, true)));
      },
      message: /duplicate extension "2.5.29.17"/,
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => assertInvalid(tc.der(), tc.message));
  }

  it('rejects a non-byte argument as misuse', () => {
    assert.throws(() => parseCsr('nope' as unknown as Uint8Array), { name: 'TypeError' });
  });

  it('parses the legitimately re-signed base case (the helpers above are sound)', () => {
    const der = signed(sequence(integer(0), encodeName({ commonName: 'x' }), spki, emptyAttrs));
    assert.equal(parseCsr(der).subject.commonName, 'x');
  });

  it('never throws anything but ERR_X509SVID_INVALID on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        try {
          parseCsr(bytes);
        } catch (err) {
          assert.ok(err instanceof X509SvidError, String(err));
          assert.equal(err.code, 'ERR_X509SVID_INVALID');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never crashes on mutations of a valid CSR and only accepts ones that still verify', () => {
    const rsa = buildCsr(generateKey('rsa-2048').privateKey, {
      dnsNames: ['a.example'],
      subject: { commonName: 'é' },
    });
    const ed = buildCsr(generateKey('ed25519').privateKey, { ipAddresses: ['::1'] });
    fc.assert(
      fc.property(
        fc.constantFrom(good, rsa, ed),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.boolean(),
        (base, flips, cut, truncate) => {
          const d = Buffer.from(base);
          for (const [pos, x] of flips) d[pos % d.length] = (d[pos % d.length] as number) ^ x;
          const input = truncate ? d.subarray(0, cut % d.length) : d;
          try {
            parseCsr(input);
            // Any accepted mutation must still be a request openssl itself verifies.
            assert.equal(openssl(['req', '-verify', '-noout', '-inform', 'DER'], input).ok, true);
          } catch (err) {
            assert.ok(err instanceof X509SvidError, String(err));
            assert.match(err.message, /^csr: /);
          }
        },
      ),
      { numRuns: 1500 },
    );
  });
});
