import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BundleSet, X509Bundle } from '@tessera/spiffe/bundle';
import { BundleError } from '@tessera/spiffe/errors';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509Svid, verifyX509SvidSync, type X509AuthoritySource } from '@tessera/spiffe/svid';
import {
  CA_KU,
  EKU_CLIENT,
  EKU_SERVER,
  type Issued,
  makeCert,
  makeIntermediate,
  makeLeaf,
  makeRoot,
  NOW,
  T0,
  T1,
} from './x509-fixtures.js';

/** A bundle source over a plain map: the same shape as X509Bundle / BundleSet. */
function sourceOf(bundles: Record<string, Issued[]>): X509AuthoritySource {
  return {
    getX509BundleForTrustDomain(td: TrustDomain) {
      const certs = bundles[td.name];
      if (certs === undefined) {
        throw new BundleError(
          'ERR_BUNDLE_NOT_FOUND',
          `bundle: no X.509 bundle for trust domain "${td.name}"`,
        );
      }
      return { x509Authorities: () => certs.map((c) => c.cert) };
    },
  };
}

const rootA = makeRoot('a.org');
const rootB = makeRoot('b.org');
const interA = makeIntermediate(rootA, 'a.org intermediate');
const bundles = sourceOf({ 'a.org': [rootA], 'b.org': [rootB] });
const ID = 'spiffe://a.org/workload';

function chainOf(...certs: Issued[]): X509Certificate[] {
  return certs.map((c) => c.cert);
}

const VERIFY_FAILED = 'ERR_X509SVID_VERIFY_FAILED';

async function rejects(
  chain: X509Certificate[],
  message: RegExp,
  opts: { strict?: boolean } = {},
): Promise<void> {
  await assert.rejects(verifyX509Svid(chain, bundles, { now: NOW, ...opts }), {
    code: VERIFY_FAILED,
    message,
  });
  assert.throws(() => verifyX509SvidSync(chain, bundles, { now: NOW, ...opts }), {
    code: VERIFY_FAILED,
    message,
  });
}

