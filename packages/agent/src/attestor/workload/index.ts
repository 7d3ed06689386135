/**
 * Workload attestation: the attestor and its plugins.
 *
 * @module
 */
export {
  type CgroupContainerInfo,
  createDockerAttestor,
  type DockerAttestorConfig,
  parseCgroupContainerInfo,
} from './docker/index.js';
export {
  createUnixAttestor,
  DEFAULT_WORKLOAD_SIZE_LIMIT,
  type ProcStatusIds,
  parseIdNameDatabase,
  parseProcStatus,
  type UnixAttestorConfig,
} from './unix/index.js';
export {
  createWorkloadAttestor,
  type WorkloadAttestor,
  type WorkloadAttestorConfig,
  type WorkloadAttestorPlugin,
  type WorkloadSelector,
} from './workload-attestor.js';
