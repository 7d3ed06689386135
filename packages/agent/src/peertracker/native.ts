/**
 * Loader of the peer-credentials N-API addon (packages/agent/native, built by node-gyp at install).
 *
 * @module
 */
import { createRequire } from 'node:module';

/** The functions of the native addon (see native/peercred.c). Errors carry the errno name as `code`. */
export interface PeerCredAddon {
  /** getsockopt(SO_PEERCRED) on a connected Unix socket. */
  getPeerCred(fd: number): { pid: number; uid: number; gid: number };
  /** A pidfd for the socket's peer (SO_PEERPIDFD, else pidfd_open(pid)), or -1 when the kernel has neither. */
  getPeerPidfd(fd: number): number;
  /** pidfd_open(pid), or -1 when the kernel lacks it. */
  pidfdOpen(pid: number): number;
  /** Whether the process behind `pidfd` is still running (a pidfd polls readable once it exits). */
  pidfdIsAlive(pidfd: number): boolean;
  /** close(2). */
  closeFd(fd: number): void;
}

let cached: PeerCredAddon | undefined;

/**
 * Loads the addon once.
 *
 * @throws {Error} when the addon was not built (run `npm rebuild @tessera/agent` or `npm ci`).
 */
export function loadPeerCredAddon(): PeerCredAddon {
  if (cached !== undefined) return cached;
  const require = createRequire(import.meta.url);
  // dist/peertracker/native.js -> ../../native/build/Release
  const path = new URL('../../native/build/Release/tessera_peercred.node', import.meta.url).pathname;
  try {
    cached = require(path) as PeerCredAddon;
  } catch (err) {
    throw new Error(
      `peertracker: cannot load the peer credentials addon "${path}" (was it built? run "npm rebuild -w @tessera/agent")`,
      { cause: err },
    );
  }
  return cached;
}
