import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { caA, caB, caRsa, jwkOf } from './fixtures.js';

const td = TrustDomain.fromString('example.org');
const x509Entry = (f = caA, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  use: 'x509-svid',
  ...jwkOf(f.publicKey),
  x5c: [f.der.toString('base64')],
  ...extra,
});
const jwtEntry = (kid: string, f = caB, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  use: 'jwt-svid',
  kid,
  ...jwkOf(f.publicKey),
  ...extra,
});
const doc = (keys: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ keys, ...extra });

function rejects(json: string, message: RegExp, options: { strict?: boolean } = {}): void {
  assert.throws(() => SpiffeBundle.parse(td, json, options), {
    name: 'BundleError',
    code: 'ERR_BUNDLE_INVALID',
    message,
  });
}

describe('SpiffeBundle.parse (CONFORMANCE §1.4)', () => {
  it('BND-01: rejects a document without "keys"', () => {
    rejects('{}', /^spiffebundle: no authorities found$/);
  });

  it('BND-01: accepts {"keys":[]} as an empty bundle', () => {
    const b = SpiffeBundle.parse(td, '{"keys":[]}');
    assert.equal(b.x509Authorities().length, 0);
    assert.equal(b.jwtAuthorities().size, 0);
    assert.equal(b.sequenceNumber, undefined);
    assert.equal(b.refreshHint, undefined);
  });

  it('BND-02: reads spiffe_sequence losslessly and round-trips 2^64-1', () => {
    const json = '{"keys":[],"spiffe_sequence":18446744073709551615}';
    const b = SpiffeBundle.parse(td, json);
    assert.equal(b.sequenceNumber, 18446744073709551615n);
    assert.equal(b.marshal(), json);
    assert.equal(SpiffeBundle.parse(td, b.marshal()).sequenceNumber, 18446744073709551615n);
  });

  const badSequences = ['-1', '18446744073709551616', '1.0', '1e3', '"1"', 'true'];
  for (const s of badSequences) {
    it(`BND-02: rejects spiffe_sequence ${s}`, () => {
      rejects(
        `{"keys":[],"spiffe_sequence":${s}}`,
        /spiffebundle: unable to parse JWKS: "spiffe_sequence" (must be an integer|is out of range)/,
      );
    });
  }

  it('BND-03: reads spiffe_refresh_hint as integer seconds', () => {
    assert.equal(SpiffeBundle.parse(td, '{"keys":[],"spiffe_refresh_hint":300}').refreshHint, 300);
  });

  for (const h of ['1.5', '"300"', '-1']) {
    it(`BND-03: rejects spiffe_refresh_hint ${h}`, () => {
      rejects(
        `{"keys":[],"spiffe_refresh_hint":${h}}`,
        /"spiffe_refresh_hint" (must be an integer|is out of range)/,
      );
    });
  }

  it('BND-04: ignores extra JWK Set parameters', () => {
    assert.equal(SpiffeBundle.parse(td, '{"keys":[],"foo":1,"bar":{"x":[1]}}').x509Authorities().length, 0);
  });

  it('BND-05: skips an entry with an unknown kty, and strict mode rejects the document', () => {
    const json = doc([{ ...x509Entry(), kty: 'XYZ' }, x509Entry(caB)]);
    const b = SpiffeBundle.parse(td, json);
    assert.equal(b.x509Authorities().length, 1);
    assert.equal(b.x509Authorities()[0]?.fingerprint256, caB.cert.fingerprint256);
    rejects(json, /^spiffebundle: unable to parse JWKS: unknown json web key type "XYZ" in entry 0$/, {
      strict: true,
    });
  });

  it('BND-05: skips entries with an unknown or missing use, in both modes', () => {
    const { use: _use, ...noUse } = x509Entry();
    const json = doc([{ ...x509Entry(), use: 'enc' }, noUse, { ...jwtEntry('k'), use: 'wit-svid' }]);
    for (const strict of [false, true]) {
      const b = SpiffeBundle.parse(td, json, { strict });
      assert.equal(b.x509Authorities().length, 0);
      assert.equal(b.jwtAuthorities().size, 0);
    }
  });

  it('BND-06: skips an entry without kty, and strict mode rejects the document', () => {
    const { kty: _kty, ...noKty } = jwtEntry('k1');
    const json = doc([noKty, jwtEntry('k2')]);
    assert.deepEqual([...SpiffeBundle.parse(td, json).jwtAuthorities().keys()], ['k2']);
    rejects(json, /unknown json web key type null in entry 0/, { strict: true });
  });

  it('BND-07: treats use values case-sensitively', () => {
    const b = SpiffeBundle.parse(
      td,
      doc([x509Entry(caA, { use: 'X509-SVID' }), jwtEntry('k', caB, { use: 'JWT-SVID' })]),
    );
    assert.equal(b.x509Authorities().length, 0);
    assert.equal(b.jwtAuthorities().size, 0);
  });

  it('BND-08: a bundle with no usable keys gives empty parts that trust nothing', () => {
    const b = SpiffeBundle.parse(td, doc([x509Entry(caA, { use: 'other' })]));
    assert.equal(b.getX509BundleForTrustDomain(td).isEmpty(), true);
    assert.equal(b.getJwtBundleForTrustDomain(td).isEmpty(), true);
  });

  it('X5-19: skips x509-svid entries with an empty or missing x5c; strict mode rejects', () => {
    const { x5c: _x5c, ...noX5c } = x509Entry(caB);
    const json = doc([x509Entry(caA, { x5c: [] }), noX5c]);
    assert.equal(SpiffeBundle.parse(td, json).x509Authorities().length, 0);
    rejects(json, /^spiffebundle: expected a single certificate in x509-svid entry 0; got 0$/, {
      strict: true,
    });
  });

  it('X5-19: uses only x5c[0] when several certificates are given; strict mode rejects', () => {
    const json = doc([x509Entry(caA, { x5c: [caA.der.toString('base64'), caB.der.toString('base64')] })]);
    const b = SpiffeBundle.parse(td, json);
    assert.equal(b.x509Authorities().length, 1);
    assert.equal(b.x509Authorities()[0]?.fingerprint256, caA.cert.fingerprint256);
    rejects(json, /^spiffebundle: expected a single certificate in x509-svid entry 0; got 2$/, {
      strict: true,
    });
  });

  it('X5-19: unions all x509-svid entries, RSA and EC', () => {
    const b = SpiffeBundle.parse(td, doc([x509Entry(caA), x509Entry(caRsa), x509Entry(caA)]));
    assert.equal(b.x509Authorities().length, 2);
    assert.ok(b.x509Bundle().hasX509Authority(caRsa.cert));
  });

  it('X5-19: accepts an x509-svid entry without key parameters unless strict', () => {
    const json = doc([{ use: 'x509-svid', kty: 'EC', x5c: [caA.der.toString('base64')] }]);
    assert.equal(SpiffeBundle.parse(td, json).x509Authorities().length, 1);
    rejects(json, /missing key parameters/, { strict: true });
  });

  it('rejects an x5c certificate that does not match the JWK key parameters', () => {
    rejects(
      doc([{ ...x509Entry(caA), x5c: [caB.der.toString('base64')] }]),
      /x5c certificate does not match the JWK key/,
    );
    rejects(
      doc([jwtEntry('k', caA, { x5c: [caB.der.toString('base64')] })]),
      /x5c certificate does not match/,
    );
  });

  it('rejects url-safe base64 and garbage in x5c', () => {
    const urlSafe = caA.der.toString('base64url');
    if (/[-_]/.test(urlSafe) || urlSafe.length % 4 !== 0) {
      rejects(doc([x509Entry(caA, { x5c: [urlSafe] })]), /x5c element is not standard base64/);
    }
    rejects(doc([x509Entry(caA, { x5c: ['MAA='] })]), /cannot parse x5c certificate/);
    rejects(doc([x509Entry(caA, { x5c: 'abc' })]), /x5c of entry 0 is not an array/);
  });

  it('JWT-12: rejects a jwt-svid entry without kid', () => {
    const { kid: _kid, ...noKid } = jwtEntry('k');
    rejects(doc([noKid]), /^spiffebundle: error adding authority 0 of JWKS: keyID cannot be empty$/);
    rejects(doc([jwtEntry('')]), /keyID cannot be empty/);
  });

  it('reads jwt-svid keys by kid, the last duplicate kid winning', () => {
    const b = SpiffeBundle.parse(td, doc([jwtEntry('k1', caA), jwtEntry('k2', caRsa), jwtEntry('k1', caB)]));
    assert.deepEqual([...b.jwtAuthorities().keys()].sort(), ['k1', 'k2']);
    assert.ok(b.findJwtAuthority('k1')?.equals(caB.publicKey));
    assert.ok(b.findJwtAuthority('k2')?.equals(caRsa.publicKey));
    assert.equal(b.findJwtAuthority('k3'), undefined);
  });

  it('rejects private key material', () => {
    rejects(doc([{ ...jwtEntry('k'), ...jwkOf(caA.privateKey) }]), /contains private key material/);
  });

  const malformed: Array<{ name: string; json: string; message: RegExp }> = [
    { name: 'malformed JSON', json: '{"keys":[', message: /^spiffebundle: unable to parse JWKS: json: / },
    { name: 'a duplicate JSON key', json: '{"keys":[],"keys":[]}', message: /duplicate key "keys"/ },
    { name: 'a non-object document', json: '[]', message: /document is not a JSON object/ },
    { name: 'keys that are not an array', json: '{"keys":{}}', message: /"keys" is not an array/ },
    { name: 'an entry that is not an object', json: '{"keys":[1]}', message: /entry 0 is not a JSON object/ },
    { name: 'a byte-order mark', json: '\ufeff{"keys":[]}', message: /unexpected character/ },
    { name: 'trailing data', json: '{"keys":[]} x', message: /unexpected data after the top-level value/ },
    {
      name: 'deep nesting',
      json: `{"keys":[],"x":${'['.repeat(100)}${']'.repeat(100)}}`,
      message: /nesting too deep/,
    },
  ];
  for (const tc of malformed) {
    it(`rejects ${tc.name}`, () => rejects(tc.json, tc.message));
  }

  it('rejects bytes that are not UTF-8', () => {
    assert.throws(() => SpiffeBundle.parse(td, Buffer.from([0x7b, 0xff, 0x7d])), {
      code: 'ERR_BUNDLE_INVALID',
      message: /not valid UTF-8/,
    });
  });
});

