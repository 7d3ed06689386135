/**
 * SPIFFE bundles: X.509 and JWT authorities of trust domains, the SPIFFE bundle (JWK Set) format, bundle maps,
 * sets keyed by trust domain, and the source interfaces verifiers consume.
 *
 * @module
 */

export { marshalBundleMap, parseBundleMap } from './bundle-map.js';
export { type AnyBundle, BundleSet } from './bundle-set.js';
export { JwtBundle, type JwtBundleParseOptions } from './jwt-bundle.js';
export type { JwtBundleSource, X509BundleSource } from './source.js';
export { SpiffeBundle, type SpiffeBundleParseOptions, type SpiffeBundleParts } from './spiffe-bundle.js';
export { X509Bundle } from './x509-bundle.js';
