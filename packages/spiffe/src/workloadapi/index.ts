/**
 * The SPIFFE Workload API: endpoint addresses, the client, and the live X.509, JWT and bundle sources.
 *
 * @module
 */
export {
  type EndpointAddress,
  parseEndpointAddress,
  resolveEndpointAddress,
  SPIFFE_ENDPOINT_SOCKET,
  type TcpEndpointAddress,
  type UnixEndpointAddress,
} from './address.js';
export {
  abortableSleep,
  type Backoff,
  type BackoffStrategy,
  type LinearBackoffOptions,
  linearBackoff,
} from './backoff.js';
export { BundleSource, type BundleSourceOptions } from './bundle-source.js';
export {
  type CallOptions,
  type JwtBundlesWatcher,
  type Logger,
  type WatchOptions,
  WorkloadApiClient,
  type WorkloadApiClientOptions,
  type X509BundlesWatcher,
  type X509ContextWatcher,
} from './client.js';
/**
 * Wire-level Workload API: the grpc-js service definition (package-less `SpiffeWorkloadAPI`,
 * paths `/SpiffeWorkloadAPI/<RPC>`) and its message types, for Workload API servers and test fakes.
 */
export {
  type JWTBundlesRequest,
  type JWTBundlesResponse,
  type JWTSVID,
  type JWTSVIDRequest,
  type JWTSVIDResponse,
  type SpiffeWorkloadAPIServer,
  SpiffeWorkloadAPIService,
  type ValidateJWTSVIDRequest,
  type ValidateJWTSVIDResponse,
  type X509BundlesRequest,
  type X509BundlesResponse,
  type X509SVID,
  type X509SVIDRequest,
  type X509SVIDResponse,
} from './gen/spiffe/workload.js';
export { JwtSource, type JwtSourceOptions } from './jwt-source.js';
export { type Attestation, RemoteAttestationClient, type RemoteSourceOptions } from './remote.js';
export type { X509Context } from './x509-context.js';
export { type SourceClientOptions, X509Source, type X509SourceOptions } from './x509-source.js';
