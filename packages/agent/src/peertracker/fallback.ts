/**
 * Peer credential reader for platforms without a supported implementation: it refuses every connection, so no
 * workload is ever attested from unverified data.
 *
 * @module
 */
import type { PeerCredentialReader } from './peertracker.js';

/**
 * A reader that refuses every peer.
 *
 * @example
 * const reader = createFallbackPeerCredentialReader();
 */
export function createFallbackPeerCredentialReader(
  platform: string = process.platform,
): PeerCredentialReader {
  return {
    name: 'unsupported',
    read() {
      throw new Error(`peertracker: peer credentials are not supported on "${platform}"`);
    },
  };
}
