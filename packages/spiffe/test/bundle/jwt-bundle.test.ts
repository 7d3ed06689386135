import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JwtBundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { caA, caB, caRsa, jwkOf } from './fixtures.js';

const td = TrustDomain.fromString('example.org');
const key = (kid: string, f = caA, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  kid,
  ...jwkOf(f.publicKey),
  ...extra,
});
const jwks = (keys: unknown[]) => JSON.stringify({ keys });

describe('JwtBundle', () => {
  it('takes every key whatever its use, keyed by kid', () => {
    const b = JwtBundle.parse(
      td,
      jwks([key('a', caA), key('b', caRsa, { use: 'x509-svid' }), key('c', caB, { use: 'jwt-svid' })]),
    );
    assert.deepEqual([...b.jwtAuthorities().keys()], ['a', 'b', 'c']);
    assert.ok(b.findJwtAuthority('b')?.equals(caRsa.publicKey));
    assert.ok(b.hasJwtAuthority('a'));
  });

  it('requires a kid on every key', () => {
    assert.throws(() => JwtBundle.parse(td, jwks([key('a'), jwkOf(caB.publicKey)])), {
      name: 'BundleError',
      code: 'ERR_BUNDLE_INVALID',
      message: 'jwtbundle: error adding authority 1 of JWKS: keyID cannot be empty',
    });
  });

  it('keeps the last key of a duplicated kid', () => {
    const b = JwtBundle.parse(td, jwks([key('a', caA), key('a', caB)]));
    assert.ok(b.findJwtAuthority('a')?.equals(caB.publicKey));
  });

  it('skips keys with an unknown kty unless strict', () => {
    const doc = jwks([key('a', caA, { kty: 'oct', k: 'c2VjcmV0' }), key('b', caB)]);
    assert.deepEqual([...JwtBundle.parse(td, doc).jwtAuthorities().keys()], ['b']);
    assert.throws(() => JwtBundle.parse(td, doc, { strict: true }), {
      code: 'ERR_BUNDLE_INVALID',
      message: /^jwtbundle: error adding authority 0 of JWKS: unknown json web key type "oct"$/,
    });
  });

  const bad: Array<{ name: string; doc: string; message: RegExp }> = [
    {
      name: 'a document without keys',
      doc: '{}',
      message: /^jwtbundle: unable to parse JWKS: "keys" is missing$/,
    },
    { name: 'malformed JSON', doc: '{"keys":', message: /^jwtbundle: unable to parse JWKS: json: / },
    {
      name: 'private key material',
      doc: jwks([{ ...jwkOf(caA.privateKey), kid: 'a' }]),
      message: /private key material/,
    },
    { name: 'invalid key parameters', doc: jwks([key('a', caA, { x: 'AAAA' })]), message: /invalid key/ },
    {
      name: 'missing key parameters',
      doc: jwks([{ kty: 'EC', kid: 'a', crv: 'P-256' }]),
      message: /missing or invalid "x"/,
    },
    {
      name: 'an x5c that does not hold the key',
      doc: jwks([key('a', caA, { x5c: [caB.der.toString('base64')] })]),
      message: /x5c certificate does not match the JWK key/,
    },
  ];
  for (const tc of bad) {
    it(`rejects ${tc.name}`, () => {
      assert.throws(() => JwtBundle.parse(td, tc.doc), { code: 'ERR_BUNDLE_INVALID', message: tc.message });
    });
  }

  it('accepts an x5c that holds the key', () => {
    const b = JwtBundle.parse(td, jwks([key('a', caA, { x5c: [caA.der.toString('base64')] })]));
    assert.ok(b.findJwtAuthority('a')?.equals(caA.publicKey));
  });

  it('marshals to a JWKS that parses back to an equal bundle', () => {
    const b = JwtBundle.fromAuthorities(
      td,
      new Map([
        ['ec', caA.publicKey],
        ['rsa', caRsa.publicKey],
      ]),
    );
    const doc = JSON.parse(b.marshal()) as { keys: Array<Record<string, unknown>> };
    assert.deepEqual(
      doc.keys.map((k) => k.kid),
      ['ec', 'rsa'],
    );
    assert.ok(JwtBundle.parse(td, b.marshal()).equals(b));
    assert.equal(b.equals(JwtBundle.fromAuthorities(td, new Map([['ec', caB.publicKey]]))), false);
  });

  it('refuses private keys and empty kids in fromAuthorities with TypeError', () => {
    assert.throws(() => JwtBundle.fromAuthorities(td, new Map([['a', caA.privateKey]])), TypeError);
    assert.throws(() => JwtBundle.fromAuthorities(td, new Map([['', caA.publicKey]])), TypeError);
  });

  it('is a source of itself only', () => {
    const b = JwtBundle.fromAuthorities(td, new Map());
    assert.equal(b.getJwtBundleForTrustDomain(TrustDomain.fromString('example.org')), b);
    assert.throws(() => b.getJwtBundleForTrustDomain(TrustDomain.fromString('other.org')), {
      code: 'ERR_BUNDLE_NOT_FOUND',
      message: 'jwtbundle: no JWT bundle found for trust domain "other.org"',
    });
  });
});
