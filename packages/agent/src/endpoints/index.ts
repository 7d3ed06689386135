/**
 * The agent's public endpoints: the SPIFFE Workload API and Envoy SDS v3 on the public Unix socket.
 *
 * @module
 */
export {
  createWorkloadEndpoints,
  type EndpointsAttestor,
  type WorkloadEndpoints,
  type WorkloadEndpointsConfig,
} from './endpoints.js';
export {
  type CallMetricsHooks,
  type CallName,
  callNameOf,
  createCallMetricsInterceptor,
  statusName,
} from './metrics.js';
export {
  buildSecrets,
  createSdsHandlers,
  type SdsHandlerOptions,
  type SdsOptions,
  SecretDiscoveryServiceDefinition,
} from './sds/handler.js';
export { type EndpointsLogger, grpcError, LatestStatePump, nullLogger } from './stream.js';
export {
  type AttestableCall,
  type CallerAttestation,
  createWorkloadApiHandlers,
  hasSecurityHeader,
  jwtBundlesResponse,
  SECURITY_HEADER,
  validatedClaims,
  type WorkloadApiHandlerOptions,
  x509BundlesResponse,
  x509SvidResponse,
} from './workload/handler.js';
