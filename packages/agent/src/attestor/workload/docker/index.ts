/**
 * The `docker` (cgroup) workload attestor.
 *
 * @module
 */
export {
  type CgroupContainerInfo,
  createDockerAttestor,
  type DockerAttestorConfig,
  parseCgroupContainerInfo,
} from './docker.js';
