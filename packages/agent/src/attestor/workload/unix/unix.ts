/**
 * The `unix` workload attestor: selectors from /proc/<pid> and the system's user and group databases.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync, type Stats, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { WorkloadApiError } from '@tessera/spiffe/errors';
import type { WorkloadAttestorPlugin, WorkloadSelector } from '../workload-attestor.js';

/** Default cap on the size of a binary hashed for `unix:sha256` (bytes). */
export const DEFAULT_WORKLOAD_SIZE_LIMIT = 256 * 1024 * 1024;

/** Options of {@link createUnixAttestor} (SPIRE's names in the config file: `discover_workload_path`, `workload_size_limit`). */
export interface UnixAttestorConfig {
  /** Emit `unix:path` and `unix:sha256` (default true). */
  discoverWorkloadPath?: boolean;
  /**
   * Largest binary hashed for `unix:sha256`, in bytes (default {@link DEFAULT_WORKLOAD_SIZE_LIMIT}); a larger
   * binary gets no `unix:sha256` selector. 0 disables hashing.
   */
  workloadSizeLimit?: number;
  /** Root of procfs (default `/proc`). */
  procRoot?: string;
  /** User database (default `/etc/passwd`). */
  passwdPath?: string;
  /** Group database (default `/etc/group`). */
  groupPath?: string;
  /** Number of binary hashes kept, keyed by (device, inode, mtime, ctime, size) (default 1024). */
  hashCacheSize?: number;
}

