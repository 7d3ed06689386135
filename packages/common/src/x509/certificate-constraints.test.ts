import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildCertificate, CA_KEY_USAGE, LEAF_KEY_USAGE } from './certificate.js';
import { readCertificateConstraints } from './certificate-constraints.js';
import { DerError } from './der-reader.js';
import {
  bitString,
  boolean,
  explicit,
  integer,
  namedBits,
  octetString,
  oid,
  sequence,
  Tag,
  tlv,
  utcTime,
} from './der-writer.js';
import { generateKey, spkiDer } from './keys.js';
import { ExtensionOidDer } from './oids.js';

const NOW = new Date('2030-06-01T00:00:00Z');
const nb = new Date(NOW.getTime() - 3600_000);
const na = new Date(NOW.getTime() + 3600_000);
const key = generateKey('ec-p256');

function built(options: Partial<Parameters<typeof buildCertificate>[0]>): Buffer {
  return buildCertificate(
    { publicKey: key.publicKey, notBefore: nb, notAfter: na, ...options },
    { privateKey: key.privateKey },
  ).der;
}

/** A certificate with exactly these extension DERs (unsigned: the reader never checks signatures). */
function withExtensions(...extensions: Buffer[]): Buffer {
  const alg = sequence(oid('1.2.840.10045.4.3.2'));
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(1),
    alg,
    sequence(),
    sequence(utcTime(nb), utcTime(na)),
    sequence(),
    spkiDer(key.publicKey),
    ...(extensions.length ? [explicit(3, sequence(...extensions))] : []),
  );
  return sequence(tbs, alg, bitString(Buffer.alloc(8)));
}

function ext(id: Buffer, value: Buffer, critical?: Buffer): Buffer {
  return sequence(id, ...(critical ? [critical] : []), octetString(value));
}

const bc = (...fields: Buffer[]) => ext(ExtensionOidDer.basicConstraints, sequence(...fields), boolean(true));
const ku = (value: Buffer) => ext(ExtensionOidDer.keyUsage, value, boolean(true));

