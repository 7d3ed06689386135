/**
 * The agent's persisted state in its data directory (0700): the agent SVID, its key and the trust bundle
 * (`agent-state.json`), and the workload SVID cache with the authorized entries and federated bundles
 * (`svid-cache.json`). Files are 0600 and replaced atomically (write, fsync, rename), so a crash never leaves
 * a torn file. Private keys are stored as PKCS#8 DER (base64) and never logged.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmod, type FileHandle, mkdir, open, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';

/** File name of the agent state. */
export const AGENT_STATE_FILE = 'agent-state.json';
/** File name of the workload SVID cache. */
export const SVID_CACHE_FILE = 'svid-cache.json';

/** The persisted agent identity. */
export interface StoredAgentState {
  readonly trustDomain: string;
  /** Agent SVID chain, DER, leaf first. */
  readonly chain: readonly Buffer[];
  /** PKCS#8 DER private key. */
  readonly key: Buffer;
  readonly reattestable: boolean;
  /** The trust domain bundle (SPIFFE bundle JSON). */
  readonly bundle: string;
}

/** One persisted registration entry. */
export interface StoredEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly selectors: readonly { readonly type: string; readonly value: string }[];
  readonly federatesWith: readonly string[];
  readonly hint: string;
  readonly createdAt: string;
  readonly revision: string;
  readonly x509SvidTtl: number;
  readonly jwtSvidTtl: number;
  /** The entry's SVID is pushed to an SVID store and never served to workloads (absent: false). */
  readonly storeSvid?: boolean;
}

/** One persisted workload X509-SVID. */
export interface StoredSvid {
  readonly entryId: string;
  readonly entryRevision: string;
  readonly chain: readonly Buffer[];
  readonly key: Buffer;
}

/** The persisted workload cache. */
export interface StoredCache {
  readonly trustDomain: string;
  readonly entries: readonly StoredEntry[];
  readonly svids: readonly StoredSvid[];
  /** Federated bundles (SPIFFE bundle JSON) keyed by trust domain name. */
  readonly federated: Readonly<Record<string, string>>;
}

/** A workload cache to store: entries and SVIDs may be produced lazily (they are written as they come). */
export interface StoredCacheInput {
  readonly trustDomain: string;
  readonly entries: Iterable<StoredEntry>;
  readonly svids: Iterable<StoredSvid>;
  /** Federated bundles (SPIFFE bundle JSON) keyed by trust domain name. */
  readonly federated: Readonly<Record<string, string>>;
}

/** Creates `dir` (and parents) and makes it 0700. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/**
 * Writes `data` to `path` atomically with mode 0600: a temporary file in the same directory, fsync, rename.
 *
 * @example
 * ```ts
 * await writeFileAtomic('/var/lib/agent/state.json', json);
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: string | Buffer | Iterable<string>,
  mode = 0o600,
): Promise<void> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    if (typeof data === 'string' || Buffer.isBuffer(data)) await fh.writeFile(data);
    else await writeChunked(fh, data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  await chmod(tmp, mode);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

const b64 = (b: Buffer): string => b.toString('base64');

/** Bytes gathered before each write of {@link writeChunked}. */
const WRITE_CHUNK = 64 * 1024;

/**
 * Writes the pieces of `parts` in chunks of about 64 KiB: a large document (tens of thousands of entries) is
 * never held as one string, so writing it costs little memory.
 */
async function writeChunked(fh: FileHandle, parts: Iterable<string>): Promise<void> {
  let pending: string[] = [];
  let size = 0;
  for (const p of parts) {
    pending.push(p);
    size += p.length;
    if (size >= WRITE_CHUNK) {
      await writeAll(fh, pending.join(''));
      pending = [];
      size = 0;
    }
  }
  if (size > 0) await writeAll(fh, pending.join(''));
}

/** Writes all of `text` (UTF-8) at the file's position, however many write calls it takes. */
async function writeAll(fh: FileHandle, text: string): Promise<void> {
  const bytes = Buffer.from(text, 'utf8');
  for (let at = 0; at < bytes.length; ) {
    const { bytesWritten } = await fh.write(bytes, at, bytes.length - at);
    at += bytesWritten;
  }
}

/** The JSON text of a workload cache, piece by piece (the same document `JSON.stringify` would give). */
function* cacheJson(c: StoredCacheInput): Generator<string> {
  yield `{"version":1,"trustDomain":${JSON.stringify(c.trustDomain)},"entries":[`;
  let sep = '';
  for (const e of c.entries) {
    yield sep + JSON.stringify(e);
    sep = ',';
  }
  yield '],"svids":[';
  sep = '';
  for (const s of c.svids) {
    yield sep +
      JSON.stringify({
        entryId: s.entryId,
        entryRevision: s.entryRevision,
        chain: s.chain.map(b64),
        key: b64(s.key),
      });
    sep = ',';
  }
  yield `],"federated":${JSON.stringify(c.federated)}}`;
}

