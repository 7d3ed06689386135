/**
 * The agent's identity manager and its persistence.
 *
 * @module
 */
export {
  IdentityManager,
  type IdentityManagerConfig,
  loadBootstrapBundle,
  type ManagerLogger,
  type ManagerMetrics,
  type ManagerServerClient,
} from './manager.js';
export type {
  IdentitySnapshot,
  IdentitySubscription,
  WorkloadIdentityProvider,
  WorkloadJwtSvid,
  WorkloadSelector,
  WorkloadX509Svid,
} from './provider.js';
export {
  AGENT_STATE_FILE,
  AgentStorage,
  ensurePrivateDir,
  type StoredAgentState,
  type StoredCache,
  type StoredEntry,
  type StoredSvid,
  SVID_CACHE_FILE,
  writeFileAtomic,
} from './storage.js';
