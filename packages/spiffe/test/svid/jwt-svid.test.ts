import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import type { JwtBundle, JwtBundleSource } from '@tessera/spiffe/bundle';
import { BundleError, JwtSvidError, type SpiffeErrorCode } from '@tessera/spiffe/errors';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import { JWT_SVID_ALGORITHMS, JwtSvid } from '@tessera/spiffe/svid';
import { JWT_TEST_NOW, type MintOptions, TestJwtAuthority } from '@tessera/testing';

const NOW = JWT_TEST_NOW;
const NOW_S = Math.floor(NOW.getTime() / 1000);
const ca = new TestJwtAuthority('example.org');
const AUD = ca.defaultAudience();
const SUB = 'spiffe://example.org/workload';

/** A bundle source over a fixed set of bundles that records the trust domains it is asked for. */
class RecordingSource implements JwtBundleSource {
  readonly asked: string[] = [];
  readonly #bundles: Map<string, JwtBundle>;
  constructor(...bundles: JwtBundle[]) {
    this.#bundles = new Map(bundles.map((b) => [b.trustDomain.name, b]));
  }
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    this.asked.push(td.name);
    const b = this.#bundles.get(td.name);
    if (b === undefined) {
      throw new BundleError('ERR_BUNDLE_NOT_FOUND', `bundle: no bundle for trust domain "${td.name}"`);
    }
    return b;
  }
}

const bundle = ca.jwtBundle();

function validate(token: string, audience: readonly string[] = [AUD], source: JwtBundleSource = bundle) {
  return JwtSvid.parseAndValidateSync(token, source, audience, { now: NOW });
}

function insecure(token: string, audience: readonly string[] = [AUD]) {
  return JwtSvid.parseInsecure(token, audience, { now: NOW });
}