/** IDs read from /proc/<pid>/status: effective uid and gid, and supplementary groups. */
export interface ProcStatusIds {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

function fail(message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError(
    'ERR_WORKLOAD_ATTESTATION_FAILED',
    `workload attestation: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function parseId(text: string | undefined, field: string, pid: number): number {
  if (text === undefined || !/^\d{1,10}$/.test(text))
    throw fail(`bad "${field}" line in /proc/${pid}/status`);
  const n = Number(text);
  if (n > 0xffffffff) throw fail(`bad "${field}" line in /proc/${pid}/status`);
  return n;
}

/**
 * Parses /proc/<pid>/status: the effective uid and gid (second value of `Uid:`/`Gid:`, as SPIRE) and the
 * supplementary groups (`Groups:`).
 *
 * @throws {WorkloadApiError} ERR_WORKLOAD_ATTESTATION_FAILED when a line is missing or malformed.
 * @example
 * parseProcStatus('Uid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nGroups:\t27 100\n', 42);
 */
export function parseProcStatus(status: string, pid: number): ProcStatusIds {
  // Only three of the ~55 lines matter: find them instead of splitting the whole file on every attestation.
  const uidLine = statusField(status, 'Uid');
  const gidLine = statusField(status, 'Gid');
  if (uidLine === undefined) throw fail(`no "Uid" line in /proc/${pid}/status`);
  if (gidLine === undefined) throw fail(`no "Gid" line in /proc/${pid}/status`);
  const groupsLine = statusField(status, 'Groups');
  // Real, effective, saved, filesystem: the effective ID decides what the process can do.
  const uids = statusValues(uidLine);
  const gids = statusValues(gidLine);
  return {
    uid: parseId(uids[1] ?? uids[0], 'Uid', pid),
    gid: parseId(gids[1] ?? gids[0], 'Gid', pid),
    groups: groupsLine === undefined ? [] : statusValues(groupsLine).map((v) => parseId(v, 'Groups', pid)),
  };
}

/** The text after `key:` on the first line of `status` that starts with it, or undefined. */
function statusField(status: string, key: string): string | undefined {
  const prefix = `${key}:`;
  let at = status.startsWith(prefix) ? 0 : status.indexOf(`\n${prefix}`);
  if (at < 0) return undefined;
  if (at > 0) at++;
  const end = status.indexOf('\n', at);
  return status.slice(at + prefix.length, end < 0 ? status.length : end);
}

function statusValues(text: string): string[] {
  const trimmed = text.trim();
  return trimmed === '' ? [] : trimmed.split(/\s+/);
}

/**
 * Parses an /etc/passwd- or /etc/group-style file into id → name (first name wins for a shared id).
 *
 * @example
 * parseIdNameDatabase('root:x:0:0:root:/root:/bin/bash\n'); // Map { 0 => 'root' }
 */
export function parseIdNameDatabase(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    const name = fields[0];
    const id = fields[2];
    if (name === undefined || name === '' || id === undefined || !/^\d{1,10}$/.test(id)) continue;
    const n = Number(id);
    if (!out.has(n)) out.set(n, name);
  }
  return out;
}

/**
 * A file parsed once and re-parsed only when its inode, mtime or size change. Read synchronously: a local
 * stat per call (and a read when the file changed) costs microseconds, a thread-pool round trip far more.
 */
function cachedDatabase(path: string): () => Map<number, string> {
  let key = '';
  let value = new Map<number, string>();
  return () => {
    let st: Stats | undefined;
    try {
      st = statSync(path, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st === undefined) {
      key = '';
      value = new Map();
      return value;
    }
    // mtimeMs keeps sub-microsecond precision; a rewrite by useradd and the like is also a new inode.
    const k = `${st.dev}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}:${st.size}`;
    if (k !== key) {
      value = parseIdNameDatabase(readFileSync(path, 'utf8'));
      key = k;
    }
    return value;
  };
}

/**
 * Creates the `unix` workload attestor. Selectors: `uid:<n>`, `gid:<n>`, `user:<name>`, `group:<name>`
 * (names when the id is in the database), `supplementary_gid:<n>` and `supplementary_group:<name>` per group
 * in `Groups:`, and with `discoverWorkloadPath`, `path:<readlink /proc/pid/exe>` and `sha256:<hex>` of the
 * binary (read through /proc/<pid>/exe, so a replaced file on disk is not what is hashed).
 *
 * @throws {RangeError} on invalid limits.
 * @example
 * const unix = createUnixAttestor({ discoverWorkloadPath: true });
 * await unix.attest(process.pid); // [{ type: 'unix', value: 'uid:0' }, ...]
 */
export function createUnixAttestor(config: UnixAttestorConfig = {}): WorkloadAttestorPlugin {
  const procRoot = config.procRoot ?? '/proc';
  const discoverPath = config.discoverWorkloadPath ?? true;
  const sizeLimit = config.workloadSizeLimit ?? DEFAULT_WORKLOAD_SIZE_LIMIT;
  const cacheSize = config.hashCacheSize ?? 1024;
  if (!Number.isSafeInteger(sizeLimit) || sizeLimit < 0) {
    throw new RangeError(
      `unix attestor: workloadSizeLimit must be a non-negative integer, got ${String(sizeLimit)}`,
    );
  }
  if (!Number.isSafeInteger(cacheSize) || cacheSize < 0) {
    throw new RangeError(
      `unix attestor: hashCacheSize must be a non-negative integer, got ${String(cacheSize)}`,
    );
  }
  const users = cachedDatabase(config.passwdPath ?? '/etc/passwd');
  const groupsDb = cachedDatabase(config.groupPath ?? '/etc/group');
  const hashes = new Map<string, string>();

  async function sha256Of(pid: number): Promise<string | undefined> {
    if (sizeLimit === 0) return undefined;
    const handle = await open(`${procRoot}/${pid}/exe`, 'r');
    try {
      const before = await handle.stat({ bigint: true });
      if (before.size > BigInt(sizeLimit)) return undefined;
      const key = `${before.dev}:${before.ino}:${before.mtimeNs}:${before.ctimeNs}:${before.size}`;
      const hit = hashes.get(key);
      if (hit !== undefined) {
        hashes.delete(key);
        hashes.set(key, hit);
        return hit;
      }
      const hash = createHash('sha256');
      const buf = Buffer.allocUnsafe(1024 * 1024);
      let total = 0n;
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        total += BigInt(bytesRead);
        if (total > BigInt(sizeLimit)) return undefined;
        hash.update(buf.subarray(0, bytesRead));
      }
      const after = await handle.stat({ bigint: true });
      if (after.mtimeNs !== before.mtimeNs || after.ctimeNs !== before.ctimeNs || total !== after.size) {
        throw fail(`the binary of pid "${pid}" changed while it was hashed`);
      }
      const hex = hash.digest('hex');
      if (cacheSize > 0) {
        hashes.set(key, hex);
        if (hashes.size > cacheSize) {
          const oldest = hashes.keys().next().value;
          if (oldest !== undefined) hashes.delete(oldest);
        }
      }
      return hex;
    } finally {
      await handle.close();
    }
  }

  return {
    name: 'unix',
    async attest(pid) {
      if (!Number.isSafeInteger(pid) || pid <= 0)
        throw new RangeError(`unix attestor: invalid pid ${String(pid)}`);
      // procfs is read synchronously: its files are generated in memory by the kernel (no disk I/O), so a read
      // takes microseconds while a thread-pool round trip per file made up much of a new caller's latency.
      let status: string;
      try {
        status = readFileSync(`${procRoot}/${pid}/status`, 'utf8');
      } catch (err) {
        throw fail(`cannot read /proc/${pid}/status`, err);
      }
      const ids = parseProcStatus(status, pid);
      const userDb = users();
      const groupDb = groupsDb();
      const out: WorkloadSelector[] = [];
      const add = (value: string) => out.push({ type: 'unix', value });
      add(`uid:${ids.uid}`);
      const user = userDb.get(ids.uid);
      if (user !== undefined) add(`user:${user}`);
      add(`gid:${ids.gid}`);
      const group = groupDb.get(ids.gid);
      if (group !== undefined) add(`group:${group}`);
      for (const g of new Set(ids.groups)) {
        add(`supplementary_gid:${g}`);
        const name = groupDb.get(g);
        if (name !== undefined) add(`supplementary_group:${name}`);
      }
      if (discoverPath) {
        let path: string;
        try {
          path = readlinkSync(`${procRoot}/${pid}/exe`);
        } catch (err) {
          throw fail(`cannot read the executable path of pid "${pid}"`, err);
        }
        add(`path:${path}`);
        let digest: string | undefined;
        try {
          digest = await sha256Of(pid);
        } catch (err) {
          if (err instanceof WorkloadApiError) throw err;
          throw fail(`cannot hash the executable of pid "${pid}"`, err);
        }
        if (digest !== undefined) add(`sha256:${digest}`);
      }
      return out;
    },
  };
}