describe('SpiffeBundle.marshal', () => {
  const bundle = SpiffeBundle.fromAuthorities(td, {
    x509Authorities: [caA.cert, caRsa.cert],
    jwtAuthorities: new Map([['kid-1', caB.publicKey]]),
    sequenceNumber: 7n,
    refreshHint: 299.2,
  });

  it('X5-18, JWT-12, BND-09: emits only defined fields per entry', () => {
    const parsed = JSON.parse(bundle.marshal()) as { keys: Array<Record<string, unknown>> } & Record<
      string,
      unknown
    >;
    assert.deepEqual(Object.keys(parsed), ['keys', 'spiffe_sequence', 'spiffe_refresh_hint']);
    assert.equal(parsed.spiffe_refresh_hint, 300, 'refresh hint is rounded up to whole seconds');
    const [ec, rsa, jwt] = parsed.keys;
    assert.deepEqual(Object.keys(ec ?? {}).sort(), ['crv', 'kty', 'use', 'x', 'x5c', 'y']);
    assert.deepEqual(Object.keys(rsa ?? {}).sort(), ['e', 'kty', 'n', 'use', 'x5c']);
    assert.deepEqual(Object.keys(jwt ?? {}).sort(), ['crv', 'kid', 'kty', 'use', 'x', 'y']);
    assert.equal(ec?.use, 'x509-svid');
    assert.equal(jwt?.use, 'jwt-svid');
    assert.equal(jwt?.kid, 'kid-1');
    const x5c = ec?.x5c as string[];
    assert.equal(x5c.length, 1);
    assert.match(x5c[0] ?? '', /^[A-Za-z0-9+/]+={0,2}$/);
    assert.ok(Buffer.from(x5c[0] ?? '', 'base64').equals(caA.der));
  });

  it('round-trips through parse, strict or not', () => {
    for (const strict of [false, true]) {
      const again = SpiffeBundle.parse(td, bundle.marshal(), { strict });
      assert.ok(again.equals(bundle));
      assert.equal(again.marshal(), bundle.marshal());
    }
  });

  it('omits sequence and refresh hint when unset', () => {
    assert.equal(SpiffeBundle.fromAuthorities(td).marshal(), '{"keys":[]}');
  });

  it('refuses out-of-range metadata with RangeError', () => {
    assert.throws(() => SpiffeBundle.fromAuthorities(td, { sequenceNumber: -1n }), RangeError);
    assert.throws(() => SpiffeBundle.fromAuthorities(td, { sequenceNumber: 1n << 64n }), RangeError);
    assert.throws(() => SpiffeBundle.fromAuthorities(td, { refreshHint: -1 }), RangeError);
    assert.throws(() => SpiffeBundle.fromAuthorities(td, { refreshHint: Number.NaN }), RangeError);
  });
});

