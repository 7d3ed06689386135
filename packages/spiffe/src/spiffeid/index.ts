/**
 * SPIFFE IDs and trust domains (SPIFFE-ID standard), and matchers over SPIFFE IDs.
 *
 * @module
 */
export { type Matcher, matchAny, matchId, matchMemberOf, matchOneOf } from './match.js';
export { joinPathSegments, SpiffeId, validatePath, validatePathSegment } from './spiffe-id.js';
export { TrustDomain } from './trust-domain.js';
