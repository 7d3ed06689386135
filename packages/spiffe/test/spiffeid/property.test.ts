import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import fc from 'fast-check';

const tdChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_'.split(''));
const segChar = fc.constantFrom(
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_'.split(''),
);
const tdName = fc.string({ unit: tdChar, minLength: 1, maxLength: 40 });
const segment = fc
  .string({ unit: segChar, minLength: 1, maxLength: 12 })
  .filter((s) => s !== '.' && s !== '..');

function assertSpiffeError(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SpiffeError, `unexpected error ${String(err)}`);
    assert.ok(err.code === 'ERR_SPIFFEID_INVALID' || err.code === 'ERR_TRUST_DOMAIN_INVALID');
    assert.match(err.message, /^spiffeid: /);
  }
}

describe('SPIFFE ID properties', () => {
  it('never crashes on arbitrary strings: a result or a coded SpiffeError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.string({ unit: 'binary' }),
          fc.string().map((s) => `spiffe://${s}`),
        ),
        (s) => {
          assertSpiffeError(() => SpiffeId.fromString(s));
          assertSpiffeError(() => TrustDomain.fromString(s));
          assert.equal(
            SpiffeId.isValid(s),
            (() => {
              try {
                SpiffeId.fromString(s);
                return true;
              } catch {
                return false;
              }
            })(),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('round-trips generated valid IDs through string, segments and path', () => {
    fc.assert(
      fc.property(tdName, fc.array(segment, { maxLength: 6 }), (name, segs) => {
        const td = TrustDomain.fromString(name);
        const id = SpiffeId.fromSegments(td, ...segs);
        const s = id.toString();
        assert.equal(s, `spiffe://${name}${segs.map((x) => `/${x}`).join('')}`);
        const parsed = SpiffeId.fromString(s);
        assert.ok(parsed.equals(id));
        assert.ok(parsed.trustDomain.equals(td));
        assert.equal(parsed.path, id.path);
        assert.ok(SpiffeId.fromPath(td, parsed.path).equals(id));
        assert.ok(TrustDomain.fromString(s).equals(td));
      }),
      { numRuns: 1000 },
    );
  });
});