function assertJwtError(fn: () => unknown, code: SpiffeErrorCode, message: RegExp): JwtSvidError {
  let caught: unknown;
  assert.throws(fn, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof JwtSvidError, `expected a JwtSvidError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.match(caught.message, message);
  assert.match(caught.message, /^jwtsvid: /);
  return caught;
}

/** Re-encodes one segment of a token with a transformation applied to its decoded bytes. */
function editSegment(token: string, index: number, edit: (s: string) => string): string {
  const parts = token.split('.');
  parts[index] = edit(parts[index] as string);
  return parts.join('.');
}

describe('JwtSvid.parseAndValidate', () => {
  describe('accepts valid JWT-SVIDs', () => {
    for (const alg of JWT_SVID_ALGORITHMS) {
      it(`accepts a token signed with ${alg}`, async () => {
        const token = ca.mint({ alg, aud: [AUD, 'spiffe://example.org/other'] });
        const svid = await JwtSvid.parseAndValidate(token, bundle, [AUD], { now: NOW, hint: 'external' });
        assert.equal(svid.id.toString(), SUB);
        assert.deepEqual(svid.audience, [AUD, 'spiffe://example.org/other']);
        assert.equal(svid.expiry.getTime(), (NOW_S + 300) * 1000);
        assert.equal(svid.hint, 'external');
        assert.equal(svid.marshal(), token);
        assert.equal(svid.claims.sub, SUB);
        assert.equal(svid.claims.iat, NOW_S);
      });
    }

    it('accepts a token signed with a restricted RSA-PSS key for PS256', () => {
      const pss = new TestJwtAuthority('example.org', { keyTypes: ['rsa-pss-2048'] });
      const token = pss.mint({ alg: 'PS256', key: pss.key('rsa-pss-2048') });
      assert.equal(validate(token, [AUD], pss.jwtBundle()).id.toString(), SUB);
    });

    it('defaults the hint to the empty string', () => {
      assert.equal(validate(ca.mint()).hint, '');
    });

    it('accepts a jti claim without tracking it (JWT-13)', () => {
      const token = ca.mint({ extraClaims: { jti: 'abc' } });
      assert.equal(validate(token).claims.jti, 'abc');
      assert.equal(validate(token).claims.jti, 'abc');
    });

    it('ignores header parameters it does not know and that name no key', () => {
      assert.equal(validate(ca.mint({ extraHeader: { cty: 'x', 'x5t#S256': 'abc' } })).id.toString(), SUB);
    });

    it('exposes the whole payload as deeply frozen claims', () => {
      const svid = validate(ca.mint({ extraClaims: { nested: { list: [1, { a: 'b' }] } } }));
      assert.deepEqual(svid.claims.nested, { list: [1, { a: 'b' }] });
      assert.ok(Object.isFrozen(svid.claims));
      assert.ok(Object.isFrozen((svid.claims.nested as { list: unknown[] }).list[1]));
      assert.ok(Object.isFrozen(svid.audience));
    });

    it('accepts a claim nested 60 levels deep and freezes every level', () => {
      const token = ca.mintRaw({
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: `{"sub":"${SUB}","aud":"${AUD}","exp":${NOW_S + 60},"x":${'['.repeat(60)}${']'.repeat(60)}}`,
      });
      let v: unknown = validate(token).claims.x;
      let depth = 0;
      while (Array.isArray(v)) {
        assert.ok(Object.isFrozen(v));
        v = v[0];
        depth++;
      }
      assert.equal(depth, 60);
    });

    it('returns a fresh expiry Date on every access', () => {
      const svid = validate(ca.mint());
      svid.expiry.setTime(0);
      assert.equal(svid.expiry.getTime(), (NOW_S + 300) * 1000);
    });

    it('never shows the token in toString() or inspection', () => {
      const token = ca.mint();
      const svid = validate(token);
      const signature = token.split('.')[2] as string;
      assert.match(svid.toString(), /^JwtSvid\(spiffe:\/\/example\.org\/workload, aud=\[".*"\], exp=2030-/);
      assert.ok(!svid.toString().includes(signature));
      assert.ok(!inspect(svid, { depth: 5 }).includes(signature));
      assert.ok(!JSON.stringify(svid).includes(signature));
    });

    it('is the same with the promise and the sync forms', async () => {
      const token = ca.mint({ alg: 'ES384' });
      const a = await JwtSvid.parseAndValidate(token, bundle, [AUD], { now: NOW });
      const b = JwtSvid.parseAndValidateSync(token, bundle, [AUD], { now: NOW });
      assert.equal(a.id.toString(), b.id.toString());
      assert.deepEqual(a.claims, b.claims);
    });

    it('rejects with the error as a promise', async () => {
      await assert.rejects(JwtSvid.parseAndValidate(ca.mint({ alg: 'HS256' }), bundle, [AUD], { now: NOW }), {
        name: 'JwtSvidError',
        code: 'ERR_JWTSVID_INVALID',
        message: /^jwtsvid: unable to parse JWT token/,
      });
    });
  });

  describe('JWS compact serialization only (JWT-01)', () => {
    const token = ca.mint();
    const [h, p, s] = token.split('.') as [string, string, string];
    const cases: { name: string; token: string }[] = [
      {
        name: 'a JWS JSON serialization',
        token: JSON.stringify({ payload: p, signatures: [{ protected: h, signature: s }] }),
      },
      {
        name: 'a flattened JWS JSON serialization',
        token: JSON.stringify({ payload: p, protected: h, signature: s }),
      },
      { name: 'a 5-part JWE', token: `${h}.${p}.${s}.${s}.${s}` },
      { name: 'a 4-part token', token: `${h}.${p}.${s}.${s}` },
      { name: 'a 2-part token', token: `${h}.${p}` },
      { name: 'the empty string', token: '' },
      { name: 'a token with a leading space', token: ` ${token}` },
      { name: 'a token with a trailing newline', token: `${token}\n` },
      { name: 'a token with an empty signature', token: `${h}.${p}.` },
    ];
    for (const tc of cases) {
      it(`rejects ${tc.name}`, () => {
        assertJwtError(
          () => validate(tc.token),
          'ERR_JWTSVID_INVALID',
          /^jwtsvid: unable to parse JWT token/,
        );
        assertJwtError(
          () => insecure(tc.token),
          'ERR_JWTSVID_INVALID',
          /^jwtsvid: unable to parse JWT token/,
        );
      });
    }
  });

  describe('algorithm allow-list before any key work (JWT-02)', () => {
    const cases: { name: string; options: MintOptions }[] = [
      { name: 'none', options: { alg: 'none' } },
      { name: 'HS256', options: { alg: 'HS256' } },
      { name: 'HS384', options: { alg: 'HS384' } },
      { name: 'HS512', options: { alg: 'HS512' } },
      { name: 'EdDSA', options: { alg: 'EdDSA', key: ca.addKey('ed25519') } },
      { name: 'ES256K', options: { alg: 'ES256K', key: ca.addKey('ec-secp256k1') } },
      { name: 'RS1', options: { alg: 'RS1' } },
      { name: 'lower-case es256', options: { alg: 'es256', signAs: 'ES256' } },
      { name: 'a missing alg', options: { extraHeader: { alg: undefined } } },
      { name: 'a numeric alg', options: { extraHeader: { alg: 256 } } },
    ];
    for (const tc of cases) {
      it(`rejects ${tc.name} without consulting the bundle source`, () => {
        const token = ca.mint(tc.options);
        const source = new RecordingSource(bundle);
        assertJwtError(
          () => validate(token, [AUD], source),
          'ERR_JWTSVID_INVALID',
          /^jwtsvid: unable to parse JWT token: (unsupported signing algorithm|header "alg" is missing or not a string)/,
        );
        assert.deepEqual(source.asked, []);
        assertJwtError(() => insecure(token), 'ERR_JWTSVID_INVALID', /^jwtsvid: unable to parse JWT token/);
      });
    }
  });

  describe('header parameters (JWT-03)', () => {
    for (const name of ['crit', 'jku', 'x5u', 'jwk', 'x5c', 'enc', 'zip', 'b64']) {
      it(`rejects a header carrying ${JSON.stringify(name)}`, () => {
        const token = ca.mint({ extraHeader: { [name]: name === 'crit' ? ['exp'] : 'x' } });
        const source = new RecordingSource(bundle);
        assertJwtError(
          () => validate(token, [AUD], source),
          'ERR_JWTSVID_INVALID',
          new RegExp(`^jwtsvid: unable to parse JWT token: header parameter "${name}" is not allowed$`),
        );
        assert.deepEqual(source.asked, []);
        assertJwtError(() => insecure(token), 'ERR_JWTSVID_INVALID', /is not allowed/);
      });
    }
  });

  describe('key ID (JWT-04, divergence: required against bundles)', () => {
    it('rejects a token without kid', () => {
      const token = ca.mint({ omit: ['kid'] });
      assertJwtError(() => validate(token), 'ERR_JWTSVID_INVALID', /^jwtsvid: token header missing key id$/);
    });

    it('rejects a token with an empty kid', () => {
      assertJwtError(
        () => validate(ca.mint({ kid: '' })),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: token header missing key id$/,
      );
    });

    it('rejects a non-string kid', () => {
      assertJwtError(
        () => validate(ca.mint({ extraHeader: { kid: 7 } })),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: unable to parse JWT token: header "kid" is not a string$/,
      );
    });

    it('accepts a token without kid in parseInsecure', () => {
      assert.equal(insecure(ca.mint({ omit: ['kid'] })).id.toString(), SUB);
    });

    it('rejects a kid the bundle does not hold', () => {
      assertJwtError(
        () => validate(ca.mint({ kid: 'nope' })),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: no JWT authority "nope" found for trust domain "example\.org"$/,
      );
    });
  });

  describe('typ (JWT-05)', () => {
    const ok: { name: string; options: MintOptions }[] = [
      { name: 'JWT', options: { typ: 'JWT' } },
      { name: 'JOSE', options: { typ: 'JOSE' } },
      { name: 'absent', options: { omit: ['typ'] } },
    ];
    for (const tc of ok) {
      it(`accepts typ ${tc.name}`, () => {
        assert.equal(validate(ca.mint(tc.options)).id.toString(), SUB);
        assert.equal(insecure(ca.mint(tc.options)).id.toString(), SUB);
      });
    }
    for (const typ of ['jwt', 'at+jwt', 'JWS', '', 1]) {
      it(`rejects typ ${JSON.stringify(typ)}`, () => {
        const token = ca.mint({ extraHeader: { typ } });
        const re = /^jwtsvid: token header type not equal to either JWT or JOSE$/;
        assertJwtError(() => validate(token), 'ERR_JWTSVID_INVALID', re);
        assertJwtError(() => insecure(token), 'ERR_JWTSVID_INVALID', re);
      });
    }
  });

  describe('subject (JWT-06)', () => {
    const cases: { name: string; options: MintOptions; message: RegExp }[] = [
      {
        name: 'a missing sub',
        options: { omit: ['sub'] },
        message: /^jwtsvid: token missing subject claim$/,
      },
      { name: 'an empty sub', options: { sub: '' }, message: /^jwtsvid: token missing subject claim$/ },
      {
        name: 'a sub that is not a SPIFFE ID',
        options: { sub: 'alice' },
        message: /^jwtsvid: token has an invalid subject claim: spiffeid: /,
      },
      {
        name: 'a sub with a trailing slash',
        options: { sub: 'spiffe://example.org/' },
        message: /^jwtsvid: token has an invalid subject claim: spiffeid: /,
      },
      {
        name: 'a sub with an upper-case trust domain',
        options: { sub: 'spiffe://Example.org/w' },
        message: /^jwtsvid: token has an invalid subject claim: spiffeid: /,
      },
      {
        name: 'a sub naming a trust domain root',
        options: { sub: 'spiffe://example.org' },
        message:
          /^jwtsvid: token has an invalid subject claim: "spiffe:\/\/example\.org" is a trust domain ID, not a workload ID$/,
      },
      {
        name: 'a numeric sub',
        options: { extraClaims: { sub: 42 } },
        message: /^jwtsvid: unable to get claims from token: sub claim is not a string$/,
      },
    ];
    for (const tc of cases) {
      it(`rejects ${tc.name}`, () => {
        const token = ca.mint(tc.options);
        const err = assertJwtError(() => validate(token), 'ERR_JWTSVID_INVALID', tc.message);
        assertJwtError(() => insecure(token), 'ERR_JWTSVID_INVALID', tc.message);
        if (/invalid subject claim: spiffeid/.test(tc.message.source)) {
          assert.equal((err.cause as { code?: string } | undefined)?.code, 'ERR_SPIFFEID_INVALID');
        }
      });
    }

    it('checks the subject before the expiry', () => {
      assertJwtError(
        () => validate(ca.mint({ omit: ['sub', 'exp'] })),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: token missing subject claim$/,
      );
    });
  });

  describe('audience (JWT-07, JWT-14)', () => {
    it('accepts aud as a string and exposes it as an array', () => {
      const svid = validate(ca.mint({ aud: AUD }));
      assert.deepEqual(svid.audience, [AUD]);
      assert.equal(svid.claims.aud, AUD);
    });

    it('accepts aud ["a", "b"] validated as "b"', () => {
      assert.deepEqual(validate(ca.mint({ aud: ['a', 'b'] }), ['b']).audience, ['a', 'b']);
    });

    it('accepts when any expected audience is present', () => {
      assert.equal(validate(ca.mint({ aud: ['a', 'b'] }), ['c', 'a']).id.toString(), SUB);
    });

    it('rejects aud ["a", "b"] validated as "c"', () => {
      const token = ca.mint({ aud: ['a', 'b'] });
      const re = /^jwtsvid: expected audience in \["c"\] \(audience=\["a" "b"\]\)$/;
      assertJwtError(() => validate(token, ['c']), 'ERR_JWTSVID_AUDIENCE', re);
      assertJwtError(() => insecure(token, ['c']), 'ERR_JWTSVID_AUDIENCE', re);
    });

    it('rejects a token without aud', () => {
      assertJwtError(
        () => validate(ca.mint({ omit: ['aud'] })),
        'ERR_JWTSVID_AUDIENCE',
        /^jwtsvid: expected audience in \[".*"\] \(audience=\[\]\)$/,
      );
    });

    it('rejects a token with an empty aud array', () => {
      assertJwtError(() => validate(ca.mint({ aud: [] })), 'ERR_JWTSVID_AUDIENCE', /\(audience=\[\]\)$/);
    });

    it('compares audiences exactly (no case folding, no prefix match)', () => {
      assertJwtError(() => validate(ca.mint({ aud: ['API'] }), ['api']), 'ERR_JWTSVID_AUDIENCE', /audience=/);
      assertJwtError(
        () => validate(ca.mint({ aud: ['api/x'] }), ['api']),
        'ERR_JWTSVID_AUDIENCE',
        /audience=/,
      );
    });

    for (const aud of [7, [AUD, 7], { a: AUD }, null]) {
      it(`rejects aud ${JSON.stringify(aud)} of the wrong type`, () => {
        assertJwtError(
          () => validate(ca.mint({ extraClaims: { aud } })),
          'ERR_JWTSVID_INVALID',
          /^jwtsvid: unable to get claims from token: aud claim is neither a string nor an array of strings$/,
        );
      });
    }

    it('bounds the audience list it quotes in messages', () => {
      const many = Array.from({ length: 50 }, (_, i) => `aud-${i}`);
      const err = assertJwtError(
        () => validate(ca.mint({ aud: many }), ['x']),
        'ERR_JWTSVID_AUDIENCE',
        /42 more/,
      );
      assert.ok(!err.message.includes('aud-49'));
    });
  });

  describe('expected audience (divergence: must be non-empty)', () => {
    it('throws RangeError for an empty expected audience list', async () => {
      assert.throws(() => validate(ca.mint(), []), {
        name: 'RangeError',
        message: 'jwtsvid: expected audience must not be empty',
      });
      assert.throws(() => insecure(ca.mint(), []), { name: 'RangeError' });
      await assert.rejects(JwtSvid.parseAndValidate(ca.mint(), bundle, []), { name: 'RangeError' });
    });

    it('throws RangeError for an empty string among the expected audiences', () => {
      assert.throws(() => validate(ca.mint(), [AUD, '']), { name: 'RangeError' });
    });

    it('throws TypeError for an expected audience that is not an array', () => {
      assert.throws(() => validate(ca.mint(), AUD as unknown as string[]), { name: 'TypeError' });
    });
  });

  describe('expiry (JWT-08)', () => {
    const cases: { name: string; exp: number; code?: SpiffeErrorCode }[] = [
      { name: 'exp = now - 30 s is accepted (60 s leeway)', exp: NOW_S - 30 },
      { name: 'exp = now - 60 s is accepted (leeway boundary)', exp: NOW_S - 60 },
      { name: 'exp = now - 61 s is rejected', exp: NOW_S - 61, code: 'ERR_JWTSVID_EXPIRED' },
      { name: 'exp = now - 5 min is rejected', exp: NOW_S - 300, code: 'ERR_JWTSVID_EXPIRED' },
      { name: 'exp = 0 is rejected', exp: 0, code: 'ERR_JWTSVID_EXPIRED' },
      { name: 'a fractional exp is accepted', exp: NOW_S + 0.5 },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const token = ca.mint({ exp: tc.exp });
        if (tc.code === undefined) {
          assert.equal(validate(token).expiry.getTime(), tc.exp * 1000);
          assert.equal(insecure(token).expiry.getTime(), tc.exp * 1000);
        } else {
          assertJwtError(() => validate(token), tc.code, /^jwtsvid: token has expired$/);
          assertJwtError(() => insecure(token), tc.code, /^jwtsvid: token has expired$/);
        }
      });
    }

    it('rejects a token without exp', () => {
      const re = /^jwtsvid: token missing exp claim$/;
      assertJwtError(() => validate(ca.mint({ omit: ['exp'] })), 'ERR_JWTSVID_INVALID', re);
      assertJwtError(() => insecure(ca.mint({ omit: ['exp'] })), 'ERR_JWTSVID_INVALID', re);
    });

    for (const exp of ['1893456300', null, 1e300, true]) {
      it(`rejects exp ${JSON.stringify(exp)}`, () => {
        assertJwtError(
          () => validate(ca.mint({ extraClaims: { exp } })),
          'ERR_JWTSVID_INVALID',
          /^jwtsvid: unable to get claims from token: exp claim is (not a number|out of range)$/,
        );
      });
    }

    it('reports expiry before a wrong audience', () => {
      assertJwtError(() => validate(ca.mint({ exp: NOW_S - 300 }), ['x']), 'ERR_JWTSVID_EXPIRED', /expired/);
    });

    it('validates against the current time when no now is given', () => {
      // Minted for 2030 and expiring in 1970: expired whatever the wall clock says.
      assertJwtError(
        () => JwtSvid.parseAndValidateSync(ca.mint({ exp: 1 }), bundle, [AUD]),
        'ERR_JWTSVID_EXPIRED',
        /expired/,
      );
    });
  });

  describe('nbf and iat', () => {
    const cases: { name: string; options: MintOptions; message?: RegExp }[] = [
      { name: 'accepts nbf 30 s in the future', options: { nbf: NOW_S + 30 } },
      { name: 'accepts nbf in the past', options: { nbf: NOW_S - 3600 } },
      {
        name: 'rejects nbf 5 min in the future',
        options: { nbf: NOW_S + 300, exp: NOW_S + 600 },
        message: /^jwtsvid: token not valid yet \(nbf\)$/,
      },
      { name: 'accepts iat 60 s in the future', options: { iat: NOW_S + 60 } },
      {
        name: 'rejects iat 5 min in the future',
        options: { iat: NOW_S + 300 },
        message: /^jwtsvid: token issued in the future \(iat\)$/,
      },
      {
        name: 'rejects a string nbf',
        options: { extraClaims: { nbf: 'soon' } },
        message: /^jwtsvid: unable to get claims from token: nbf claim is not a number$/,
      },
      {
        name: 'rejects a string iat',
        options: { extraClaims: { iat: 'then' } },
        message: /^jwtsvid: unable to get claims from token: iat claim is not a number$/,
      },
    ];
    for (const tc of cases) {
      it(tc.name, () => {
        const token = ca.mint(tc.options);
        if (tc.message === undefined) {
          assert.equal(validate(token).id.toString(), SUB);
        } else {
          assertJwtError(() => validate(token), 'ERR_JWTSVID_INVALID', tc.message);
          assertJwtError(() => insecure(token), 'ERR_JWTSVID_INVALID', tc.message);
        }
      });
    }

    for (const name of ['iss', 'jti']) {
      it(`rejects a non-string ${name}`, () => {
        assertJwtError(
          () => validate(ca.mint({ extraClaims: { [name]: 1 } })),
          'ERR_JWTSVID_INVALID',
          new RegExp(`^jwtsvid: unable to get claims from token: ${name} claim is not a string$`),
        );
      });
    }
  });

  describe('trust domain of the key (JWT-10)', () => {
    const a = new TestJwtAuthority('a.org', { keyTypes: ['ec-p256'] });
    const b = new TestJwtAuthority('b.org', { keyTypes: ['ec-p256'] });
    const source = new RecordingSource(a.jwtBundle(), b.jwtBundle());

    it('accepts tokens of each trust domain with its own bundle', () => {
      assert.equal(
        validate(a.mint({ sub: 'spiffe://a.org/w' }), [a.defaultAudience()], source).id.toString(),
        'spiffe://a.org/w',
      );
      assert.equal(
        validate(b.mint({ sub: 'spiffe://b.org/w' }), [b.defaultAudience()], source).id.toString(),
        'spiffe://b.org/w',
      );
    });

    it('rejects a sub in a.org signed by a b.org key with the same kid', () => {
      const token = b.mint({ sub: 'spiffe://a.org/w', aud: AUD });
      const s = new RecordingSource(a.jwtBundle(), b.jwtBundle());
      assertJwtError(
        () => validate(token, [AUD], s),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: unable to get claims from token: error in cryptographic primitive$/,
      );
      assert.deepEqual(s.asked, ['a.org']);
    });

    it('rejects a token whose trust domain has no bundle', () => {
      const err = assertJwtError(
        () => validate(ca.mint({ sub: 'spiffe://other.org/w' }), [AUD], source),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: no bundle found for trust domain "other\.org"$/,
      );
      assert.equal((err.cause as BundleError).code, 'ERR_BUNDLE_NOT_FOUND');
    });

    it('rejects when a single bundle is used as the source for another trust domain', () => {
      assertJwtError(
        () => validate(a.mint({ sub: 'spiffe://example.org/w', aud: AUD }), [AUD], a.jwtBundle()),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: no bundle found for trust domain "example\.org"$/,
      );
    });

    it('fails closed when a source answers with the bundle of another trust domain', () => {
      const liar: JwtBundleSource = {
        getJwtBundleForTrustDomain: () => ca.jwtBundle(TrustDomain.fromString('a.org')),
      };
      assertJwtError(() => validate(ca.mint(), [AUD], liar), 'ERR_JWTSVID_INVALID', /no bundle found/);
    });

    it('passes through errors of the source that are not "bundle not found"', () => {
      const closed: JwtBundleSource = {
        getJwtBundleForTrustDomain: () => {
          throw new Error('source closed');
        },
      };
      assert.throws(() => validate(ca.mint(), [AUD], closed), { message: 'source closed' });
    });

    it('throws TypeError for a bundle source without getJwtBundleForTrustDomain', () => {
      assert.throws(() => validate(ca.mint(), [AUD], {} as JwtBundleSource), { name: 'TypeError' });
    });
  });

  describe('key and algorithm must fit', () => {
    const weak = new TestJwtAuthority('example.org', { keyTypes: ['rsa-1024', 'rsa-pss-2048'] });
    const mixed = new RecordingSource(weak.jwtBundle());
    const cases: { name: string; token: string; source: JwtBundleSource; message: RegExp }[] = [
      {
        name: 'ES256 with a P-384 key',
        token: ca.mint({ alg: 'ES256', key: ca.key('ec-p384') }),
        source: bundle,
        message: /"ec-p384" is an EC key on secp384r1 and cannot verify ES256 \(needs P-256\)$/,
      },
      {
        name: 'ES512 with a P-256 key',
        token: ca.mint({ alg: 'ES512', key: ca.key('ec-p256'), signAs: 'ES256' }),
        source: bundle,
        message: /cannot verify ES512 \(needs P-521\)$/,
      },
      {
        name: 'ES256 with an RSA key',
        token: ca.mint({ alg: 'ES256', kid: 'rsa-2048' }),
        source: bundle,
        message: /"rsa-2048" is a rsa key and cannot verify ES256/,
      },
      {
        name: 'RS256 with an EC key',
        token: ca.mint({ alg: 'RS256', kid: 'ec-p256', signAs: 'ES256' }),
        source: bundle,
        message: /"ec-p256" is a ec key and cannot verify RS256$/,
      },
      {
        name: 'RS256 with a 1024-bit RSA key',
        token: weak.mint({ alg: 'RS256', key: weak.key('rsa-1024') }),
        source: mixed,
        message: /is a 1024-bit RSA key; RS256 needs at least 2048 bits$/,
      },
      {
        name: 'RS256 with an RSA-PSS key',
        token: weak.mint({ alg: 'RS256', kid: 'rsa-pss-2048', key: weak.key('rsa-1024') }),
        source: mixed,
        message: /is a rsa-pss key and cannot verify RS256$/,
      },
      {
        name: 'PS384 with an RSA-PSS key restricted to SHA-256',
        token: weak.mint({ alg: 'PS384', key: weak.key('rsa-pss-2048'), signAs: 'PS256' }),
        source: mixed,
        message: /is restricted to sha256 and cannot verify PS384$/,
      },
    ];
    for (const tc of cases) {
      it(`rejects ${tc.name}`, () => {
        assertJwtError(
          () => validate(tc.token, [AUD], tc.source),
          'ERR_JWTSVID_INVALID',
          new RegExp(
            `^jwtsvid: unable to get claims from token: error in cryptographic primitive: JWT authority .*${tc.message.source}`,
          ),
        );
      });
    }
  });

  describe('signature', () => {
    const valid = ca.mint();
    const cases: { name: string; token: string }[] = [
      { name: 'a signature by a key outside the bundle', token: ca.mint({ signWithOtherKey: true }) },
      {
        name: 'an RSA signature by a key outside the bundle',
        token: ca.mint({ alg: 'PS512', signWithOtherKey: true }),
      },
      {
        name: 'a payload changed after signing',
        token: editSegment(valid, 1, () =>
          Buffer.from(
            JSON.stringify({ sub: 'spiffe://example.org/admin', aud: [AUD], exp: NOW_S + 300 }),
          ).toString('base64url'),
        ),
      },
      {
        name: 'a header changed after signing',
        token: editSegment(valid, 0, () =>
          Buffer.from(JSON.stringify({ alg: 'ES256', kid: 'ec-p256', typ: 'JOSE' })).toString('base64url'),
        ),
      },
      {
        name: 'a truncated signature',
        token: editSegment(valid, 2, (s) => s.slice(0, 84)),
      },
      {
        name: 'a DER-encoded ECDSA signature',
        token: editSegment(valid, 2, () => derSignature(valid)),
      },
      {
        name: 'an all-zero ECDSA signature',
        token: editSegment(valid, 2, () => Buffer.alloc(64).toString('base64url')),
      },
      {
        name: 'an RS256 signature with a leading byte stripped',
        token: editSegment(ca.mint({ alg: 'RS256' }), 2, (s) =>
          Buffer.from(s, 'base64url').subarray(1).toString('base64url'),
        ),
      },
      {
        name: 'a PS256 token signed as RS256',
        token: ca.mint({ alg: 'PS256', signAs: 'RS256' }),
      },
      {
        name: 'an RS256 token signed as PS256',
        token: ca.mint({ alg: 'RS256', signAs: 'PS256' }),
      },
      {
        name: 'an ES384 token signed with SHA-256',
        token: ca.mint({ alg: 'ES384', key: ca.key('ec-p384'), signAs: 'ES256' }),
      },
    ];
    for (const tc of cases) {
      it(`rejects ${tc.name}`, () => {
        assertJwtError(
          () => validate(tc.token),
          'ERR_JWTSVID_INVALID',
          /^jwtsvid: unable to get claims from token: error in cryptographic primitive$/,
        );
      });
    }

    it('accepts such tokens in parseInsecure (it does not check signatures)', () => {
      assert.equal(insecure(ca.mint({ signWithOtherKey: true })).id.toString(), SUB);
    });
  });

  describe('strict base64url', () => {
    const valid = ca.mint();
    const [h, p, s] = valid.split('.') as [string, string, string];
    const lastNonCanonical = (seg: string): string => {
      // Flip a low bit of the last character that carries no data (segments of length 4n+2 or 4n+3).
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const last = alphabet.indexOf(seg.at(-1) as string);
      return seg.slice(0, -1) + (alphabet[last | 1] as string);
    };
    const cases: { name: string; token: string; message: RegExp }[] = [
      {
        name: 'padding in the signature',
        token: `${h}.${p}.${s}==`,
        message: /signature is not valid base64url/,
      },
      { name: 'padding in the header', token: `${h}=.${p}.${s}`, message: /header is not valid base64url/ },
      {
        name: 'standard-alphabet characters',
        token: `${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}+/`,
        message: /signature is not valid base64url/,
      },
      {
        name: 'whitespace inside a segment',
        token: `${h}.${p.slice(0, 4)} ${p.slice(4)}.${s}`,
        message: /payload is not valid base64url/,
      },
      {
        name: 'a non-ASCII character',
        token: `${h}.${p}.${s}é`,
        message: /signature is not valid base64url/,
      },
      {
        name: 'a segment of length 4n+1',
        token: `${h}.${p}.${s}AAA`,
        message: /signature is not valid base64url/,
      },
      {
        name: 'non-canonical trailing bits in the signature',
        token: `${h}.${p}.${lastNonCanonical(s)}`,
        message: /signature is not canonical base64url/,
      },
    ];
    it('has a signature segment whose last character carries unused bits', () => {
      assert.notEqual(s.length % 4, 0);
    });
    for (const tc of cases) {
      it(`rejects ${tc.name}`, () => {
        assertJwtError(
          () => validate(tc.token),
          'ERR_JWTSVID_INVALID',
          new RegExp(`^jwtsvid: unable to parse JWT token: ${tc.message.source}$`),
        );
      });
    }
  });

  describe('header and payload encoding', () => {
    const cases: {
      name: string;
      header: Record<string, unknown> | string | Uint8Array;
      payload: Record<string, unknown> | string | Uint8Array;
      message: RegExp;
    }[] = [
      {
        name: 'a header that is not JSON',
        header: '{alg: ES256}',
        payload: { sub: SUB },
        message:
          /^jwtsvid: unable to parse JWT token: header is not valid JSON \(json: expected a string key at offset 1\)$/,
      },
      {
        name: 'a header that is a JSON array',
        header: '["ES256"]',
        payload: { sub: SUB },
        message: /^jwtsvid: unable to parse JWT token: header is not a JSON object$/,
      },
      {
        name: 'a header that is JSON null',
        header: 'null',
        payload: { sub: SUB },
        message: /header is not a JSON object$/,
      },
      {
        name: 'a header with invalid UTF-8',
        header: Buffer.concat([
          Buffer.from('{"alg":"ES256","kid":"'),
          Buffer.from([0xff]),
          Buffer.from('"}'),
        ]),
        payload: { sub: SUB },
        message: /^jwtsvid: unable to parse JWT token: header is not valid UTF-8$/,
      },
      {
        name: 'a payload that is not JSON',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: 'not json',
        message: /^jwtsvid: unable to get claims from token: payload is not valid JSON \(json: /,
      },
      {
        name: 'a payload that is a JSON string',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: '"spiffe://example.org/w"',
        message: /^jwtsvid: unable to get claims from token: payload is not a JSON object$/,
      },
      {
        name: 'an empty payload',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: '',
        message: /^jwtsvid: unable to get claims from token: payload is not valid JSON \(json: /,
      },
      {
        name: 'a payload with invalid UTF-8',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: Buffer.concat([
          Buffer.from(`{"sub":"${SUB}","x":"`),
          Buffer.from([0xc3, 0x28]),
          Buffer.from('"}'),
        ]),
        message: /^jwtsvid: unable to get claims from token: payload is not valid UTF-8$/,
      },
      {
        name: 'a deeply nested payload',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: `${'['.repeat(200_000)}${']'.repeat(200_000)}`,
        message:
          /^jwtsvid: unable to get claims from token: payload is not valid JSON \(json: nesting too deep/,
      },
      {
        name: 'a deeply nested claim',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: `{"sub":"${SUB}","aud":"${AUD}","exp":${NOW_S + 60},"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
        message:
          /^jwtsvid: unable to get claims from token: payload is not valid JSON \(json: nesting too deep/,
      },
      {
        name: 'a header with a duplicate alg',
        header: '{"alg":"HS256","kid":"ec-p256","alg":"ES256"}',
        payload: { sub: SUB },
        message: /^jwtsvid: unable to parse JWT token: header is not valid JSON \(json: duplicate key "alg"/,
      },
      {
        name: 'a payload with a duplicate sub',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: `{"sub":"spiffe://example.org/admin","aud":"${AUD}","exp":${NOW_S + 60},"sub":"${SUB}"}`,
        message:
          /^jwtsvid: unable to get claims from token: payload is not valid JSON \(json: duplicate key "sub"/,
      },
      {
        name: 'a payload with a duplicate key in a nested claim',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: `{"sub":"${SUB}","aud":"${AUD}","exp":${NOW_S + 60},"x":{"a":1,"a":2}}`,
        message: /payload is not valid JSON \(json: duplicate key "a"/,
      },
      {
        name: 'a payload with trailing data',
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: `{"sub":"${SUB}","aud":"${AUD}","exp":${NOW_S + 60}} x`,
        message: /payload is not valid JSON \(json: unexpected data after the top-level value/,
      },
    ];
    for (const tc of cases) {
      it(`rejects ${tc.name}`, () => {
        const token = ca.mintRaw({ header: tc.header, payload: tc.payload });
        assertJwtError(() => validate(token), 'ERR_JWTSVID_INVALID', tc.message);
        assertJwtError(() => insecure(token), 'ERR_JWTSVID_INVALID', tc.message);
      });
    }

    it('accepts a payload with a "__proto__" claim without polluting prototypes', () => {
      const token = ca.mintRaw({
        header: { alg: 'ES256', kid: 'ec-p256' },
        payload: `{"sub":"${SUB}","aud":"${AUD}","exp":${NOW_S + 60},"__proto__":{"polluted":true}}`,
      });
      const svid = validate(token);
      assert.equal(({} as { polluted?: unknown }).polluted, undefined);
      assert.equal(Object.getPrototypeOf(svid.claims), Object.prototype);
      assert.deepEqual(Object.getOwnPropertyDescriptor(svid.claims, '__proto__')?.value, { polluted: true });
    });
  });

  describe('messages', () => {
    it('never contain the token, its payload or its signature', () => {
      const tokens = [
        ca.mint({ signWithOtherKey: true }),
        ca.mint({ exp: NOW_S - 3600 }),
        ca.mint({ aud: ['x'] }),
        ca.mint({ kid: 'missing' }),
        ca.mint({ alg: 'HS256' }),
        ca.mint({ extraClaims: { exp: 'x' } }),
      ];
      for (const token of tokens) {
        const [, payload, signature] = token.split('.') as [string, string, string];
        let message = '';
        try {
          validate(token);
        } catch (err) {
          message = (err as Error).message;
        }
        assert.notEqual(message, '');
        assert.ok(!message.includes(token));
        assert.ok(!message.includes(payload));
        assert.ok(signature === '' || !message.includes(signature));
      }
    });

    it('bounds quoted header values', () => {
      const err = assertJwtError(
        () => validate(ca.mint({ kid: 'k'.repeat(10_000) })),
        'ERR_JWTSVID_INVALID',
        /^jwtsvid: no JWT authority "k+…" found/,
      );
      assert.ok(err.message.length < 300);
    });
  });

  describe('argument checks', () => {
    it('throws TypeError for a token that is not a string', () => {
      assert.throws(() => validate(42 as unknown as string), { name: 'TypeError' });
      assert.throws(() => insecure(undefined as unknown as string), { name: 'TypeError' });
    });

    it('throws TypeError for an invalid now', () => {
      assert.throws(() => JwtSvid.parseInsecure(ca.mint(), [AUD], { now: new Date(Number.NaN) }), {
        name: 'TypeError',
        message: 'jwtsvid: options.now must be a valid Date',
      });
    });
  });
});

/** Re-encodes the P1363 signature of an ES256 token as DER. */
function derSignature(token: string): string {
  const sig = Buffer.from(token.split('.')[2] as string, 'base64url');
  const int = (b: Buffer): Buffer => {
    let i = 0;
    while (i < b.length - 1 && b[i] === 0) i++;
    const v = b.subarray(i);
    return (v[0] as number) & 0x80 ? Buffer.concat([Buffer.from([0]), v]) : v;
  };
  const r = int(sig.subarray(0, 32));
  const s = int(sig.subarray(32));
  const body = Buffer.concat([Buffer.from([2, r.length]), r, Buffer.from([2, s.length]), s]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]).toString('base64url');
}
