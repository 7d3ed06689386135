/**
 * The agent's peer tracker: kernel-provided credentials of Workload API callers.
 *
 * @module
 */
export { createFallbackPeerCredentialReader } from './fallback.js';
export {
  createLinuxPeerCredentialReader,
  type LinuxPeerCredentialReaderConfig,
  type PidPinning,
  readProcStartTime,
} from './linux.js';
export {
  createPeerTrackingServer,
  type PeerCredentialReader,
  type PeerInfo,
  type PeerTrackingServer,
  type PeerTrackingServerConfig,
  peerInfoOf,
  peerInfoOfSocket,
  socketFd,
  type TrackedPeer,
} from './peertracker.js';
export { defaultPeerCredentialReader } from './platform.js';
