/**
 * @tessera/spiffe: SPIFFE for Node.js. Import from the subpaths (`@tessera/spiffe/spiffeid`,
 * `/bundle`, `/svid`, `/workloadapi`, `/tls`, `/federation`, `/errors`); this root re-exports the errors.
 *
 * @module
 */
export {
  type AnySpiffeError,
  BundleError,
  ConfigError,
  DatastoreError,
  FederationError,
  isSpiffeError,
  JwtSvidError,
  SpiffeError,
  type SpiffeErrorCode,
  SpiffeIdError,
  TlsError,
  WorkloadApiError,
  X509SvidError,
} from './errors.js';
