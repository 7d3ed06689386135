/**
 * The `docker` (cgroup) workload attestor: the container ID and Kubernetes pod UID of a process, read from
 * /proc/<pid>/cgroup. It works for Docker, containerd (CRI), CRI-O and Podman on cgroup v1 and v2, with the
 * cgroupfs and systemd cgroup drivers. A process outside any container gets no selectors.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { WorkloadApiError } from '@tessera/spiffe/errors';
import type { WorkloadAttestorPlugin, WorkloadSelector } from '../workload-attestor.js';

/** Container identity found in a cgroup file. */
export interface CgroupContainerInfo {
  /** 64 lowercase hex digits. */
  readonly containerId?: string;
  /** Kubernetes pod UID (dashed UUID form). */
  readonly podUid?: string;
}

// A path segment naming a container: bare (cgroupfs driver: /docker/<id>, /kubepods/.../<id>) or as a systemd
// scope (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>.scope, libpod-<id>.scope).
const CONTAINER_SEGMENT =
  /^(?:(?:docker|cri-containerd|crio|libpod|containerd)-)?([0-9a-f]{64})(?:\.scope)?$/;
// A path segment naming a pod: pod<uid> (cgroupfs) or kubepods-<qos>-pod<uid_with_underscores>.slice (systemd).
const POD_SEGMENT =
  /(?:^|-)pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$/;

function ambiguous(what: string, a: string, b: string): WorkloadApiError {
  return new WorkloadApiError(
    'ERR_WORKLOAD_ATTESTATION_FAILED',
    `workload attestation: cgroups name more than one ${what} ("${a}" and "${b}")`,
  );
}

/**
 * Finds the container ID and pod UID in the text of /proc/<pid>/cgroup (lines `hierarchy:controllers:path`,
 * cgroup v1 or the single v2 line `0::path`).
 *
 * @throws {WorkloadApiError} ERR_WORKLOAD_ATTESTATION_FAILED when lines disagree on the container or pod.
 * @example
 * parseCgroupContainerInfo('0::/system.slice/docker-<64 hex>.scope\n'); // { containerId: '<64 hex>' }
 */
export function parseCgroupContainerInfo(text: string): CgroupContainerInfo {
  let containerId: string | undefined;
  let podUid: string | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const first = line.indexOf(':');
    const second = first < 0 ? -1 : line.indexOf(':', first + 1);
    if (second < 0) continue;
    const segments = line.slice(second + 1).split('/');
    let lineContainer: string | undefined;
    let linePod: string | undefined;
    for (const seg of segments) {
      const c = CONTAINER_SEGMENT.exec(seg);
      if (c?.[1] !== undefined) lineContainer = c[1];
      const p = POD_SEGMENT.exec(seg);
      if (p?.[1] !== undefined) linePod = p[1].replaceAll('_', '-');
    }
    if (lineContainer !== undefined) {
      if (containerId !== undefined && containerId !== lineContainer) {
        throw ambiguous('container', containerId, lineContainer);
      }
      containerId = lineContainer;
    }
    if (linePod !== undefined) {
      if (podUid !== undefined && podUid !== linePod) throw ambiguous('pod', podUid, linePod);
      podUid = linePod;
    }
  }
  return { ...(containerId !== undefined && { containerId }), ...(podUid !== undefined && { podUid }) };
}

/** Options of {@link createDockerAttestor}. */
export interface DockerAttestorConfig {
  /** Root of procfs (default `/proc`). */
  procRoot?: string;
}

/**
 * Creates the cgroup-based container attestor. Selectors: `docker:id:<64 hex>` and, inside a Kubernetes pod,
 * `k8s:pod-uid:<uid>`.
 *
 * @example
 * const docker = createDockerAttestor();
 * await docker.attest(pid); // [] outside containers
 */
export function createDockerAttestor(config: DockerAttestorConfig = {}): WorkloadAttestorPlugin {
  const procRoot = config.procRoot ?? '/proc';
  return {
    name: 'docker',
    async attest(pid) {
      if (!Number.isSafeInteger(pid) || pid <= 0)
        throw new RangeError(`docker attestor: invalid pid ${String(pid)}`);
      let text: string;
      try {
        // procfs, read synchronously (generated in memory; see the unix attestor).
        text = readFileSync(`${procRoot}/${pid}/cgroup`, 'utf8');
      } catch (err) {
        throw new WorkloadApiError(
          'ERR_WORKLOAD_ATTESTATION_FAILED',
          `workload attestation: cannot read /proc/${pid}/cgroup`,
          { cause: err },
        );
      }
      const info = parseCgroupContainerInfo(text);
      const out: WorkloadSelector[] = [];
      if (info.containerId !== undefined) out.push({ type: 'docker', value: `id:${info.containerId}` });
      if (info.podUid !== undefined) out.push({ type: 'k8s', value: `pod-uid:${info.podUid}` });
      return out;
    },
  };
}
