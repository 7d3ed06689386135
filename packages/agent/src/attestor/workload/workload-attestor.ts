/**
 * Workload attestation: selectors for the process behind a Workload API connection, from the kernel only.
 *
 * @module
 */
import { WorkloadApiError } from '@tessera/spiffe/errors';
import type { PeerInfo } from '../../peertracker/peertracker.js';

/** A selector (`type` is the attestor name, `value` the rest: `unix` / `uid:1000`). */
export interface WorkloadSelector {
  readonly type: string;
  readonly value: string;
}

/** A workload attestor plugin: selectors for a PID, read from /proc (never from the caller). */
export interface WorkloadAttestorPlugin {
  /** Selector type it produces (`unix`, `docker`). */
  readonly name: string;
  /**
   * Selectors of process `pid`.
   *
   * @throws {WorkloadApiError} ERR_WORKLOAD_ATTESTATION_FAILED when the process cannot be inspected.
   */
  attest(pid: number): Promise<WorkloadSelector[]>;
}

/** Options of {@link createWorkloadAttestor}. */
export interface WorkloadAttestorConfig {
  /** The plugins to run; their selectors are combined. */
  plugins: readonly WorkloadAttestorPlugin[];
}

/** Attests the peer of a Workload API connection. */
export interface WorkloadAttestor {
  /**
   * Selectors of the peer process: every plugin's, deduplicated, in plugin order.
   *
   * @throws {WorkloadApiError} ERR_WORKLOAD_ATTESTATION_FAILED when the peer exited (before or during
   * attestation: its PID may have been reused) or a plugin failed.
   */
  attest(peer: PeerInfo): Promise<WorkloadSelector[]>;
}

function gone(pid: number): WorkloadApiError {
  return new WorkloadApiError(
    'ERR_WORKLOAD_ATTESTATION_FAILED',
    `workload attestation: caller process "${pid}" has exited (its pid may have been reused)`,
  );
}

/**
 * Creates the workload attestor. It refuses a peer that is not alive, runs every plugin, then checks again
 * that the peer is alive, so that selectors read from a reused PID's /proc entry are never returned.
 *
 * @example
 * const attestor = createWorkloadAttestor({ plugins: [createUnixAttestor(), createDockerAttestor()] });
 * const selectors = await attestor.attest(peerInfoOf(call)!);
 */
export function createWorkloadAttestor(config: WorkloadAttestorConfig): WorkloadAttestor {
  const plugins = [...config.plugins];
  return {
    async attest(peer) {
      if (peer.pid <= 0 || !peer.isAlive()) throw gone(peer.pid);
      const results = await Promise.all(
        plugins.map(async (p) => {
          try {
            return await p.attest(peer.pid);
          } catch (err) {
            if (err instanceof WorkloadApiError) throw err;
            throw new WorkloadApiError(
              'ERR_WORKLOAD_ATTESTATION_FAILED',
              `workload attestation: attestor "${p.name}" failed for pid "${peer.pid}"`,
              { cause: err },
            );
          }
        }),
      );
      // Read /proc first, check liveness after: a PID reused in between is caught here.
      if (!peer.isAlive()) throw gone(peer.pid);
      const seen = new Set<string>();
      const out: WorkloadSelector[] = [];
      for (const list of results) {
        for (const s of list) {
          const key = `${s.type}\u0000${s.value}`;
          if (seen.has(key)) continue;
          seen.add(key);
          out.push(s);
        }
      }
      return out;
    },
  };
}
