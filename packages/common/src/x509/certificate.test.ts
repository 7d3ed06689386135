import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  buildCertificate,
  buildLeafSvid,
  CA_KEY_USAGE,
  certificateSpkiDer,
  createIssuerContext,
  derToPem,
  ipAddressBytes,
} from './certificate.js';
import { DerReader, readOne } from './der-reader.js';
import { generateKey, KEY_TYPES, keyIdentifier, keyTypeOf, spkiDer } from './keys.js';

const NOW = new Date('2030-06-01T00:00:00Z');
const AT = String(NOW.getTime() / 1000);
const HOUR = 3600_000;
const nb = new Date(NOW.getTime() - HOUR);
const na = new Date(NOW.getTime() + 24 * HOUR);
const dir = mkdtempSync(join(tmpdir(), 'tessera-x509-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(content: string | Buffer): string {
  const p = join(dir, `f${++n}`);
  writeFileSync(p, content);
  return p;
}

function openssl(args: string[], input?: string | Buffer): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function text(der: Buffer): string {
  const r = openssl(['x509', '-noout', '-text', '-inform', 'DER'], der);
  assert.equal(r.ok, true, r.out);
  return r.out;
}

function verify(root: Buffer, chain: Buffer[], extra: string[] = []): { ok: boolean; out: string } {
  const [leaf, ...inters] = chain;
  const args = ['verify', '-attime', AT, ...extra, '-CAfile', file(derToPem(root))];
  if (inters.length) args.push('-untrusted', file(inters.map((d) => derToPem(d)).join('')));
  args.push(file(derToPem(leaf as Buffer)));
  return openssl(args);
}

function makeRoot(keyType: (typeof KEY_TYPES)[number] = 'ec-p256') {
  const key = generateKey(keyType);
  const built = buildCertificate(
    {
      publicKey: key.publicKey,
      subject: { country: 'US', organization: 'Tessera', commonName: `root ${keyType}` },
      notBefore: nb,
      notAfter: na,
      basicConstraints: { ca: true },
      keyUsage: { usages: CA_KEY_USAGE },
      subjectAltName: { uris: ['spiffe://example.org'] },
    },
    { privateKey: key.privateKey },
  );
  return { key, built };
}

describe('buildCertificate', () => {
  for (const caType of KEY_TYPES) {
    it(`builds a ${caType} root, intermediate and leaf that openssl verifies`, () => {
      const root = makeRoot(caType);
      const interKey = generateKey(caType);
      const inter = buildCertificate(
        {
          publicKey: interKey.publicKey,
          subject: { organization: 'Tessera', commonName: 'intermediate' },
          notBefore: nb,
          notAfter: na,
          basicConstraints: { ca: true, pathLen: 0 },
          keyUsage: { usages: CA_KEY_USAGE },
          subjectAltName: { uris: ['spiffe://example.org'] },
          nameConstraints: { permittedUris: ['example.org'], permittedDnsNames: ['example.org'] },
        },
        { certificate: root.built.certificate, privateKey: root.key.privateKey },
      );
      const ctx = createIssuerContext({ certificate: inter.certificate, privateKey: interKey.privateKey });
      const leafKey = generateKey('ec-p256');
      const leaf = buildLeafSvid('spiffe://example.org/web', spkiDer(leafKey.publicKey), nb, na, ctx);
      const r = verify(root.built.der, [leaf, inter.der], ['-purpose', 'sslclient']);
      assert.equal(r.ok, true, r.out);
      assert.equal(verify(root.built.der, [leaf, inter.der], ['-purpose', 'sslserver']).ok, true);
      const leafCert = new X509Certificate(leaf);
      assert.equal(leafCert.checkIssued(inter.certificate), true);
      assert.equal(leafCert.verify(interKey.publicKey), true);
      assert.equal(inter.certificate.verify(root.key.publicKey), true);
      assert.equal(root.built.certificate.verify(root.key.publicKey), true);
      assert.equal(leafCert.subjectAltName, 'URI:spiffe://example.org/web');
      assert.equal(leafCert.ca, false);
    });
  }

  it('emits the requested names, constraints and key identifiers', () => {
    const root = makeRoot();
    const key = generateKey('ec-p256');
    const built = buildCertificate(
      {
        publicKey: key.publicKey,
        subject: { country: 'DE', organization: 'Ünïcode GmbH', organizationalUnit: 'ou', commonName: 'cn' },
        notBefore: nb,
        notAfter: na,
        basicConstraints: { ca: true, pathLen: 3 },
        keyUsage: { usages: ['keyCertSign'], critical: false },
        extKeyUsage: ['clientAuth'],
        subjectAltName: { dnsNames: ['a.example'], ipAddresses: ['10.1.2.3', '2001:db8::1'], critical: true },
        nameConstraints: { excludedUris: ['.evil.org'], excludedDnsNames: ['bad.example'] },
      },
      { certificate: root.built.certificate, privateKey: root.key.privateKey },
    );
    const t = text(built.der);
    assert.match(t, /Subject: C = DE, O = \\C3\\9Cn\\C3\\AFcode GmbH, OU = ou, CN = cn/);
    assert.equal(built.certificate.subject, 'C=DE\nO=Ünïcode GmbH\nOU=ou\nCN=cn');
    assert.match(t, /Issuer: C = US, O = Tessera, CN = root ec-p256/);
    assert.match(t, /Basic Constraints: critical\s+CA:TRUE, pathlen:3/);
    assert.match(t, /X509v3 Key Usage: \s+Certificate Sign\n/);
    assert.match(t, /Extended Key Usage: \s+TLS Web Client Authentication\n/);
    assert.match(
      t,
      /Subject Alternative Name: critical\s+DNS:a.example, IP Address:10.1.2.3, IP Address:2001:DB8:0:0:0:0:0:1/,
    );
    assert.match(t, /Name Constraints: critical\s+Excluded:\s+DNS:bad.example\s+URI:.evil.org/);
    const ski = /Subject Key Identifier: \s+([0-9A-F:]+)/.exec(text(root.built.der))?.[1];
    const aki = /Authority Key Identifier: \s+(?:keyid:)?([0-9A-F:]+)/.exec(t)?.[1];
    assert.ok(ski);
    assert.equal(aki, ski);
    assert.equal(
      ski.replaceAll(':', '').toLowerCase(),
      keyIdentifier(spkiDer(root.key.publicKey)).toString('hex'),
    );
  });

  it('omits extensions that are not asked for', () => {
    const key = generateKey('ed25519');
    const built = buildCertificate(
      {
        publicKey: key.publicKey,
        notBefore: nb,
        notAfter: na,
        subjectKeyIdentifier: false,
        authorityKeyIdentifier: false,
      },
      { privateKey: key.privateKey },
    );
    assert.doesNotMatch(text(built.der), /X509v3 extensions/);
  });

  it('encodes validity after 2049 as GeneralizedTime', () => {
    const key = generateKey('ec-p256');
    const built = buildCertificate(
      { publicKey: key.publicKey, notBefore: nb, notAfter: new Date('2051-01-02T03:04:05Z') },
      { privateKey: key.privateKey },
    );
    assert.equal(new Date(built.certificate.validTo).toISOString(), '2051-01-02T03:04:05.000Z');
    assert.match(
      openssl(['asn1parse', '-inform', 'DER'], built.der).out,
      /GENERALIZEDTIME\s+:20510102030405Z/,
    );
  });

  it('uses random positive 16-byte serial numbers', () => {
    const root = makeRoot();
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const der = buildCertificate(
        { publicKey: root.key.publicKey, notBefore: nb, notAfter: na },
        { privateKey: root.key.privateKey },
      ).der;
      const tbs = new DerReader(new DerReader(readOne(der, 0x30, 'c').content).read(0x30).content);
      tbs.read(0xa0);
      const serial = tbs.read(0x02).content;
      assert.equal(serial.length, 16);
      assert.equal((serial[0] as number) & 0x80, 0);
      serials.add(serial.toString('hex'));
    }
    assert.equal(serials.size, 50);
  });

  it('chains under an issuer made by openssl, copying its subject and key identifier', () => {
    const keyFile = join(dir, 'ossl.key');
    const certFile = join(dir, 'ossl.pem');
    const r = openssl([
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile,
      '-out', certFile, '-days', '36500', '-subj', '/C=FR/O=Foreign CA/CN=openssl root',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]); // biome-ignore format: argument list
    assert.equal(r.ok, true, r.out);
    const caCert = new X509Certificate(readFileSync(certFile));
    const ctx = createIssuerContext({
      certificate: caCert,
      privateKey: createPrivateKey(readFileSync(keyFile)),
    });
    const leaf = buildLeafSvid('spiffe://example.org/x', spkiDer(generateKey().publicKey), nb, na, ctx);
    const v = verify(caCert.raw, [leaf]);
    assert.equal(v.ok, true, v.out);
    assert.match(text(leaf), /Issuer: C = FR, O = Foreign CA, CN = openssl root/);
  });

  it('refuses a self-signed certificate whose key does not match', () => {
    assert.throws(
      () =>
        buildCertificate(
          { publicKey: generateKey().publicKey, notBefore: nb, notAfter: na },
          { privateKey: generateKey().privateKey },
        ),
      { name: 'TypeError', message: /self-signed certificate needs the private key/ },
    );
  });

  it('refuses an unsupported signing key', () => {
    const { privateKey } = generateKeyPairRsa1024();
    assert.throws(
      () => buildCertificate({ publicKey: privateKey, notBefore: nb, notAfter: na }, { privateKey }),
      { name: 'TypeError', message: /unsupported signing key type "rsa"/ },
    );
  });
});

