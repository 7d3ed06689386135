/**
 * The `unix` workload attestor.
 *
 * @module
 */
export {
  createUnixAttestor,
  DEFAULT_WORKLOAD_SIZE_LIMIT,
  type ProcStatusIds,
  parseIdNameDatabase,
  parseProcStatus,
  type UnixAttestorConfig,
} from './unix.js';
