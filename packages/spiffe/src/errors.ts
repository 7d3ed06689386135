/**
 * Errors raised by @tessera/spiffe. Every failure caused by bad input is a {@link SpiffeError}
 * with a stable `code`; programmer misuse throws `TypeError` or `RangeError` instead.
 *
 * @module
 */

/** Every error code the library can raise. Codes are stable API: adding one is minor, renaming one is major. */
export type SpiffeErrorCode =
  | 'ERR_SPIFFEID_INVALID'
  | 'ERR_TRUST_DOMAIN_INVALID'
  | 'ERR_MATCHER_MISMATCH'
  | 'ERR_BUNDLE_INVALID'
  | 'ERR_BUNDLE_NOT_FOUND'
  | 'ERR_X509SVID_INVALID'
  | 'ERR_X509SVID_VERIFY_FAILED'
  | 'ERR_JWTSVID_INVALID'
  | 'ERR_JWTSVID_EXPIRED'
  | 'ERR_JWTSVID_AUDIENCE'
  | 'ERR_WORKLOADAPI_ADDRESS_INVALID'
  | 'ERR_WORKLOADAPI_UNAVAILABLE'
  | 'ERR_WORKLOADAPI_PERMISSION_DENIED'
  | 'ERR_WORKLOADAPI_INVALID_ARGUMENT'
  | 'ERR_WORKLOADAPI_UNIMPLEMENTED'
  | 'ERR_WORKLOADAPI_INVALID_RESPONSE'
  | 'ERR_WORKLOADAPI_FAILED'
  | 'ERR_WORKLOAD_ATTESTATION_FAILED'
  | 'ERR_SOURCE_CLOSED'
  | 'ERR_TLS_AUTHORIZATION_FAILED'
  | 'ERR_TLS_NO_PEER_CERTIFICATE'
  | 'ERR_FEDERATION_FAILED'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_DATASTORE_NOT_FOUND'
  | 'ERR_DATASTORE_CONFLICT'
  | 'ERR_DATASTORE_INVALID'
  | 'ERR_DATASTORE_FAILED'
  | 'ERR_CA_INVALID'
  | 'ERR_CA_PRECONDITION'
  | 'ERR_CA_UPSTREAM_FAILED'
  | 'ERR_KEYMANAGER_FAILED'
  | 'ERR_NODE_ATTESTATION_INVALID'
  | 'ERR_NODE_ATTESTATION_FAILED'
  | 'ERR_CLI_USAGE'
  | 'ERR_SVIDSTORE_INVALID'
  | 'ERR_SVIDSTORE_NOT_OWNED'
  | 'ERR_SVIDSTORE_FAILED';

/** Base class of every error the library raises for bad input. */
export class SpiffeError extends Error {
  /** Stable, machine-readable code of the failure. */
  readonly code: SpiffeErrorCode;

  constructor(code: SpiffeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An invalid SPIFFE ID, trust domain, or a SPIFFE ID that a matcher refused. */
export class SpiffeIdError extends SpiffeError {}
/** A bundle that cannot be parsed, or one that is not found for a trust domain. */
export class BundleError extends SpiffeError {}
/** An X509-SVID that cannot be parsed or does not verify. */
export class X509SvidError extends SpiffeError {}
/** A JWT-SVID that cannot be parsed or does not validate. */
export class JwtSvidError extends SpiffeError {}
/** A Workload API failure: bad address, status from the endpoint, invalid response, closed source. */
export class WorkloadApiError extends SpiffeError {}
/** A peer refused by TLS verification or authorization. */
export class TlsError extends SpiffeError {}
/** A federation bundle endpoint failure. */
export class FederationError extends SpiffeError {}
/** An invalid configuration. */
export class ConfigError extends SpiffeError {}
/** A datastore failure (not found, conflict). */
export class DatastoreError extends SpiffeError {}

/** Discriminated union of the library's errors, so that `switch (err.code)` narrows. */
export type AnySpiffeError =
  | SpiffeIdError
  | BundleError
  | X509SvidError
  | JwtSvidError
  | WorkloadApiError
  | TlsError
  | FederationError
  | ConfigError
  | DatastoreError;

/** Tells whether `err` is a {@link SpiffeError}, optionally of one code. */
export function isSpiffeError(err: unknown, code?: SpiffeErrorCode): err is SpiffeError {
  return err instanceof SpiffeError && (code === undefined || err.code === code);
}
