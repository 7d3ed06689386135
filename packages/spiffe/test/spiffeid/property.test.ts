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

/** An independent, split-based reading of SPIFFE-ID §2 used as an oracle. */
function referenceValid(s: string): boolean {
  if (!s.startsWith('spiffe://')) return false;
  const rest = s.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (td === '' || [...td].some((ch) => !'abcdefghijklmnopqrstuvwxyz0123456789.-_'.includes(ch)))
    return false;
  if (slash < 0) return true;
  return rest
    .slice(slash + 1)
    .split('/')
    .every(
      (seg) =>
        seg !== '' && seg !== '.' && seg !== '..' && [...seg].every((ch) => /^[a-zA-Z0-9._-]$/.test(ch)),
    );
}

// Strings close to valid IDs: the scheme (sometimes damaged) followed by a mix of meaningful characters.
const nearId = fc
  .tuple(
    fc.constantFrom('spiffe://', 'spiffe://', 'spiffe:/', 'SPIFFE://', ''),
    fc.string({
      unit: fc.constantFrom('a', 'Z', '0', '.', '.', '-', '_', '/', '/', '%', ':', '@', '?', '#', 'é', '\n'),
      maxLength: 24,
    }),
  )
  .map(([scheme, body]) => scheme + body);

describe('SPIFFE ID properties', () => {
  it('agrees with an independent reference validator on near-valid strings', () => {
    fc.assert(
      fc.property(nearId, (s) => {
        assert.equal(SpiffeId.isValid(s), referenceValid(s), s);
        let parsed = true;
        try {
          SpiffeId.fromString(s);
        } catch {
          parsed = false;
        }
        assert.equal(parsed, referenceValid(s), s);
      }),
      { numRuns: 5000 },
    );
  });

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
