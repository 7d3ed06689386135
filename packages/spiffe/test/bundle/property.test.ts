import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JwtBundle, parseBundleMap, SpiffeBundle, X509Bundle } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import { TrustDomain } from '@tessera/spiffe/spiffeid';
import fc from 'fast-check';
import { caA, caB } from './fixtures.js';

const td = TrustDomain.fromString('example.org');

function onlyBundleErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SpiffeError, `unexpected ${String(err)}`);
    assert.equal(err.code, 'ERR_BUNDLE_INVALID');
  }
}

const validDoc = SpiffeBundle.fromAuthorities(td, {
  x509Authorities: [caA.cert],
  jwtAuthorities: new Map([['k', caB.publicKey]]),
  sequenceNumber: 1n,
}).marshal();

// JSON-ish text: real JSON values, bundle-shaped objects, and mutations of a valid bundle document.
const jsonish = fc.oneof(
  fc.json(),
  fc.string(),
  fc
    .record({
      keys: fc.array(
        fc.dictionary(fc.constantFrom('kty', 'use', 'kid', 'x5c', 'crv', 'x', 'y', 'n', 'e'), fc.jsonValue()),
      ),
    })
    .map((o) => JSON.stringify(o)),
  fc
    .tuple(fc.nat(validDoc.length), fc.nat(20), fc.string({ maxLength: 5 }))
    .map(([at, del, ins]) => validDoc.slice(0, at) + ins + validDoc.slice(at + del)),
);

describe('bundle parser properties', () => {
  it('never crashes on arbitrary bytes into X509Bundle.parseDer', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 40 }).map((t) => Buffer.concat([caA.der, t])),
        ),
        (bytes) => onlyBundleErrors(() => X509Bundle.parseDer(td, bytes)),
      ),
      { numRuns: 1000 },
    );
  });

  it('never crashes on arbitrary PEM-ish text into X509Bundle.parse', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc
            .tuple(fc.nat(caA.pem.length), fc.nat(10), fc.string({ maxLength: 4 }))
            .map(([at, del, ins]) => caA.pem.slice(0, at) + ins + caA.pem.slice(at + del)),
        ),
        (text) => onlyBundleErrors(() => X509Bundle.parse(td, text)),
      ),
      { numRuns: 1000 },
    );
  });

  it('never crashes on JSON-ish text into the bundle parsers', () => {
    fc.assert(
      fc.property(jsonish, fc.boolean(), (text, strict) => {
        onlyBundleErrors(() => SpiffeBundle.parse(td, text, { strict }));
        onlyBundleErrors(() => JwtBundle.parse(td, text, { strict }));
        onlyBundleErrors(() => parseBundleMap(`{"trust_domains":{"a.org":${text}}}`));
        onlyBundleErrors(() => parseBundleMap(text));
      }),
      { numRuns: 1500 },
    );
  });

  it('accepts exactly the JSON that JSON.parse accepts when no key is duplicated', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (text) => {
        let native = true;
        try {
          JSON.parse(text);
        } catch {
          native = false;
        }
        let ours = true;
        try {
          parseBundleMap(`{"trust_domains":{},"x":${text}}`);
        } catch (err) {
          ours = !(err instanceof SpiffeError && /json: /.test(err.message));
        }
        const hasDup = /"([^"\\]*)"\s*:.*"\1"\s*:/.test(text);
        if (!hasDup) assert.equal(ours, native, text);
      }),
      { numRuns: 1500 },
    );
  });

  it('round-trips arbitrary sequence numbers and refresh hints', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.nat(), (seq, hint) => {
        const b = SpiffeBundle.fromAuthorities(td, { sequenceNumber: seq, refreshHint: hint });
        const again = SpiffeBundle.parse(td, b.marshal());
        assert.equal(again.sequenceNumber, seq);
        assert.equal(again.refreshHint, hint);
        assert.ok(again.equals(b));
      }),
    );
  });
});