function generateKeyPairRsa1024() {
  const r = openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024']);
  assert.equal(r.ok, true, r.out);
  return { privateKey: createPrivateKey(r.out) };
}

describe('buildLeafSvid', () => {
  const root = makeRoot();
  const ctx = createIssuerContext({ certificate: root.built.certificate, privateKey: root.key.privateKey });
  const spki = spkiDer(generateKey().publicKey);

  it('issues the SPIRE leaf profile with an empty subject and a critical SAN', () => {
    const t = text(buildLeafSvid('spiffe://example.org/a/b', spki, nb, na, ctx));
    assert.match(t, /Subject: \n/);
    assert.match(t, /Basic Constraints: critical\s+CA:FALSE/);
    assert.match(t, /Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/);
    assert.match(t, /TLS Web Server Authentication, TLS Web Client Authentication/);
    assert.match(t, /Subject Alternative Name: critical\s+URI:spiffe:\/\/example.org\/a\/b\n/);
  });

  it('uses a configured subject with a non-critical SAN and can omit EKU', () => {
    const c = createIssuerContext({
      certificate: root.built.certificate,
      privateKey: root.key.privateKey,
      subject: { country: 'US', organization: 'SPIRE' },
      extKeyUsage: null,
    });
    const t = text(buildLeafSvid('spiffe://example.org/a', spki, nb, na, c));
    assert.match(t, /Subject: C = US, O = SPIRE/);
    assert.match(t, /Subject Alternative Name: \n/);
    assert.doesNotMatch(t, /Extended Key Usage/);
  });

  const refused: { name: string; id: string; from?: Date; to?: Date; spki?: Buffer; message: RegExp }[] = [
    { name: 'refuses a root-path leaf id', id: 'spiffe://example.org', message: /non-root path/ },
    { name: 'refuses a trailing-slash leaf id', id: 'spiffe://example.org/', message: /non-root path/ },
    { name: 'refuses a non-spiffe uri', id: 'https://example.org/x', message: /not a spiffe id/ },
    {
      name: 'refuses an id over 2048 bytes',
      id: `spiffe://example.org/${'a'.repeat(2048)}`,
      message: /not a spiffe id/,
    },
    { name: 'refuses a non-ascii id', id: 'spiffe://example.org/é', message: /not ascii/ },
    {
      name: 'refuses notAfter before notBefore',
      id: 'spiffe://example.org/x',
      from: na,
      to: nb,
      message: /notBefore/,
    },
    {
      name: 'refuses a leaf outliving its CA',
      id: 'spiffe://example.org/x',
      to: new Date(na.getTime() + 1000),
      message: /must not outlive/,
    },
    {
      name: 'refuses malformed key info',
      id: 'spiffe://example.org/x',
      spki: Buffer.from('3000', 'hex'),
      message: /malformed/,
    },
  ];
  for (const tc of refused) {
    it(tc.name, () =>
      assert.throws(() => buildLeafSvid(tc.id, tc.spki ?? spki, tc.from ?? nb, tc.to ?? na, ctx), {
        name: 'RangeError',
        message: tc.message,
      }),
    );
  }

  it('refuses an issuer context for a non-CA certificate', () => {
    const leaf = new X509Certificate(buildLeafSvid('spiffe://example.org/x', spki, nb, na, ctx));
    assert.throws(() => createIssuerContext({ certificate: leaf, privateKey: root.key.privateKey }), {
      name: 'TypeError',
      message: /not a ca/,
    });
  });

  it('refuses an issuer context whose key does not match', () => {
    assert.throws(
      () =>
        createIssuerContext({ certificate: root.built.certificate, privateKey: generateKey().privateKey }),
      { name: 'TypeError', message: /does not match/ },
    );
  });

  it('refuses a leaf key usage that breaks the SVID profile', () => {
    for (const keyUsage of [
      ['keyEncipherment'],
      ['digitalSignature', 'keyCertSign'],
      ['digitalSignature', 'cRLSign'],
    ] as const) {
      assert.throws(
        () =>
          createIssuerContext({
            certificate: root.built.certificate,
            privateKey: root.key.privateKey,
            keyUsage,
          }),
        { name: 'TypeError', message: /leaf key usage/ },
      );
    }
  });
});

