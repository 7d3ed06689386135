import type { X509Certificate } from 'node:crypto';
import { isSpiffeError, TlsError } from '../errors.js';
import { type Matcher, SpiffeId, TrustDomain } from '../spiffeid/index.js';

/**
 * A decision on a peer whose X509-SVID has already been verified: returns when the peer is allowed,
 * throws {@link TlsError} `ERR_TLS_AUTHORIZATION_FAILED` otherwise. It runs after chain verification,
 * never instead of it. `verifiedChains` are the chains (leaf first, root last) that verification built.
 *
 * Implements go-spiffe's `tlsconfig.Authorizer`.
 *
 * @throws {TlsError} ERR_TLS_AUTHORIZATION_FAILED when the peer is refused
 * @example
 * ```ts
 * const authorizer: Authorizer = authorizeId(SpiffeId.require('spiffe://example.org/db'));
 * ```
 */
export type Authorizer = (id: SpiffeId, verifiedChains: readonly (readonly X509Certificate[])[]) => void;

function refused(message: string, cause?: unknown): TlsError {
  return new TlsError(
    'ERR_TLS_AUTHORIZATION_FAILED',
    `tls: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function requireId(id: unknown): asserts id is SpiffeId {
  if (!(id instanceof SpiffeId)) throw new TypeError('tls: authorizer expects a SpiffeId');
}

/**
 * An authorizer that allows any peer whose X509-SVID verified (against its own trust domain's bundle).
 *
 * @example
 * ```ts
 * const options = tlsClientOptions(bundles, authorizeAny());
 * ```
 */
export function authorizeAny(): Authorizer {
  return (id) => {
    requireId(id);
  };
}

/**
 * An authorizer that allows exactly the peer `expected`.
 *
 * @throws {TlsError} ERR_TLS_AUTHORIZATION_FAILED `tls: unexpected ID "<id>"` when another peer is seen
 * @example
 * ```ts
 * authorizeId(SpiffeId.require('spiffe://example.org/db'));
 * ```
 */
export function authorizeId(expected: SpiffeId): Authorizer {
  if (!(expected instanceof SpiffeId)) throw new TypeError('tls: authorizeId expects a SpiffeId');
  return (id) => {
    requireId(id);
    if (!id.equals(expected)) throw refused(`unexpected ID "${id.toString()}"`);
  };
}

/**
 * An authorizer that allows any of the peers `expected` (none given: allows nobody).
 *
 * @throws {TlsError} ERR_TLS_AUTHORIZATION_FAILED `tls: unexpected ID "<id>"` when another peer is seen
 * @example
 * ```ts
 * authorizeOneOf(SpiffeId.require('spiffe://example.org/a'), SpiffeId.require('spiffe://example.org/b'));
 * ```
 */
export function authorizeOneOf(...expected: SpiffeId[]): Authorizer {
  const allowed = new Set<string>();
  for (const e of expected) {
    if (!(e instanceof SpiffeId)) throw new TypeError('tls: authorizeOneOf expects SpiffeIds');
    allowed.add(e.toString());
  }
  return (id) => {
    requireId(id);
    if (!allowed.has(id.toString())) throw refused(`unexpected ID "${id.toString()}"`);
  };
}

/**
 * An authorizer that allows any peer of trust domain `td`.
 *
 * @throws {TlsError} ERR_TLS_AUTHORIZATION_FAILED `tls: unexpected trust domain "<td>"` for other domains
 * @example
 * ```ts
 * authorizeMemberOf(TrustDomain.fromString('example.org'));
 * ```
 */
export function authorizeMemberOf(td: TrustDomain): Authorizer {
  if (!(td instanceof TrustDomain)) throw new TypeError('tls: authorizeMemberOf expects a TrustDomain');
  return (id) => {
    requireId(id);
    if (!id.memberOf(td)) throw refused(`unexpected trust domain "${id.trustDomain.name}"`);
  };
}

/**
 * An authorizer built from a {@link Matcher} of `@tessera/spiffe/spiffeid` (go-spiffe's `AdaptMatcher`).
 * A matcher refusal (`ERR_MATCHER_MISMATCH`) becomes `ERR_TLS_AUTHORIZATION_FAILED` with the matcher's
 * error as `cause`; any other exception thrown by the matcher refuses the peer the same way.
 *
 * @throws {TlsError} ERR_TLS_AUTHORIZATION_FAILED `tls: <matcher message>` when the matcher refuses the peer
 * @example
 * ```ts
 * adaptMatcher(matchMemberOf(TrustDomain.fromString('example.org')));
 * ```
 */
export function adaptMatcher(matcher: Matcher): Authorizer {
  if (typeof matcher !== 'function') throw new TypeError('tls: adaptMatcher expects a function');
  return (id) => {
    requireId(id);
    try {
      matcher(id);
    } catch (err) {
      if (isSpiffeError(err, 'ERR_MATCHER_MISMATCH'))
        throw refused(err.message.replace(/^spiffeid: /, ''), err);
      throw refused(`matcher refused ID "${id.toString()}"`, err);
    }
  };
}

/**
 * An authorizer that allows the peers whose ID satisfies `test`. Extension over go-spiffe (which only
 * has `AdaptMatcher`): `test` is a predicate that must return exactly `true` to allow (any other result,
 * or an exception, refuses: a {@link Matcher} passed here by mistake therefore refuses everyone; use
 * {@link adaptMatcher} for matchers), or a `RegExp` tested against the whole ID string (anchor it:
 * `/^spiffe:\/\/example\.org\/ns\/[a-z]+$/`).
 *
 * @throws {TlsError} ERR_TLS_AUTHORIZATION_FAILED `tls: unexpected ID "<id>"` when `test` refuses the peer
 * @example
 * ```ts
 * authorizeMatching((id) => id.memberOf(td) && id.path.startsWith('/ns/prod/'));
 * authorizeMatching(/^spiffe:\/\/example\.org\/ns\/prod\/[^/]+$/);
 * ```
 */
export function authorizeMatching(test: RegExp | ((id: SpiffeId) => boolean)): Authorizer {
  if (test instanceof RegExp) {
    // A fresh, non-stateful copy: a /g or /y RegExp would otherwise carry lastIndex between peers.
    const re = new RegExp(test.source, test.flags.replace(/[gy]/g, ''));
    return (id) => {
      requireId(id);
      if (!re.test(id.toString())) throw refused(`unexpected ID "${id.toString()}"`);
    };
  }
  if (typeof test !== 'function')
    throw new TypeError('tls: authorizeMatching expects a predicate or a RegExp');
  return (id) => {
    requireId(id);
    let ok: unknown;
    try {
      ok = test(id);
    } catch (err) {
      throw refused(`unexpected ID "${id.toString()}"`, err);
    }
    if (ok !== true) throw refused(`unexpected ID "${id.toString()}"`);
  };
}
