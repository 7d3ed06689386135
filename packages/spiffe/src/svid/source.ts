/**
 * Source interfaces for SVIDs.
 *
 * @module
 */
import type { X509Svid } from './x509-svid.js';

/**
 * A source of the current X509-SVID: an {@link X509Svid} itself, or a live `X509Source` from
 * `@tessera/spiffe/workloadapi` that follows rotation. TLS helpers take a source, never a client.
 *
 * @example
 * ```ts
 * function currentId(source: X509SvidSource): string {
 *   return source.getX509Svid().id.toString();
 * }
 * ```
 */
export interface X509SvidSource {
  /**
   * Returns the current X509-SVID.
   *
   * @throws {SpiffeError} e.g. ERR_SOURCE_CLOSED from a closed live source
   */
  getX509Svid(): X509Svid;
}
