import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BundleSet,
  JwtBundle,
  marshalBundleMap,
  parseBundleMap,
  SpiffeBundle,
  X509Bundle,
} from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { caA, caB } from './fixtures.js';

const a = TrustDomain.fromString('a.org');
const b = TrustDomain.fromString('b.org');
const c = TrustDomain.fromString('c.org');

describe('BundleSet', () => {
  it('keeps an X.509 part and a JWT part per trust domain', () => {
    const set = new BundleSet(
      X509Bundle.fromAuthorities(b, [caB.cert]),
      X509Bundle.fromAuthorities(a, [caA.cert]),
      JwtBundle.fromAuthorities(a, new Map([['k', caA.publicKey]])),
    );
    assert.equal(set.size, 2);
    assert.deepEqual(
      set.trustDomains().map((t) => t.name),
      ['a.org', 'b.org'],
    );
    assert.ok(set.getX509BundleForTrustDomain(a).hasX509Authority(caA.cert));
    assert.ok(set.getJwtBundleForTrustDomain(a).findJwtAuthority('k'));
    assert.equal(set.getJwtBundle(b), undefined);
    assert.equal(set.x509Bundles().length, 2);
    assert.equal(set.jwtBundles().length, 1);
    const composed = set.get(a);
    assert.ok(composed?.x509Bundle().hasX509Authority(caA.cert));
    assert.ok(composed?.findJwtAuthority('k'));
  });

  it('X5-16, BND-10: serves only the bundle of the asked trust domain', () => {
    const set = new BundleSet(
      X509Bundle.fromAuthorities(a, [caA.cert]),
      JwtBundle.fromAuthorities(b, new Map()),
    );
    assert.equal(set.getX509BundleForTrustDomain(a).hasX509Authority(caA.cert), true);
    assert.throws(() => set.getX509BundleForTrustDomain(b), {
      name: 'BundleError',
      code: 'ERR_BUNDLE_NOT_FOUND',
      message: 'x509bundle: no X.509 bundle for trust domain "b.org"',
    });
    assert.throws(() => set.getJwtBundleForTrustDomain(c), {
      code: 'ERR_BUNDLE_NOT_FOUND',
      message: 'jwtbundle: no JWT bundle for trust domain "c.org"',
    });
  });

  it('replaces parts on add and forgets a trust domain on remove', () => {
    const set = new BundleSet(
      SpiffeBundle.fromAuthorities(a, { x509Authorities: [caA.cert], sequenceNumber: 3n }),
    );
    assert.equal(set.get(a)?.sequenceNumber, 3n);
    set.add(X509Bundle.fromAuthorities(a, [caB.cert]));
    assert.ok(set.getX509BundleForTrustDomain(a).hasX509Authority(caB.cert));
    assert.equal(set.getX509BundleForTrustDomain(a).hasX509Authority(caA.cert), false);
    assert.equal(set.get(a)?.sequenceNumber, undefined);
    assert.ok(set.has(a));
    assert.equal(set.remove(a), true);
    assert.equal(set.has(a), false);
    assert.equal(set.remove(a), false);
  });

  it('compares sets by content', () => {
    const one = new BundleSet(X509Bundle.fromAuthorities(a, [caA.cert]));
    assert.ok(one.equals(new BundleSet(X509Bundle.fromAuthorities(a, [caA.cert]))));
    assert.equal(one.equals(new BundleSet(X509Bundle.fromAuthorities(a, [caB.cert]))), false);
    assert.equal(one.equals(new BundleSet()), false);
  });
});

describe('bundle maps (CONFORMANCE §1.4 BND-11..14)', () => {
  const inner = SpiffeBundle.fromAuthorities(a, {
    x509Authorities: [caA.cert],
    sequenceNumber: 5n,
  }).marshal();

  it('BND-11: accepts an empty trust_domains object and rejects a missing one', () => {
    assert.equal(parseBundleMap('{"trust_domains":{}}').size, 0);
    assert.throws(() => parseBundleMap('{}'), {
      code: 'ERR_BUNDLE_INVALID',
      message: 'bundlemap: "trust_domains" is missing',
    });
    assert.throws(() => parseBundleMap('{"trust_domains":[]}'), {
      message: /"trust_domains" is not a JSON object/,
    });
  });

  it('BND-12: rejects duplicate trust domain keys', () => {
    assert.throws(() => parseBundleMap(`{"trust_domains":{"a.org":${inner},"a.org":${inner}}}`), {
      code: 'ERR_BUNDLE_INVALID',
      message: /^bundlemap: unable to parse bundle map: json: duplicate key "a.org" at offset \d+$/,
    });
  });

  it('BND-13: keeps an inner refresh hint on the bundle but never marshals one into a map', () => {
    const map = parseBundleMap('{"trust_domains":{"a.org":{"keys":[],"spiffe_refresh_hint":1}}}');
    assert.equal(map.get('a.org')?.refreshHint, 1);
    assert.equal(marshalBundleMap(map.values()), '{"trust_domains":{"a.org":{"keys":[]}}}');
  });

  it('BND-14: a parsed map is the full new state (absent trust domains are absent)', () => {
    const first = new BundleSet(
      ...parseBundleMap(`{"trust_domains":{"a.org":${inner},"b.org":{"keys":[]}}}`).values(),
    );
    assert.equal(first.size, 2);
    const next = new BundleSet(...parseBundleMap(`{"trust_domains":{"a.org":${inner}}}`).values());
    assert.equal(next.has(b), false);
    assert.equal(next.size, 1);
  });

  it('parses bundles under their trust domain and round-trips', () => {
    const json = `{"trust_domains":{"b.org":{"keys":[]},"a.org":${inner}}}`;
    const map = parseBundleMap(json);
    assert.deepEqual([...map.keys()], ['b.org', 'a.org']);
    assert.ok(map.get('a.org')?.trustDomain.equals(a));
    assert.equal(map.get('a.org')?.sequenceNumber, 5n);
    const again = parseBundleMap(marshalBundleMap(map.values()));
    assert.deepEqual([...again.keys()], ['a.org', 'b.org']);
    assert.ok(again.get('a.org')?.equals(map.get('a.org')));
  });

  const bad: Array<{ name: string; json: string; message: RegExp }> = [
    {
      name: 'an upper-case trust domain',
      json: '{"trust_domains":{"A.org":{"keys":[]}}}',
      message: /^bundlemap: invalid trust domain "A.org": spiffeid: trust domain characters/,
    },
    {
      name: 'a SPIFFE ID instead of a name',
      json: '{"trust_domains":{"spiffe://a.org":{"keys":[]}}}',
      message: /invalid trust domain "spiffe:\/\/a.org": expected a bare name/,
    },
    {
      name: 'an invalid inner bundle',
      json: '{"trust_domains":{"a.org":{}}}',
      message: /^bundlemap: invalid bundle for trust domain "a.org": spiffebundle: no authorities found$/,
    },
  ];
  for (const tc of bad) {
    it(`rejects ${tc.name}`, () => {
      assert.throws(() => parseBundleMap(tc.json), { code: 'ERR_BUNDLE_INVALID', message: tc.message });
    });
  }
});
