import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpiffeError } from '@tessera/spiffe/errors';
import { JWT_SVID_ALGORITHMS, JwtSvid } from '@tessera/spiffe/svid';
import { JWT_TEST_NOW, TestJwtAuthority } from '@tessera/testing';
import fc from 'fast-check';

const ca = new TestJwtAuthority('example.org', { keyTypes: ['ec-p256', 'rsa-2048'] });
const bundle = ca.jwtBundle();
const AUD = ca.defaultAudience();
const CODES = new Set(['ERR_JWTSVID_INVALID', 'ERR_JWTSVID_EXPIRED', 'ERR_JWTSVID_AUDIENCE']);

/** Runs both parsers; each must either succeed or fail with a coded, prefixed SpiffeError. */
function checkBothParsers(token: string): void {
  for (const parse of [
    () => JwtSvid.parseAndValidateSync(token, bundle, [AUD], { now: JWT_TEST_NOW }),
    () => JwtSvid.parseInsecure(token, [AUD], { now: JWT_TEST_NOW }),
  ]) {
    try {
      parse();
    } catch (err) {
      assert.ok(err instanceof SpiffeError, `not a SpiffeError: ${String(err)}`);
      assert.ok(CODES.has(err.code), `unexpected code ${err.code}`);
      assert.match(err.message, /^jwtsvid: /);
      if (token.length > 16) assert.ok(!err.message.includes(token), 'message echoes the token');
    }
  }
}

const b64 = (v: string | Uint8Array): string => Buffer.from(v).toString('base64url');
const segmentBytes = fc.uint8Array({ maxLength: 200 }).map(b64);
const jsonSegment = fc.jsonValue({ maxDepth: 3 }).map((v) => b64(JSON.stringify(v) ?? 'null'));
const header = fc
  .record(
    {
      alg: fc.oneof(fc.constantFrom(...JWT_SVID_ALGORITHMS, 'none', 'HS256', 'EdDSA'), fc.jsonValue()),
      kid: fc.oneof(fc.constantFrom('ec-p256', 'rsa-2048', ''), fc.jsonValue()),
      typ: fc.oneof(fc.constantFrom('JWT', 'JOSE', 'jwt'), fc.jsonValue()),
      crit: fc.jsonValue(),
    },
    { requiredKeys: [] },
  )
  .map((h) => b64(JSON.stringify(h)));
const claims = fc
  .record(
    {
      sub: fc.oneof(
        fc.constantFrom('spiffe://example.org/w', 'spiffe://example.org', 'spiffe://other.org/w', ''),
        fc.jsonValue(),
      ),
      aud: fc.oneof(fc.constant(AUD), fc.array(fc.string()), fc.jsonValue()),
      exp: fc.oneof(fc.integer(), fc.double(), fc.jsonValue()),
      nbf: fc.oneof(fc.integer(), fc.jsonValue()),
      iat: fc.oneof(fc.integer(), fc.jsonValue()),
    },
    { requiredKeys: [] },
  )
  .map((c) => b64(JSON.stringify(c)));
const b64Garbage = fc.string({
  unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
  maxLength: 120,
});

describe('JwtSvid parsers under arbitrary input', () => {
  it('never crash on arbitrary strings', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.string({ unit: fc.constantFrom('.', 'a', '=', '-', '{') }),
        ),
        (s) => {
          checkBothParsers(s);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never crash on three parts of arbitrary base64url', () => {
    fc.assert(
      fc.property(
        fc.oneof(b64Garbage, segmentBytes),
        fc.oneof(b64Garbage, segmentBytes),
        fc.oneof(b64Garbage, segmentBytes),
        (h, p, s) => {
          checkBothParsers(`${h}.${p}.${s}`);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never crash on JSON headers and claims of arbitrary shape', () => {
    fc.assert(
      fc.property(fc.oneof(header, jsonSegment), fc.oneof(claims, jsonSegment), segmentBytes, (h, p, s) => {
        checkBothParsers(`${h}.${p}.${s}`);
      }),
      { numRuns: 1000 },
    );
  });

  it('reject every single-character change to the signature of a valid token', () => {
    const token = ca.mint();
    const cut = token.lastIndexOf('.') + 1;
    fc.assert(
      fc.property(
        fc.integer({ min: cut, max: token.length - 1 }),
        fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'),
        (i, c) => {
          fc.pre(token[i] !== c);
          const tampered = token.slice(0, i) + c + token.slice(i + 1);
          assert.throws(() => JwtSvid.parseAndValidateSync(tampered, bundle, [AUD], { now: JWT_TEST_NOW }), {
            code: 'ERR_JWTSVID_INVALID',
          });
        },
      ),
      { numRuns: 300 },
    );
  });
});
