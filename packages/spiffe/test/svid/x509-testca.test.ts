// Cross-check against an independent certificate encoder: chains minted by @tessera/testing's TestCa.
import assert from 'node:assert/strict';
import type { X509Certificate } from 'node:crypto';
import { describe, it } from 'node:test';
import { BundleSet, X509Bundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509SvidSync, X509Svid } from '@tessera/spiffe/svid';
import { TestCa } from '@tessera/testing';

const now = new Date('2030-01-01T00:00:00Z');
const td = TrustDomain.fromString('example.org');

describe('X509-SVIDs minted by TestCa', () => {
  for (const keyType of ['ec-p256', 'ec-p384', 'rsa-2048', 'ed25519'] as const) {
    it(`parses and verifies a ${keyType} chain through an intermediate`, () => {
      const root = TestCa.create({ trustDomain: 'example.org', keyType, now });
      const inter = root.createIntermediate({ now, permittedUris: ['example.org'] });
      const svid = inter.issueX509Svid({ now, keyType, spiffeId: 'spiffe://example.org/w' });
      assert.ok('keyDer' in svid);
      const parsed = X509Svid.parseDer(svid.chainDer, svid.keyDer);
      const bundles = new BundleSet(X509Bundle.fromAuthorities(td, [root.certificate]));
      const r = verifyX509SvidSync(parsed.certificates, bundles, { now });
      assert.equal(r.id.toString(), 'spiffe://example.org/w');
      assert.deepEqual(r.chains, [[...parsed.certificates, root.certificate]]);
    });
  }

  it('rejects TestCa defects: corrupt signature, CA leaf, intermediate without keyCertSign, URI outside constraints', () => {
    const root = TestCa.create({ trustDomain: 'example.org', now });
    const bundles = X509Bundle.fromAuthorities(td, [root.certificate]);
    const verify = (certs: X509Certificate[]) => () => verifyX509SvidSync(certs, bundles, { now });
    const cases = [
      {
        certs: root.issueX509Svid({ now, corruptSignature: true }).certificates,
        message: /signature check failed/,
      },
      {
        certs: root.issueX509Svid({ now, isCa: true }).certificates,
        message: /leaf certificate with CA flag set to true$/,
      },
      {
        certs: root.createIntermediate({ now, omitKeyCertSign: true }).issueX509Svid({ now }).certificates,
        message: /must have 'keyCertSign' set as key usage$/,
      },
      {
        certs: root.createIntermediate({ now, permittedUris: ['other.org'] }).issueX509Svid({ now })
          .certificates,
        message: /is not permitted by name constraints$/,
      },
    ];
    for (const tc of cases) {
      assert.throws(verify(tc.certs), { code: 'ERR_X509SVID_VERIFY_FAILED', message: tc.message });
    }
  });
});