const unb64 = (v: unknown, what: string): Buffer => {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new Error(`${what} is not base64`);
  return Buffer.from(v, 'base64');
};
const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw new Error(`${what} is not a string`);
  return v;
};
const arr = (v: unknown, what: string): unknown[] => {
  if (!Array.isArray(v)) throw new Error(`${what} is not an array`);
  return v;
};
const obj = (v: unknown, what: string): Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not an object`);
  return v as Record<string, unknown>;
};
const bool = (v: unknown, what: string): boolean => {
  if (typeof v !== 'boolean') throw new Error(`${what} is not a boolean`);
  return v;
};
const num = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what} is not a number`);
  return v;
};

/** Reads and parses a JSON file; undefined when it does not exist. */
async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    const st = await stat(path);
    if ((st.mode & 0o077) !== 0) await chmod(path, 0o600);
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return JSON.parse(text) as unknown;
}

/** Reads and writes the agent's files in one data directory. */
export class AgentStorage {
  readonly dir: string;
  #chain: Promise<void> = Promise.resolve();

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates the data directory (0700). */
  async init(): Promise<void> {
    await ensurePrivateDir(this.dir);
  }

  #serial(fn: () => Promise<void>): Promise<void> {
    const next = this.#chain.then(fn, fn);
    this.#chain = next.catch(() => {});
    return next;
  }

  /**
   * The stored agent state; undefined when absent.
   *
   * @throws {Error} when the file exists but is malformed (the caller re-attests)
   */
  async loadAgentState(): Promise<StoredAgentState | undefined> {
    const raw = await readJson(join(this.dir, AGENT_STATE_FILE));
    if (raw === undefined) return undefined;
    const o = obj(raw, 'agent state');
    if (o.version !== 1) throw new Error('agent state has an unknown version');
    const agent = obj(o.agent, 'agent');
    return {
      trustDomain: str(o.trustDomain, 'trustDomain'),
      chain: arr(agent.chain, 'agent.chain').map((c, i) => unb64(c, `agent.chain[${i}]`)),
      key: unb64(agent.key, 'agent.key'),
      reattestable: agent.reattestable === true,
      bundle: str(o.bundle, 'bundle'),
    };
  }

  /** Stores the agent state atomically (0600). */
  saveAgentState(s: StoredAgentState): Promise<void> {
    const doc = {
      version: 1,
      trustDomain: s.trustDomain,
      agent: { chain: s.chain.map(b64), key: b64(s.key), reattestable: s.reattestable },
      bundle: s.bundle,
    };
    return this.#serial(() => writeFileAtomic(join(this.dir, AGENT_STATE_FILE), JSON.stringify(doc)));
  }

  /**
   * The stored workload cache; undefined when absent.
   *
   * @throws {Error} when the file exists but is malformed
   */
  async loadCache(): Promise<StoredCache | undefined> {
    const raw = await readJson(join(this.dir, SVID_CACHE_FILE));
    if (raw === undefined) return undefined;
    const o = obj(raw, 'svid cache');
    if (o.version !== 1) throw new Error('svid cache has an unknown version');
    const federated: Record<string, string> = {};
    for (const [k, v] of Object.entries(obj(o.federated ?? {}, 'federated')))
      federated[k] = str(v, `federated.${k}`);
    return {
      trustDomain: str(o.trustDomain, 'trustDomain'),
      entries: arr(o.entries, 'entries').map((e, i) => {
        const x = obj(e, `entries[${i}]`);
        return {
          id: str(x.id, 'id'),
          spiffeId: str(x.spiffeId, 'spiffeId'),
          selectors: arr(x.selectors, 'selectors').map((s) => {
            const so = obj(s, 'selector');
            return { type: str(so.type, 'type'), value: str(so.value, 'value') };
          }),
          federatesWith: arr(x.federatesWith, 'federatesWith').map((t) => str(t, 'federatesWith')),
          hint: str(x.hint, 'hint'),
          createdAt: str(x.createdAt, 'createdAt'),
          revision: str(x.revision, 'revision'),
          x509SvidTtl: num(x.x509SvidTtl, 'x509SvidTtl'),
          jwtSvidTtl: num(x.jwtSvidTtl, 'jwtSvidTtl'),
          ...(x.storeSvid === undefined ? {} : { storeSvid: bool(x.storeSvid, 'storeSvid') }),
        };
      }),
      svids: arr(o.svids, 'svids').map((s, i) => {
        const x = obj(s, `svids[${i}]`);
        return {
          entryId: str(x.entryId, 'entryId'),
          entryRevision: str(x.entryRevision, 'entryRevision'),
          chain: arr(x.chain, 'chain').map((c) => unb64(c, 'chain')),
          key: unb64(x.key, 'key'),
        };
      }),
      federated,
    };
  }

  /**
   * Stores the workload cache atomically (0600). The document is written piece by piece as `c.entries` and
   * `c.svids` are iterated (when the write starts, after earlier writes finished).
   */
  saveCache(c: StoredCacheInput): Promise<void> {
    return this.#serial(() => writeFileAtomic(join(this.dir, SVID_CACHE_FILE), cacheJson(c)));
  }

  /** Deletes the agent state and the workload cache (ban, eviction without re-attestation). */
  clear(): Promise<void> {
    return this.#serial(async () => {
      await rm(join(this.dir, AGENT_STATE_FILE), { force: true });
      await rm(join(this.dir, SVID_CACHE_FILE), { force: true });
    });
  }

  /** Resolves when every pending write has finished. */
  flush(): Promise<void> {
    return this.#chain;
  }
}
