import type { TrustDomain } from '../spiffeid/trust-domain.js';
import type { JwtBundle } from './jwt-bundle.js';
import type { X509Bundle } from './x509-bundle.js';

/**
 * A source of X.509 bundles keyed by trust domain. Verifiers take sources, never clients, so a static
 * {@link X509Bundle}, a {@link BundleSet} or a live Workload API source can be passed.
 *
 * @example
 * ```ts
 * const bundle = source.getX509BundleForTrustDomain(TrustDomain.fromString('example.org'));
 * ```
 */
export interface X509BundleSource {
  /**
   * Returns the X.509 bundle of `td`.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND when the source has no X.509 bundle for `td`
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle;
}

/**
 * A source of JWT bundles keyed by trust domain.
 *
 * @example
 * ```ts
 * const key = source.getJwtBundleForTrustDomain(td).findJwtAuthority(kid);
 * ```
 */
export interface JwtBundleSource {
  /**
   * Returns the JWT bundle of `td`.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND when the source has no JWT bundle for `td`
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle;
}