describe('verifyX509Svid', () => {
  it('accepts a leaf issued directly by an authority of its trust domain and returns the chain', async () => {
    const leaf = makeLeaf(rootA, ID);
    const r = await verifyX509Svid(chainOf(leaf), bundles, { now: NOW });
    assert.equal(r.id.toString(), ID);
    assert.equal(r.chains.length, 1);
    assert.deepEqual(
      r.chains[0]!.map((c) => c.fingerprint256),
      [leaf.cert.fingerprint256, rootA.cert.fingerprint256],
    );
  });

  it('accepts a leaf issued through an intermediate (sync and async agree)', async () => {
    const leaf = makeLeaf(interA, ID);
    const sync = verifyX509SvidSync(chainOf(leaf, interA), bundles, { now: NOW });
    const async_ = await verifyX509Svid(chainOf(leaf, interA), bundles, { now: NOW });
    for (const r of [sync, async_]) {
      assert.equal(r.id.toString(), ID);
      assert.deepEqual(r.chains, [[leaf.cert, interA.cert, rootA.cert]]);
    }
  });

  it('builds the path whatever the order of the intermediates', async () => {
    const inter2 = makeIntermediate(interA, 'a.org intermediate 2');
    const leaf = makeLeaf(inter2, ID);
    const r = await verifyX509Svid(chainOf(leaf, interA, inter2), bundles, { now: NOW });
    assert.deepEqual(r.chains, [[leaf.cert, inter2.cert, interA.cert, rootA.cert]]);
  });

  it('ignores the root when the peer also sends it, without a duplicate chain', async () => {
    const leaf = makeLeaf(interA, ID);
    const r = await verifyX509Svid(chainOf(leaf, interA, rootA), bundles, { now: NOW });
    assert.deepEqual(r.chains, [[leaf.cert, interA.cert, rootA.cert]]);
  });

  it('finds the right authority among several with the same subject (key rotation)', async () => {
    const oldRoot = makeRoot('rot.org');
    const newRoot = makeRoot('rot.org');
    const leaf = makeLeaf(newRoot, 'spiffe://rot.org/w');
    const r = await verifyX509Svid(chainOf(leaf), sourceOf({ 'rot.org': [oldRoot, newRoot] }), { now: NOW });
    assert.deepEqual(r.chains, [[leaf.cert, newRoot.cert]]);
  });

  it('accepts other SAN types beside the URI SAN (X5-02)', async () => {
    const leaf = makeLeaf(rootA, ID, {
      san: { uris: [ID], dns: ['a.example', 'b.example', 'c.example'], ips: ['10.0.0.1'] },
    });
    assert.equal((await verifyX509Svid(chainOf(leaf), bundles, { now: NOW })).id.toString(), ID);
  });

  it('accepts a leaf without basicConstraints as a non-CA (X5-09)', async () => {
    const leaf = makeCert({
      issuer: rootA,
      keyUsage: { bits: ['digitalSignature'] },
      san: { uris: [ID] },
    });
    assert.equal((await verifyX509Svid(chainOf(leaf), bundles, { now: NOW })).id.toString(), ID);
  });

  it('accepts a leaf without extended key usage (X5-14)', async () => {
    const leaf = makeLeaf(rootA, ID, { eku: undefined });
    assert.equal((await verifyX509Svid(chainOf(leaf), bundles, { now: NOW })).id.toString(), ID);
  });

  it('accepts an empty subject with a critical SAN extension (X5-04)', async () => {
    const leaf = makeLeaf(rootA, ID, { subject: null, san: { uris: [ID], critical: true } });
    assert.equal((await verifyX509Svid(chainOf(leaf), bundles, { now: NOW })).id.toString(), ID);
  });

  it('accepts an unknown non-critical extension', async () => {
    const leaf = makeLeaf(rootA, ID, { extra: [{ oid: '1.3.6.1.4.1.99999.1', value: Buffer.from([5, 0]) }] });
    assert.equal((await verifyX509Svid(chainOf(leaf), bundles, { now: NOW })).id.toString(), ID);
  });

  it('accepts a chain made by openssl (RSA root, EC leaf)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-x509-'));
    try {
      const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
      writeFileSync(
        join(dir, 'ext.cnf'),
        [
          '[req]',
          'distinguished_name = dn',
          '[dn]',
          '[ca]',
          'basicConstraints = critical, CA:TRUE',
          'keyUsage = critical, keyCertSign, cRLSign',
          'subjectAltName = URI:spiffe://openssl.test',
          '[leaf]',
          'basicConstraints = critical, CA:FALSE',
          'keyUsage = critical, digitalSignature, keyEncipherment, keyAgreement',
          'extendedKeyUsage = serverAuth, clientAuth',
          'subjectAltName = critical, URI:spiffe://openssl.test/service',
          '',
        ].join('\n'),
      );
      run(
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        'ca.key',
        '-out',
        'ca.pem',
        '-subj',
        '/O=openssl test CA',
        '-days',
        '30',
        '-config',
        'ext.cnf',
        '-extensions',
        'ca',
      );
      run('ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'leaf.ec');
      run('req', '-new', '-key', 'leaf.ec', '-out', 'leaf.csr', '-subj', '/O=svid');
      run(
        'x509',
        '-req',
        '-in',
        'leaf.csr',
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'leaf.pem',
        '-days',
        '7',
        '-extfile',
        'ext.cnf',
        '-extensions',
        'leaf',
      );
      const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
      const leaf = new X509Certificate(readFileSync(join(dir, 'leaf.pem')));
      const now = new Date(Date.parse(leaf.validFrom) + 3600_000);
      const src: X509AuthoritySource = {
        getX509BundleForTrustDomain: () => ({ x509Authorities: () => [ca] }),
      };
      const r = verifyX509SvidSync([leaf], src, { now });
      assert.equal(r.id.toString(), 'spiffe://openssl.test/service');
      assert.deepEqual(r.chains, [[leaf, ca]]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('uses only the bundle of the leaf trust domain from a real BundleSet (X5-16)', async () => {
    const set = new BundleSet(
      X509Bundle.fromAuthorities(TrustDomain.fromString('a.org'), [rootA.cert]),
      X509Bundle.fromAuthorities(TrustDomain.fromString('b.org'), [rootB.cert]),
    );
    const good = makeLeaf(interA, ID);
    assert.deepEqual((await verifyX509Svid(chainOf(good, interA), set, { now: NOW })).chains, [
      [good.cert, interA.cert, rootA.cert],
    ]);
    await assert.rejects(verifyX509Svid(chainOf(makeLeaf(rootB, ID)), set, { now: NOW }), {
      code: VERIFY_FAILED,
      message: /^x509svid: could not verify leaf certificate: certificate signed by unknown authority$/,
    });
    const bundleA = X509Bundle.fromAuthorities(TrustDomain.fromString('a.org'), [rootA.cert]);
    await assert.rejects(
      verifyX509Svid(chainOf(makeLeaf(rootB, 'spiffe://b.org/w')), bundleA, { now: NOW }),
      {
        code: VERIFY_FAILED,
        message: /^x509svid: could not get X509 bundle: /,
      },
    );
  });

  it('rejects an empty chain', async () => {
    await rejects([], /^x509svid: empty certificates chain$/);
  });

  it('rejects when the bundle source has no bundle for the leaf trust domain', async () => {
    const other = makeRoot('c.org');
    const leaf = makeLeaf(other, 'spiffe://c.org/w');
    await rejects(
      chainOf(leaf),
      /^x509svid: could not get X509 bundle: bundle: no X\.509 bundle for trust domain "c\.org"$/,
    );
  });

  describe('leaf profile', () => {
    const cases: { name: string; leaf: () => Issued; message: RegExp }[] = [
      {
        name: 'rejects a leaf without URI SAN (X5-01)',
        leaf: () => makeLeaf(rootA, ID, { san: { dns: ['a.example'] } }),
        message: /^x509svid: could not get leaf SPIFFE ID: certificate contains no URI SAN$/,
      },
      {
        name: 'rejects a leaf without SAN extension (X5-01)',
        leaf: () => makeLeaf(rootA, ID, { san: undefined }),
        message: /^x509svid: could not get leaf SPIFFE ID: certificate contains no URI SAN$/,
      },
      {
        name: 'rejects a leaf with two identical URI SANs (X5-01)',
        leaf: () => makeLeaf(rootA, ID, { san: { uris: [ID, ID] } }),
        message: /^x509svid: could not get leaf SPIFFE ID: certificate contains more than one URI SAN$/,
      },
      {
        name: 'rejects a leaf with a SPIFFE and a non-SPIFFE URI SAN (X5-01)',
        leaf: () => makeLeaf(rootA, ID, { san: { uris: [ID, 'https://a.org/x'] } }),
        message: /^x509svid: could not get leaf SPIFFE ID: certificate contains more than one URI SAN$/,
      },
      {
        name: 'rejects a non-spiffe URI SAN (X5-17)',
        leaf: () => makeLeaf(rootA, 'https://a.org/x', {}),
        message: /^x509svid: could not get leaf SPIFFE ID: spiffeid: .*scheme/,
      },
      {
        name: 'rejects a leaf whose SPIFFE ID has a root path (X5-03, divergence from go-spiffe Verify)',
        leaf: () => makeLeaf(rootA, 'spiffe://a.org'),
        message: /^x509svid: leaf certificate SPIFFE ID must have a non-root path: "spiffe:\/\/a\.org"$/,
      },
      {
        name: 'rejects a leaf marked CA (X5-07, X5-09)',
        leaf: () =>
          makeLeaf(rootA, ID, { basicConstraints: { cA: true }, keyUsage: { bits: ['digitalSignature'] } }),
        message: /^x509svid: leaf certificate with CA flag set to true$/,
      },
      {
        name: 'rejects a leaf with keyCertSign (X5-13)',
        leaf: () => makeLeaf(rootA, ID, { keyUsage: { bits: ['digitalSignature', 'keyCertSign'] } }),
        message: /^x509svid: leaf certificate with KeyCertSign key usage$/,
      },
      {
        name: 'rejects a leaf with cRLSign (X5-13)',
        leaf: () => makeLeaf(rootA, ID, { keyUsage: { bits: ['digitalSignature', 'cRLSign'] } }),
        message: /^x509svid: leaf certificate with KeyCrlSign key usage$/,
      },
      {
        name: 'rejects a leaf without keyUsage (X5-11)',
        leaf: () => makeLeaf(rootA, ID, { keyUsage: undefined }),
        message: /^x509svid: leaf certificate without key usage extension$/,
      },
      {
        name: 'rejects a leaf without digitalSignature (X5-13)',
        leaf: () => makeLeaf(rootA, ID, { keyUsage: { bits: ['keyEncipherment'] } }),
        message: /^x509svid: leaf certificate without DigitalSignature key usage$/,
      },
      {
        name: 'rejects a leaf with a non-critical keyUsage in strict mode (X5-11)',
        leaf: () => makeLeaf(rootA, ID, { keyUsage: { bits: ['digitalSignature'], critical: false } }),
        message: /^x509svid: leaf certificate key usage extension is not critical$/,
      },
      {
        name: 'rejects a leaf whose EKU is serverAuth only in strict mode (X5-14)',
        leaf: () => makeLeaf(rootA, ID, { eku: [EKU_SERVER] }),
        message: /^x509svid: leaf certificate extended key usage lacks clientAuth$/,
      },
      {
        name: 'rejects a leaf whose EKU has neither serverAuth nor clientAuth (X5-14)',
        leaf: () => makeLeaf(rootA, ID, { eku: ['1.3.6.1.5.5.7.3.3'] }),
        message: /^x509svid: leaf certificate extended key usage lacks serverAuth and clientAuth$/,
      },
      {
        name: 'rejects an empty subject with a non-critical SAN extension (X5-04)',
        leaf: () => makeLeaf(rootA, ID, { subject: null }),
        message:
          /^x509svid: leaf certificate with empty subject must have a critical subject alternative name extension$/,
      },
      {
        name: 'rejects a leaf with an unknown critical extension',
        leaf: () =>
          makeLeaf(rootA, ID, {
            extra: [{ oid: '1.3.6.1.4.1.99999.1', critical: true, value: Buffer.from([5, 0]) }],
          }),
        message: /^x509svid: leaf certificate has unhandled critical extension 1\.3\.6\.1\.4\.1\.99999\.1$/,
      },
    ];
    for (const tc of cases) {
      it(tc.name, async () => {
        await rejects(chainOf(tc.leaf()), tc.message);
      });
    }

    it('accepts a non-critical keyUsage and a serverAuth-only EKU with strict: false', async () => {
      const leaf = makeLeaf(rootA, ID, {
        keyUsage: { bits: ['digitalSignature'], critical: false },
        eku: [EKU_SERVER],
      });
      const r = await verifyX509Svid(chainOf(leaf), bundles, { now: NOW, strict: false });
      assert.equal(r.id.toString(), ID);
    });

    it('still rejects a missing keyUsage and a root path with strict: false', async () => {
      await rejects(chainOf(makeLeaf(rootA, ID, { keyUsage: undefined })), /without key usage extension/, {
        strict: false,
      });
      await rejects(chainOf(makeLeaf(rootA, 'spiffe://a.org')), /non-root path/, { strict: false });
    });

    it('accepts an EKU listing serverAuth, clientAuth and others', async () => {
      const leaf = makeLeaf(rootA, ID, { eku: ['1.3.6.1.5.5.7.3.3', EKU_CLIENT, EKU_SERVER] });
      assert.equal((await verifyX509Svid(chainOf(leaf), bundles, { now: NOW })).id.toString(), ID);
    });
  });

  describe('path validation', () => {
    const day = 24 * 3600_000;
    const cases: { name: string; chain: () => Issued[]; message: RegExp }[] = [
      {
        name: 'rejects a leaf of a.org signed by the b.org CA while both bundles are loaded (X5-16)',
        chain: () => [makeLeaf(rootB, ID)],
        message: /^x509svid: could not verify leaf certificate: certificate signed by unknown authority$/,
      },
      {
        name: 'rejects a leaf of a.org signed by a b.org key under an a.org-looking name (X5-16)',
        chain: () => [makeLeaf({ ...rootB, subject: rootA.subject }, ID)],
        message:
          /^x509svid: could not verify leaf certificate: certificate signed by unknown authority \(signature check failed/,
      },
      {
        name: 'rejects an expired leaf (X5-15)',
        chain: () => [makeLeaf(rootA, ID, { notAfter: new Date(NOW.getTime() - day) })],
        message:
          /^x509svid: could not verify leaf certificate: certificate has expired or is not yet valid: current time 2025-06-01T00:00:00Z is after 2025-05-31T00:00:00Z$/,
      },
      {
        name: 'rejects a not-yet-valid leaf (X5-15)',
        chain: () => [makeLeaf(rootA, ID, { notBefore: new Date(NOW.getTime() + day) })],
        message:
          /^x509svid: could not verify leaf certificate: certificate has expired or is not yet valid: current time 2025-06-01T00:00:00Z is before 2025-06-02T00:00:00Z$/,
      },
      {
        name: 'rejects an expired intermediate (X5-15)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'old intermediate', {
            notAfter: new Date(NOW.getTime() - day),
          });
          return [makeLeaf(inter, ID), inter];
        },
        message:
          /^x509svid: could not verify leaf certificate: certificate has expired or is not yet valid: current time .* is after /,
      },
      {
        name: 'rejects a not-yet-valid intermediate (X5-15)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'future intermediate', {
            notBefore: new Date(NOW.getTime() + day),
          });
          return [makeLeaf(inter, ID), inter];
        },
        message:
          /^x509svid: could not verify leaf certificate: certificate has expired or is not yet valid: current time .* is before /,
      },
      {
        name: 'rejects a broken leaf signature (X5-15)',
        chain: () => [makeLeaf(rootA, ID, { corruptSignature: true })],
        message:
          /^x509svid: could not verify leaf certificate: certificate signed by unknown authority \(signature check failed against candidate authority "CN=a\.org"\)$/,
      },
      {
        name: 'rejects a broken intermediate signature (X5-15)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'bad intermediate', { corruptSignature: true });
          return [makeLeaf(inter, ID), inter];
        },
        message:
          /certificate signed by unknown authority \(signature check failed against candidate authority "CN=a\.org"\)$/,
      },
      {
        name: 'rejects an intermediate that is not a CA (X5-05)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'not a ca', { basicConstraints: { cA: false } });
          return [makeLeaf(inter, ID), inter];
        },
        message:
          /^x509svid: could not verify leaf certificate: signing certificate "CN=not a ca" must have CA flag set to true$/,
      },
      {
        name: 'rejects an intermediate without basicConstraints (X5-05)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'no bc', { basicConstraints: undefined });
          return [makeLeaf(inter, ID), inter];
        },
        message: /signing certificate "CN=no bc" must have CA flag set to true$/,
      },
      {
        name: 'rejects an intermediate lacking keyCertSign (X5-05)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'no kcs', {
            keyUsage: { bits: ['cRLSign', 'digitalSignature'] },
          });
          return [makeLeaf(inter, ID), inter];
        },
        message: /signing certificate "CN=no kcs" must have 'keyCertSign' set as key usage$/,
      },
      {
        name: 'rejects an intermediate without keyUsage (X5-05)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'no ku', { keyUsage: undefined });
          return [makeLeaf(inter, ID), inter];
        },
        message: /signing certificate "CN=no ku" must have 'keyCertSign' set as key usage$/,
      },
      {
        name: 'rejects an intermediate with an unknown critical extension',
        chain: () => {
          const inter = makeIntermediate(rootA, 'odd', {
            extra: [{ oid: '2.5.29.32', critical: true, value: Buffer.from('3000', 'hex') }],
          });
          return [makeLeaf(inter, ID), inter];
        },
        message: /signing certificate "CN=odd" has unhandled critical extension 2\.5\.29\.32$/,
      },
      {
        name: 'rejects an intermediate missing from the presented chain',
        chain: () => [makeLeaf(interA, ID)],
        message: /^x509svid: could not verify leaf certificate: certificate signed by unknown authority$/,
      },
      {
        name: 'rejects a chain given in the wrong order [intermediate, leaf] (X5-20)',
        chain: () => [interA, makeLeaf(interA, ID)],
        message: /^x509svid: could not get leaf SPIFFE ID: certificate contains no URI SAN$/,
      },
      {
        name: 'rejects a chain in the wrong order when the intermediate carries a trust domain ID (X5-20)',
        chain: () => {
          const inter = makeIntermediate(rootA, 'with id', { san: { uris: ['spiffe://a.org'] } });
          return [inter, makeLeaf(inter, ID)];
        },
        message: /^x509svid: leaf certificate with CA flag set to true$/,
      },
    ];
    for (const tc of cases) {
      it(tc.name, async () => {
        await rejects(chainOf(...tc.chain()), tc.message);
      });
    }

    it('rejects an expired root', async () => {
      const root = makeRoot('exp.org', { notAfter: new Date(NOW.getTime() - day) });
      const leaf = makeLeaf(root, 'spiffe://exp.org/w');
      const src = sourceOf({ 'exp.org': [root] });
      assert.throws(() => verifyX509SvidSync(chainOf(leaf), src, { now: NOW }), {
        code: VERIFY_FAILED,
        message: /could not verify leaf certificate: certificate has expired or is not yet valid/,
      });
    });

    it('rejects a root with pathLen=0 above an intermediate, and accepts pathLen=1 (X5-08)', () => {
      for (const [pathLen, ok] of [
        [0, false],
        [1, true],
      ] as const) {
        const root = makeRoot('pl.org', { basicConstraints: { cA: true, pathLen } });
        const inter = makeIntermediate(root, 'pl intermediate');
        const leaf = makeLeaf(inter, 'spiffe://pl.org/w');
        const src = sourceOf({ 'pl.org': [root] });
        if (ok) {
          assert.equal(verifyX509SvidSync(chainOf(leaf, inter), src, { now: NOW }).chains.length, 1);
        } else {
          assert.throws(() => verifyX509SvidSync(chainOf(leaf, inter), src, { now: NOW }), {
            code: VERIFY_FAILED,
            message:
              /^x509svid: could not verify leaf certificate: signing certificate "CN=pl\.org" path length constraint 0 exceeded$/,
          });
        }
      }
    });

    it('accepts an intermediate with pathLen=0 directly above the leaf', () => {
      const inter = makeIntermediate(rootA, 'pl0', { basicConstraints: { cA: true, pathLen: 0 } });
      const leaf = makeLeaf(inter, ID);
      assert.equal(verifyX509SvidSync(chainOf(leaf, inter), bundles, { now: NOW }).chains.length, 1);
    });

    it('uses the given time, not the wall clock', () => {
      const leaf = makeLeaf(rootA, ID);
      assert.throws(
        () => verifyX509SvidSync(chainOf(leaf), bundles, { now: new Date(T1.getTime() + 1000) }),
        {
          code: VERIFY_FAILED,
          message: /is after 2034-01-01T00:00:00Z$/,
        },
      );
      assert.equal(verifyX509SvidSync(chainOf(leaf), bundles, { now: T0 }).id.toString(), ID);
    });
  });

  describe('name constraints (X5-10)', () => {
    const root = makeRoot('evil.org');
    const src = sourceOf({ 'evil.org': [root], 'example.org': [root], 'sub.example.org': [root] });
    const constrained = (nc: Parameters<typeof makeIntermediate>[2]) =>
      makeIntermediate(root, 'constrained', nc);
    const cases: {
      name: string;
      inter: Issued;
      id: string;
      dns?: string[];
      ips?: string[];
      error?: RegExp;
    }[] = [
      {
        name: 'accepts a leaf inside a permitted URI host',
        inter: constrained({ nameConstraints: { permittedUris: ['example.org'] } }),
        id: 'spiffe://example.org/x',
      },
      {
        name: 'rejects a leaf outside a permitted URI host',
        inter: constrained({ nameConstraints: { permittedUris: ['example.org'] } }),
        id: 'spiffe://evil.org/x',
        error:
          /^x509svid: could not verify leaf certificate: URI SAN "spiffe:\/\/evil\.org\/x" is not permitted by name constraints$/,
      },
      {
        name: 'rejects a subdomain when the permitted URI host has no leading dot',
        inter: constrained({ nameConstraints: { permittedUris: ['example.org'] } }),
        id: 'spiffe://sub.example.org/x',
        error: /URI SAN "spiffe:\/\/sub\.example\.org\/x" is not permitted by name constraints$/,
      },
      {
        name: 'rejects a leaf whose URI host is excluded',
        inter: constrained({ nameConstraints: { excludedUris: ['evil.org'] } }),
        id: 'spiffe://evil.org/x',
        error: /URI SAN "spiffe:\/\/evil\.org\/x" is excluded by name constraints$/,
      },
      {
        name: 'accepts a DNS SAN inside a permitted DNS subtree',
        inter: constrained({ nameConstraints: { permittedDns: ['example.com'] } }),
        id: 'spiffe://evil.org/x',
        dns: ['api.example.com'],
      },
      {
        name: 'rejects a DNS SAN outside a permitted DNS subtree',
        inter: constrained({ nameConstraints: { permittedDns: ['example.com'] } }),
        id: 'spiffe://evil.org/x',
        dns: ['notexample.com'],
        error: /DNS SAN "notexample\.com" is not permitted by name constraints$/,
      },
      {
        name: 'rejects an excluded DNS SAN',
        inter: constrained({ nameConstraints: { excludedDns: ['internal.example.com'] } }),
        id: 'spiffe://evil.org/x',
        dns: ['db.internal.example.com'],
        error: /DNS SAN "db\.internal\.example\.com" is excluded by name constraints$/,
      },
      {
        name: 'accepts an IP SAN inside a permitted range',
        inter: constrained({ nameConstraints: { permittedIps: ['10.0.0.0/8'] } }),
        id: 'spiffe://evil.org/x',
        ips: ['10.1.2.3'],
      },
      {
        name: 'rejects an IP SAN outside a permitted range',
        inter: constrained({ nameConstraints: { permittedIps: ['10.0.0.0/8'] } }),
        id: 'spiffe://evil.org/x',
        ips: ['192.168.0.1'],
        error: /IP SAN 192\.168\.0\.1 is not permitted by name constraints$/,
      },
      {
        name: 'fails closed on a constraint kind it cannot evaluate (directoryName)',
        inter: constrained({ nameConstraints: { permittedDirectoryName: 'workloads' } }),
        id: 'spiffe://evil.org/x',
        error: /name constraints of kind directoryName cannot be evaluated$/,
      },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const leaf = makeLeaf(tc.inter, tc.id, {
          san: { uris: [tc.id], dns: tc.dns ?? [], ips: tc.ips ?? [] },
        });
        const run = () => verifyX509SvidSync(chainOf(leaf, tc.inter), src, { now: NOW });
        if (tc.error === undefined) assert.equal(run().id.toString(), tc.id);
        else assert.throws(run, { code: VERIFY_FAILED, message: tc.error });
      });
    }

    it('fails closed on a subtree with a maximum distance', () => {
      const inter = makeIntermediate(root, 'max', {
        extra: [
          { oid: '2.5.29.30', critical: true, value: Buffer.from('300ca00a30088603612e6f810105', 'hex') },
        ],
      });
      const leaf = makeLeaf(inter, 'spiffe://evil.org/x');
      assert.throws(() => verifyX509SvidSync(chainOf(leaf, inter), src, { now: NOW }), {
        code: VERIFY_FAILED,
        message:
          /^x509svid: could not verify leaf certificate: name constraints of kind subtree with minimum or maximum cannot be evaluated$/,
      });
    });

    it('enforces name constraints on a root too', () => {
      const ncRoot = makeRoot('nc.org', { nameConstraints: { permittedUris: ['other.org'] } });
      const leaf = makeLeaf(ncRoot, 'spiffe://nc.org/w');
      assert.throws(() => verifyX509SvidSync(chainOf(leaf), sourceOf({ 'nc.org': [ncRoot] }), { now: NOW }), {
        code: VERIFY_FAILED,
        message: /URI SAN "spiffe:\/\/nc\.org\/w" is not permitted by name constraints$/,
      });
    });
  });

  describe('malformed input', () => {
    it('rejects a leaf whose extensions are malformed DER', () => {
      // keyUsage value that is not a BIT STRING.
      const leaf = makeLeaf(rootA, ID, {
        keyUsage: undefined,
        extra: [{ oid: '2.5.29.15', critical: true, value: Buffer.from('0400', 'hex') }],
      });
      assert.throws(() => verifyX509SvidSync(chainOf(leaf), bundles, { now: NOW }), {
        code: VERIFY_FAILED,
        message: /^x509svid: malformed certificate: key usage has an unexpected tag 0x4$/,
      });
    });

    it('rejects a leaf with a duplicated extension', () => {
      const leaf = makeLeaf(rootA, ID, {
        extra: [{ oid: '2.5.29.15', critical: true, value: Buffer.from('03020780', 'hex') }],
      });
      assert.throws(() => verifyX509SvidSync(chainOf(leaf), bundles, { now: NOW }), {
        code: VERIFY_FAILED,
        message: /^x509svid: malformed certificate: duplicate extension 2\.5\.29\.15$/,
      });
    });

    it('throws TypeError on programmer misuse', () => {
      const leaf = makeLeaf(rootA, ID);
      assert.throws(() => verifyX509SvidSync('x' as never, bundles), TypeError);
      assert.throws(() => verifyX509SvidSync([leaf.der] as never, bundles), TypeError);
      assert.throws(() => verifyX509SvidSync(chainOf(leaf), undefined as never), /bundleSource is required/);
      assert.throws(
        () => verifyX509SvidSync(chainOf(leaf), bundles, { now: new Date(Number.NaN) }),
        TypeError,
      );
    });
  });

  it('accepts a CA with keyCertSign and cRLSign (X5-12)', () => {
    const inter = makeIntermediate(rootA, 'crl', { keyUsage: CA_KU });
    const leaf = makeLeaf(inter, ID);
    assert.equal(verifyX509SvidSync(chainOf(leaf, inter), bundles, { now: NOW }).chains.length, 1);
  });
});
