/**
 * Chooses the platform's peer credential reader: the one place that looks at `process.platform`.
 *
 * @module
 */
import { createFallbackPeerCredentialReader } from './fallback.js';
import { createLinuxPeerCredentialReader } from './linux.js';
import type { PeerCredentialReader } from './peertracker.js';

/** The peer credential reader for this platform (Linux: the addon; elsewhere: one that refuses every peer). */
export function defaultPeerCredentialReader(): PeerCredentialReader {
  return process.platform === 'linux'
    ? createLinuxPeerCredentialReader()
    : createFallbackPeerCredentialReader();
}
