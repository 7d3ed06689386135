import { SpiffeIdError } from '../errors.js';
import { SpiffeId } from './spiffe-id.js';
import { TrustDomain } from './trust-domain.js';

/**
 * A check of a peer's SPIFFE ID: returns when the ID is acceptable, throws {@link SpiffeIdError}
 * `ERR_MATCHER_MISMATCH` otherwise. Authorizers in `@tessera/spiffe/tls` adapt matchers.
 *
 * @example
 * ```ts
 * const m: Matcher = matchMemberOf(TrustDomain.fromString('example.org'));
 * m(SpiffeId.fromString('spiffe://example.org/a')); // ok
 * ```
 */
export type Matcher = (id: SpiffeId) => void;

function mismatch(message: string): SpiffeIdError {
  return new SpiffeIdError('ERR_MATCHER_MISMATCH', `spiffeid: ${message}`);
}

function requireId(id: unknown): asserts id is SpiffeId {
  if (!(id instanceof SpiffeId)) throw new TypeError('spiffeid: matcher expects a SpiffeId');
}

/**
 * A matcher that accepts any SPIFFE ID.
 *
 * @example
 * ```ts
 * matchAny()(SpiffeId.fromString('spiffe://example.org/a')); // ok
 * ```
 */
export function matchAny(): Matcher {
  return (id) => {
    requireId(id);
  };
}

/**
 * A matcher that accepts exactly `expected`.
 *
 * @throws {SpiffeIdError} ERR_MATCHER_MISMATCH `spiffeid: unexpected ID "<id>"` when the matcher refuses an ID
 * @example
 * ```ts
 * matchId(SpiffeId.fromString('spiffe://example.org/db'));
 * ```
 */
export function matchId(expected: SpiffeId): Matcher {
  if (!(expected instanceof SpiffeId)) throw new TypeError('spiffeid: matchId expects a SpiffeId');
  return (id) => {
    requireId(id);
    if (!id.equals(expected)) throw mismatch(`unexpected ID "${id.toString()}"`);
  };
}

/**
 * A matcher that accepts any of `expected` (none given: accepts nothing).
 *
 * @throws {SpiffeIdError} ERR_MATCHER_MISMATCH `spiffeid: unexpected ID "<id>"` when the matcher refuses an ID
 * @example
 * ```ts
 * matchOneOf(SpiffeId.fromString('spiffe://example.org/a'), SpiffeId.fromString('spiffe://example.org/b'));
 * ```
 */
export function matchOneOf(...expected: SpiffeId[]): Matcher {
  const set = new Set<string>();
  for (const e of expected) {
    if (!(e instanceof SpiffeId)) throw new TypeError('spiffeid: matchOneOf expects SpiffeIds');
    set.add(e.toString());
  }
  return (id) => {
    requireId(id);
    if (!set.has(id.toString())) throw mismatch(`unexpected ID "${id.toString()}"`);
  };
}

/**
 * A matcher that accepts any ID of trust domain `td`.
 *
 * @throws {SpiffeIdError} ERR_MATCHER_MISMATCH `spiffeid: unexpected trust domain "<td>"` when it refuses an ID
 * @example
 * ```ts
 * matchMemberOf(TrustDomain.fromString('example.org'));
 * ```
 */
export function matchMemberOf(td: TrustDomain): Matcher {
  if (!(td instanceof TrustDomain)) throw new TypeError('spiffeid: matchMemberOf expects a TrustDomain');
  return (id) => {
    requireId(id);
    if (!id.memberOf(td)) throw mismatch(`unexpected trust domain "${id.trustDomain.name}"`);
  };
}