describe('readCertificateConstraints', () => {
  const cases: {
    name: string;
    der: () => Buffer;
    ca?: boolean;
    pathLen?: number;
    keyUsage?: readonly string[];
  }[] = [
    {
      name: 'reads a CA with a path length and the CA key usages',
      der: () => built({ basicConstraints: { ca: true, pathLen: 3 }, keyUsage: { usages: CA_KEY_USAGE } }),
      ca: true,
      pathLen: 3,
      keyUsage: ['keyCertSign', 'cRLSign'],
    },
    {
      name: 'reads path length 0',
      der: () => built({ basicConstraints: { ca: true, pathLen: 0 } }),
      ca: true,
      pathLen: 0,
    },
    {
      name: 'reads a CA without a path length',
      der: () =>
        built({ basicConstraints: { ca: true }, keyUsage: { usages: ['keyCertSign'], critical: false } }),
      ca: true,
      keyUsage: ['keyCertSign'],
    },
    {
      name: 'reads a leaf: cA false, leaf key usages',
      der: () => built({ basicConstraints: { ca: false }, keyUsage: { usages: LEAF_KEY_USAGE } }),
      ca: false,
      keyUsage: ['digitalSignature', 'keyEncipherment', 'keyAgreement'],
    },
    {
      name: 'reads decipherOnly, the ninth bit, in a second octet',
      der: () => built({ keyUsage: { usages: ['keyAgreement', 'decipherOnly'] } }),
      keyUsage: ['keyAgreement', 'decipherOnly'],
    },
    {
      name: 'reads an empty key usage bit string as no usage',
      der: () => withExtensions(ku(bitString(Buffer.alloc(0)))),
      keyUsage: [],
    },
    {
      name: 'reads a multi-octet path length',
      der: () => withExtensions(bc(boolean(true), integer(300))),
      ca: true,
      pathLen: 300,
    },
    {
      name: 'reads neither extension when the certificate has none',
      der: () => built({ subjectKeyIdentifier: false, authorityKeyIdentifier: false }),
    },
    {
      name: 'reads neither extension when the certificate has only others',
      der: () => built({ subjectAltName: { uris: ['spiffe://example.org/x'] } }),
    },
  ];
  for (const tc of cases) {
    it(tc.name, () => {
      const der = tc.der();
      const got = readCertificateConstraints(der);
      if (tc.ca === undefined) assert.equal(got.basicConstraints, undefined);
      else assert.deepEqual(got.basicConstraints, { ca: tc.ca, pathLen: tc.pathLen });
      if (tc.keyUsage === undefined) assert.equal(got.keyUsage, undefined);
      else assert.deepEqual([...(got.keyUsage ?? [])].sort(), [...tc.keyUsage].sort());
    });
  }

  it('agrees with certificates openssl made', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-constraints-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const profiles = [
      {
        exts: ['basicConstraints=critical,CA:TRUE,pathlen:2', 'keyUsage=critical,keyCertSign,cRLSign'],
        want: { ca: true, pathLen: 2, usages: ['cRLSign', 'keyCertSign'] },
      },
      {
        exts: ['basicConstraints=critical,CA:FALSE', 'keyUsage=digitalSignature,encipherOnly,decipherOnly'],
        want: { ca: false, pathLen: undefined, usages: ['decipherOnly', 'digitalSignature', 'encipherOnly'] },
      },
    ];
    for (const [i, p] of profiles.entries()) {
      const out = join(dir, `c${i}.der`);
      const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
      args.push('-keyout', join(dir, `k${i}.pem`), '-subj', '/CN=c', '-days', '1', '-outform', 'DER');
      args.push('-out', out, ...p.exts.flatMap((e) => ['-addext', e]));
      const r = spawnSync('openssl', args, { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const der = readFileSync(out);
      assert.equal(new X509Certificate(der).ca, p.want.ca);
      const got = readCertificateConstraints(der);
      assert.deepEqual(got.basicConstraints, { ca: p.want.ca, pathLen: p.want.pathLen });
      assert.deepEqual([...(got.keyUsage ?? [])].sort(), p.want.usages);
    }
  });

  const malformed: { name: string; der: () => Buffer; message: RegExp }[] = [
    {
      name: 'a repeated basicConstraints extension',
      der: () => withExtensions(bc(boolean(true), integer(5)), bc(boolean(true), integer(0))),
      message: /repeated extension/,
    },
    {
      name: 'a repeated keyUsage extension',
      der: () => withExtensions(ku(namedBits([5])), ku(namedBits([0, 5]))),
      message: /repeated extension/,
    },
    {
      name: 'a negative path length',
      der: () => withExtensions(bc(boolean(true), tlv(Tag.integer, Buffer.from([0xff])))),
      message: /negative/,
    },
    {
      name: 'a non-minimal path length',
      der: () => withExtensions(bc(boolean(true), tlv(Tag.integer, Buffer.from([0x00, 0x01])))),
      message: /non-minimal/,
    },
    {
      name: 'an empty path length',
      der: () => withExtensions(bc(boolean(true), tlv(Tag.integer, Buffer.alloc(0)))),
      message: /empty/,
    },
    {
      name: 'a path length over four octets',
      der: () => withExtensions(bc(boolean(true), integer(2n ** 40n))),
      message: /too large/,
    },
    {
      name: 'a cA flag that is not 0x00 or 0xff',
      der: () => withExtensions(bc(tlv(Tag.boolean, Buffer.from([0x01])), integer(0))),
      message: /invalid boolean/,
    },
    {
      name: 'trailing data in basicConstraints',
      der: () => withExtensions(bc(boolean(true), integer(0), integer(1))),
      message: /trailing data/,
    },
    {
      name: 'a basicConstraints value that is not a sequence',
      der: () => withExtensions(ext(ExtensionOidDer.basicConstraints, boolean(true))),
      message: /expected tag/,
    },
    {
      name: 'a keyUsage value that is not a bit string',
      der: () => withExtensions(ku(octetString(Buffer.from([0x80])))),
      message: /expected tag/,
    },
    {
      name: 'non-zero padding bits in keyUsage',
      der: () => withExtensions(ku(bitString(Buffer.from([0x81]), 1))),
      message: /padding/,
    },
    {
      name: 'an invalid critical flag',
      der: () =>
        withExtensions(ext(ExtensionOidDer.keyUsage, namedBits([5]), tlv(Tag.boolean, Buffer.from([0x02])))),
      message: /invalid boolean/,
    },
    {
      name: 'a truncated certificate',
      der: () => built({ basicConstraints: { ca: true } }).subarray(0, 40),
      message: /truncated/,
    },
  ];
  for (const tc of malformed) {
    it(`rejects ${tc.name}`, () => {
      assert.throws(
        () => readCertificateConstraints(tc.der()),
        (err: unknown) => {
          assert.ok(err instanceof DerError, String(err));
          assert.match(err.message, tc.message);
          return true;
        },
      );
    });
  }
});
