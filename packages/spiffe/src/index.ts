/**
 * @tessera/spiffe: SPIFFE for Node.js. Import from the subpaths (`@tessera/spiffe/spiffeid`,
 * `/bundle`, `/svid`, `/workloadapi`, `/tls`, `/tls/undici`, `/tls/grpc`, `/errors`); this root re-exports
 * the errors only, so that importing it never loads @grpc/grpc-js or undici.
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
