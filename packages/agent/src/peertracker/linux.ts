/**
 * Linux peer credential reader: SO_PEERCRED for pid/uid/gid, and a pidfd (SO_PEERPIDFD, else pidfd_open right
 * after SO_PEERCRED) to detect that the peer exited even if its PID is reused. Without pidfds (Linux < 5.3),
 * liveness falls back to comparing the process start time in /proc/<pid>/stat.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { loadPeerCredAddon, type PeerCredAddon } from './native.js';
import { type PeerCredentialReader, socketFd, type TrackedPeer } from './peertracker.js';

/**
 * How the reader pins the peer process:
 * - `auto`: SO_PEERPIDFD where the kernel has it, else pidfd_open(pid), else the /proc start time;
 * - `pidfd-open`: always pidfd_open(pid) after SO_PEERCRED (a small PID-reuse race, see native/peercred.c);
 * - `proc-start-time`: no pidfd, compare /proc/<pid>/stat start times (for kernels without pidfds).
 */
export type PidPinning = 'auto' | 'pidfd-open' | 'proc-start-time';

/** Options of {@link createLinuxPeerCredentialReader}. */
export interface LinuxPeerCredentialReaderConfig {
  /** How to pin the peer process (default `auto`). */
  pinning?: PidPinning;
  /** Root of procfs (default `/proc`). */
  procRoot?: string;
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * The process start time (clock ticks since boot, field 22 of /proc/<pid>/stat), or `undefined` when the
 * process does not exist, has exited (a zombie) or cannot be read (deny by default).
 */
export function readProcStartTime(pid: number, procRoot = '/proc'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(`${procRoot}/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may contain spaces and ')': split after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): a dead (X) process has exited, and so has a zombie (Z) unless other threads of it
  // still run (its main thread called pthread_exit: /proc shows Z, a pidfd reports it alive).
  if (rest[0] === 'X' || (rest[0] === 'Z' && threadCount(pid, procRoot) <= 1)) return undefined;
  // Field 22 is rest[19].
  const start = rest[19];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** The `Threads:` count of /proc/<pid>/status (0 when it cannot be read). */
function threadCount(pid: number, procRoot: string): number {
  try {
    const m = /\nThreads:\s*(\d+)/.exec(readFileSync(`${procRoot}/${pid}/status`, 'latin1'));
    return m === null ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

const dead = (): boolean => false;

function pidfdPeer(
  addon: PeerCredAddon,
  cred: { pid: number; uid: number; gid: number },
  pidfd: number,
): TrackedPeer {
  let open = true;
  return {
    pid: cred.pid,
    uid: cred.uid,
    gid: cred.gid,
    pidfd,
    isAlive() {
      return open && addon.pidfdIsAlive(pidfd);
    },
    close() {
      if (!open) return;
      open = false;
      addon.closeFd(pidfd);
    },
  };
}

function plainPeer(cred: { pid: number; uid: number; gid: number }, isAlive: () => boolean): TrackedPeer {
  let open = true;
  return {
    pid: cred.pid,
    uid: cred.uid,
    gid: cred.gid,
    isAlive: () => open && isAlive(),
    close() {
      open = false;
    },
  };
}

/**
 * The Linux reader, backed by the native addon.
 *
 * A peer whose PID is not visible from the agent's PID namespace (pid 0), or that already exited when the
 * connection is accepted, is tracked with `isAlive()` false, so it cannot be attested.
 *
 * @throws {Error} when the native addon cannot be loaded.
 * @example
 * const reader = createLinuxPeerCredentialReader();
 * const peer = reader.read(socket); // { pid, uid, gid, pidfd, isAlive() }
 */
export function createLinuxPeerCredentialReader(
  config: LinuxPeerCredentialReaderConfig = {},
): PeerCredentialReader {
  const addon = loadPeerCredAddon();
  const pinning = config.pinning ?? 'auto';
  const procRoot = config.procRoot ?? '/proc';
  return {
    name: 'linux',
    read(socket: Socket): TrackedPeer {
      const fd = socketFd(socket);
      const cred = addon.getPeerCred(fd);
      if (cred.pid === 0) return plainPeer(cred, dead);
      let pidfd = -1;
      if (pinning !== 'proc-start-time') {
        try {
          pidfd = pinning === 'auto' ? addon.getPeerPidfd(fd) : addon.pidfdOpen(cred.pid);
        } catch (err) {
          // ESRCH: the peer already exited; it can never be attested.
          if (errnoCode(err) === 'ESRCH') return plainPeer(cred, dead);
          throw err;
        }
      }
      if (pidfd >= 0) return pidfdPeer(addon, cred, pidfd);
      const start = readProcStartTime(cred.pid, procRoot);
      if (start === undefined) return plainPeer(cred, dead);
      return plainPeer(cred, () => readProcStartTime(cred.pid, procRoot) === start);
    },
  };
}
