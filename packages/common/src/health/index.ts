/** HTTP liveness/readiness/metrics listener and its probe. @module */
export {
  type HealthCheck,
  type HealthProbeResult,
  type HealthServer,
  type HealthServerOptions,
  type HealthStatus,
  probeHealth,
  startHealthServer,
} from './server.js';