describe('certificateSpkiDer', () => {
  it("reads the SubjectPublicKeyInfo of every key type, equal to the key's own SPKI", () => {
    for (const type of KEY_TYPES) {
      const root = makeRoot(type);
      assert.deepEqual(certificateSpkiDer(root.built.der), spkiDer(root.key.publicKey), type);
      assert.deepEqual(
        certificateSpkiDer(root.built.der),
        root.built.certificate.publicKey.export({ type: 'spki', format: 'der' }),
      );
    }
  });

  it('tells a certificate for another key apart', () => {
    const a = makeRoot('ec-p256');
    const b = generateKey('ec-p256');
    assert.equal(certificateSpkiDer(a.built.der).equals(spkiDer(b.publicKey)), false);
  });

  it('rejects malformed DER with a TypeError', () => {
    const der = makeRoot('ec-p256').built.der;
    assert.throws(() => certificateSpkiDer(der.subarray(0, 40)), /x509: malformed certificate/);
    assert.throws(() => certificateSpkiDer(Buffer.from([0x02, 0x01, 0x00])), /x509: malformed certificate/);
  });
});

describe('keys', () => {
  for (const type of KEY_TYPES) {
    it(`generates and recognises ${type}`, () => {
      const { privateKey, publicKey } = generateKey(type);
      assert.equal(keyTypeOf(privateKey), type);
      assert.equal(keyTypeOf(publicKey), type);
      assert.deepEqual(spkiDer(privateKey), spkiDer(publicKey));
    });
  }
});

describe('ipAddressBytes', () => {
  const cases: [string, string][] = [
    ['127.0.0.1', '7f000001'],
    ['::1', '00000000000000000000000000000001'],
    ['::', '00000000000000000000000000000000'],
    ['fe80::1:2', 'fe800000000000000000000000010002'],
    ['1:2:3:4:5:6:7:8', '00010002000300040005000600070008'],
    ['::ffff:1.2.3.4', '00000000000000000000ffff01020304'],
    ['1:2:3:4:5:6:1.2.3.4', '00010002000300040005000601020304'],
  ];
  for (const [ip, want] of cases) {
    it(`encodes ${ip}`, () => assert.equal(ipAddressBytes(ip).toString('hex'), want));
  }
  it('rejects text that is not an address', () => {
    assert.throws(() => ipAddressBytes('example.org'), {
      name: 'RangeError',
      message: /invalid ip address "example.org"/,
    });
  });
});
