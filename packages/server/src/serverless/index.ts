/**
 * Serverless remote attestation: functions present platform identity tokens (gcp_iit, aws_token, azure_msi) and
 * receive SVIDs when a policy is satisfied. HTTP+JSON and gRPC on one TLS listener.
 *
 * @module
 */
export {
  type AttestorContext,
  type AttestorFactory,
  ConfigReader,
  type PolicyIssue,
} from './attestors/attestor.js';
export { AWS_CLAIMS_NAMESPACE, awsTokenAttestor } from './attestors/aws-token.js';
export { azureIssuer, azureMsiAttestor } from './attestors/azure-msi.js';
export { GOOGLE_ISSUER, gcpIitAttestor } from './attestors/gcp-iit.js';
export {
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_RATE_LIMIT,
  type ServerlessEndpoint,
  type ServerlessEndpointConfig,
  type ServerlessTls,
  startServerlessEndpoint,
} from './endpoint.js';
export { createRemoteAttestationService } from './grpc.js';
export { createHttpHandler, HTTP_PATHS, type HttpHandlerOptions } from './http.js';
export {
  discoveryUrl,
  fetchJson,
  type JwksLocation,
  JwksRegistry,
  type JwksRegistryOptions,
} from './jwks.js';
export {
  type RunningServerless,
  type ServerlessSettings,
  type StartServerlessOptions,
  startServerless,
} from './mount.js';
export {
  ATTESTOR_FACTORIES,
  compilePolicies,
  PathTemplate,
  type PolicyCompileContext,
  type PolicyCompileResult,
  parsePolicies,
  type ServerlessPolicy,
} from './policy.js';
export { PolicyFile, type PolicyFileOptions, type PolicySource } from './policy-file.js';
export { ClientRateLimiter, type ClientRateLimiterOptions } from './rate-limit.js';
export { ReplayCache, type ReplayCacheOptions } from './replay.js';
export {
  type AttestationInput,
  type BundleGrant,
  createServerlessService,
  type JwtSvidGrant,
  type RequestMeta,
  type ServerlessCa,
  type ServerlessService,
  type ServerlessServiceConfig,
  validateAttestations,
  type X509SvidGrant,
} from './service.js';
export {
  ALLOWED_ALGORITHMS,
  MAX_TOKEN_LENGTH,
  TOKEN_LEEWAY_SECONDS,
  type VerifiedToken,
  verifyToken,
} from './token.js';
export {
  type AttestedAttributes,
  type Attestor,
  type AttestorResult,
  type DenialCode,
  type ServerlessClock,
  ServerlessDenial,
  type ServerlessLogger,
} from './types.js';