describe('SpiffeBundle.equals and sources', () => {
  const base = SpiffeBundle.fromAuthorities(td, {
    x509Authorities: [caA.cert],
    sequenceNumber: 1n,
    refreshHint: 60,
  });

  it('detects changes of authorities, sequence number and refresh hint', () => {
    assert.ok(base.equals(SpiffeBundle.parse(td, base.marshal())));
    assert.equal(base.equals(base.withMetadata({ sequenceNumber: 2n, refreshHint: 60 })), false);
    assert.equal(base.equals(base.withMetadata({ sequenceNumber: 1n })), false);
    assert.equal(
      base.equals(
        SpiffeBundle.fromAuthorities(td, {
          x509Authorities: [caB.cert],
          sequenceNumber: 1n,
          refreshHint: 60,
        }),
      ),
      false,
    );
    assert.equal(
      base.equals(
        SpiffeBundle.fromAuthorities(TrustDomain.fromString('other.org'), {
          x509Authorities: [caA.cert],
          sequenceNumber: 1n,
          refreshHint: 60,
        }),
      ),
      false,
    );
  });

  it('serves its own trust domain only', () => {
    assert.ok(base.getX509BundleForTrustDomain(td).hasX509Authority(caA.cert));
    const other = TrustDomain.fromString('other.org');
    assert.throws(() => base.getX509BundleForTrustDomain(other), {
      code: 'ERR_BUNDLE_NOT_FOUND',
      message: 'spiffebundle: no X.509 bundle for trust domain "other.org"',
    });
    assert.throws(() => base.getJwtBundleForTrustDomain(other), {
      code: 'ERR_BUNDLE_NOT_FOUND',
      message: 'spiffebundle: no JWT bundle for trust domain "other.org"',
    });
  });
});
