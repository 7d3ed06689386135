/**
 * The agent's identity manager: node attestation and agent SVID renewal, sync of authorized entries and
 * bundles with the server (pushed by `Sync/WatchAuthorizedEntries`, polled as a fallback), the workload
 * X509-SVID cache (local P-256 keys, batched CSRs, bounded LRU, rotation at half-life with jitter), the
 * JWT-SVID cache, and persistence of all of it so workloads keep their identities across an agent restart
 * while the server is away. Implements {@link WorkloadIdentityProvider} for the Workload API and SDS.
 *
 * @module
 */
import { createPrivateKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import type { ClientReadableStream } from '@grpc/grpc-js';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Entry, WatchAuthorizedEntriesResponse, X509SVID } from '@tessera/common/api';
import { buildCsr, buildP256Csr, certificateSpkiDer, type P256KeyDer, pkcs8Der } from '@tessera/common/x509';
import { SpiffeBundle, X509Bundle } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { verifyX509SvidSync, X509Svid } from '@tessera/spiffe/svid';
import { abortableSleep } from '@tessera/spiffe/workloadapi';
import type { AgentNodeAttestor } from '../attestor/node/node-attestor.js';
import {
  bundleFromApi,
  classifyServerError,
  ServerClient,
  type ServerClientConfig,
  type ServerTrust,
} from '../client/client.js';
import { CoalescingRunner } from '../coalescing-runner.js';
import type { TrustBootstrap } from '../config/load.js';
import type { StoreSvidEntry, StoreSvidSource, StoreSvidState } from '../svidstore/service.js';
import type {
  IdentitySnapshot,
  IdentitySubscription,
  WorkloadIdentityProvider,
  WorkloadJwtSvid,
  WorkloadSelector,
  WorkloadX509Svid,
} from './provider.js';
import type { AgentStorage, StoredEntry } from './storage.js';

/** The logger the manager writes to (pino's Logger fits). */
export interface ManagerLogger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

const nullLogger: ManagerLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** The server client operations the manager uses ({@link ServerClient} implements them). */
export type ManagerServerClient = Pick<
  ServerClient,
  | 'attestAgent'
  | 'renewAgent'
  | 'getAuthorizedEntries'
  | 'batchNewX509Svid'
  | 'newJwtSvid'
  | 'getBundle'
  | 'listFederatedBundles'
  | 'watchAuthorizedEntries'
  | 'close'
> &
  Partial<Pick<ServerClient, 'getAuthorizedEntriesMapped' | 'getAuthorizedEntryRevisions'>>;

/**
 * Hooks the manager calls for its metrics (the agent turns them into Prometheus counters and histograms).
 * Every method is optional and must not throw.
 */
export interface ManagerMetrics {
  /** Workload X509-SVIDs were issued: `fresh` for entries without one, `rotated` replacing a cached one. */
  x509SvidsIssued?(fresh: number, rotated: number): void;
  /** A workload JWT-SVID was minted by the server (not served from the cache). */
  jwtSvidIssued?(): void;
  /** A sync with the server ended (`ok` false when it failed), after `seconds`. */
  synced?(kind: 'entries' | 'bundles', seconds: number, ok: boolean): void;
  /** A node attestation (first or re-attestation) or an agent SVID renewal ended. */
  nodeAttestation?(kind: 'attest' | 'renew', ok: boolean): void;
}

/** Options of {@link IdentityManager}. */
export interface IdentityManagerConfig {
  readonly trustDomain: TrustDomain;
  readonly serverAddress: string;
  readonly serverPort: number;
  /** How the server is authenticated before the agent has a stored bundle. */
  readonly trustBootstrap: TrustBootstrap;
  readonly attestor: AgentNodeAttestor;
  readonly storage: AgentStorage;
  /** Most X509-SVIDs cached (entries with subscribers are kept beyond it). Default 1000. */
  readonly x509SvidCacheMaxSize?: number;
  /** Most JWT-SVIDs cached. Default 1000. */
  readonly jwtSvidCacheMaxSize?: number;
  /** When set, X509-SVIDs rotate once less than this remains (ms) instead of at half-life. */
  readonly availabilityTargetMs?: number;
  readonly logger?: ManagerLogger;
  /** Clock; default the system clock. */
  readonly now?: () => Date;
  /** Random numbers in [0, 1) for rotation jitter; default Math.random. */
  readonly random?: () => number;
  /** Housekeeping period (rotation, renewal checks). Default 1000 ms; 0 disables the timer (tests drive `tick`). */
  readonly tickMs?: number;
  /** Bundle refresh period, and entry poll period while the watch is down. Default 5000 ms. */
  readonly pollMs?: number;
  /** Full entry resync period even when the watch is up. Default 60000 ms. */
  readonly resyncMs?: number;
  /** Called once when the agent must stop (banned, or evicted without the right to re-attest). */
  readonly onFatal?: (err: Error) => void;
  /** Builds server clients (tests); default {@link ServerClient}. */
  readonly clientFactory?: (config: ServerClientConfig) => ManagerServerClient;
  /** Fetches `trust_bundle_url` (tests); default global fetch. */
  readonly fetch?: (url: URL) => Promise<string>;
  /** Metric hooks; default none. */
  readonly metrics?: ManagerMetrics;
}

/**
 * A registration entry as the agent keeps it: one small object per entry (an agent may hold tens of thousands).
 * Selectors are kept only as flat `type:value` keys (a selector type never contains ':'; the server refuses it),
 * a single key as a plain string; `{ type, value }` objects are derived where needed ({@link selectorsOf}).
 */
interface CachedEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly selectorKeys: string | readonly string[];
  readonly federatesWith: readonly string[];
  readonly hint: string;
  readonly createdAt: CompactInt;
  readonly revision: CompactInt;
  readonly x509SvidTtl: number;
  readonly jwtSvidTtl: number;
  /** Pushed to an SVID store by the SVIDStore service; never matched for workloads. */
  readonly storeSvid: boolean;
}

interface CachedSvid {
  readonly entryId: string;
  readonly entryRevision: CompactInt;
  readonly spiffeId: string;
  /**
   * DER certificates, leaf first: views into `wire.chainDer` (no second copy). X509Certificate objects are
   * not kept (about 3.6 KB of native memory each): they are parsed again on the rare bundle checks.
   */
  readonly chainDers: readonly Buffer[];
  readonly keyDer: Buffer;
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  readonly rotateAtMs: number;
  wire: WorkloadX509Svid;
  /** Bundle generation the chain was last checked against. */
  checkedGen: number;
  stale: boolean;
}

interface CachedJwt {
  readonly svid: WorkloadJwtSvid;
  /** The `kid` of the token's header (the JWT authority that signed it); undefined when it has none. */
  readonly kid: string | undefined;
  readonly refreshAtMs: number;
  readonly expiresAtMs: number;
}

/** An entry whose last SVID request failed: not tried again before `untilMs`. */
interface IssueBackoff {
  /** The entry as it was refused: a changed entry is tried at once. */
  readonly entry: CachedEntry;
  readonly failures: number;
  readonly untilMs: number;
  /**
   * The server refused the entry for good (PermissionDenied, InvalidArgument, NotFound) or returned an unusable
   * SVID: its workloads do not wait for it. Otherwise (Internal, FailedPrecondition…) they wait, but do not hold
   * the SVIDs they have back while it backs off.
   */
  readonly refused: boolean;
}

interface Sub {
  readonly onUpdate: (snapshot: IdentitySnapshot) => void;
  closed: boolean;
}

interface Group {
  readonly key: string;
  readonly selectorKeys: ReadonlySet<string>;
  readonly subs: Set<Sub>;
  entryIds: string[];
  snapshot: IdentitySnapshot;
}

const NO_STRINGS: readonly string[] = Object.freeze([]);

/** `type:value`, built as one flat string (a template literal would keep a rope of both parts alive). */
const selectorKey = (s: WorkloadSelector): string => [s.type, ':', s.value].join('');

/** The selector keys of an entry as a list. */
function keysOf(e: CachedEntry): readonly string[] {
  return typeof e.selectorKeys === 'string' ? [e.selectorKeys] : e.selectorKeys;
}

/** The first selector key of an entry (the one it is indexed under), if any. */
function firstKeyOf(e: CachedEntry): string | undefined {
  return typeof e.selectorKeys === 'string' ? e.selectorKeys : e.selectorKeys[0];
}

/** Whether a workload holding `held` has every selector of `e`. */
function holdsAll(e: CachedEntry, held: ReadonlySet<string>): boolean {
  if (typeof e.selectorKeys === 'string') return held.has(e.selectorKeys);
  for (const k of e.selectorKeys) if (!held.has(k)) return false;
  return true;
}

/** The selectors of an entry as `{ type, value }` (split at the first ':'). */
function selectorsOf(e: CachedEntry): WorkloadSelector[] {
  return keysOf(e).map((k) => {
    const i = k.indexOf(':');
    return { type: k.slice(0, i), value: k.slice(i + 1) };
  });
}

/** `list` as the cache keeps it: the one shared empty list when empty, else a copy. */
function compactList(list: readonly string[]): readonly string[] {
  return list.length === 0 ? NO_STRINGS : [...list];
}

/** Compact selector keys of `selectors` (see {@link CachedEntry}). */
function compactKeys(selectors: readonly WorkloadSelector[]): string | readonly string[] {
  if (selectors.length === 1) return selectorKey(selectors[0] as WorkloadSelector);
  return selectors.length === 0 ? NO_STRINGS : selectors.map(selectorKey);
}
const certificatesOf = (s: CachedSvid): X509Certificate[] => s.chainDers.map((d) => new X509Certificate(d));
const ISSUE_BATCH = 500;
/** First wait before an entry whose SVID the server refused is tried again; doubles per refusal. */
const ISSUE_RETRY_MIN_MS = 1000;
/** Longest wait between tries of a refused entry. */
const ISSUE_RETRY_MAX_MS = 60_000;
/** gRPC codes of a per-entry SVID result that mean the server will not sign it (not a passing failure). */
const REFUSALS: ReadonlySet<number> = new Set([
  grpcStatus.INVALID_ARGUMENT,
  grpcStatus.NOT_FOUND,
  grpcStatus.PERMISSION_DENIED,
]);
/**
 * gRPC codes with which the server refuses an attestation; anything else is retried (FailedPrecondition too: an
 * attestor type the server does not have yet is a server configuration the operator can fix).
 */
const ATTESTATION_REFUSALS: ReadonlySet<number> = new Set([
  grpcStatus.INVALID_ARGUMENT,
  grpcStatus.PERMISSION_DENIED,
  grpcStatus.UNAUTHENTICATED,
]);
/** Attestation retries after a failure that may pass (the first attestation and re-attestations): 500 ms, doubling, at most 10 s. */
const REATTEST_RETRY_MIN_MS = 500;
const REATTEST_RETRY_MAX_MS = 10_000;
const RECENT_SNAPSHOTS = 256;

/**
 * A new P-256 key pair as DER (PKCS#8 and SPKI). Issuance makes no KeyObject for workload keys: the CSR is signed
 * from the DER and the issued leaf is matched to the key by its SPKI, so no native key object per SVID waits
 * for garbage collection and no key is imported twice.
 */
function newKeyPairDer(): P256KeyDer {
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'der' },
    privateKeyEncoding: { type: 'pkcs8', format: 'der' },
  });
  return { pkcs8: privateKey, spki: publicKey };
}

function parseTime(s: string): number {
  return new Date(s).getTime();
}

function entrySpiffeId(e: Entry): string | undefined {
  if (e.spiffeId === undefined) return undefined;
  try {
    const id = SpiffeId.fromPath(TrustDomain.fromString(e.spiffeId.trustDomain), e.spiffeId.path);
    // One flat string (toString() may be a rope over the trust domain name and the path).
    return ['spiffe://', id.trustDomain.name, id.path].join('');
  } catch {
    return undefined;
  }
}

/** An entry from the server converted for the cache, or the ID of an entry that cannot be used. */
type ConvertedEntry = CachedEntry | { readonly invalidId: string; readonly revision: CompactInt };

/**
 * An int64 of the server API (entry revision, creation time) as the cache keeps it: a number when it is a safe
 * integer (always, in practice), so that it sits in its object with no heap BigInt of its own (about 0.5 MB
 * per 10,000 entries); a bigint otherwise. One value always gets the same representation, so `===` compares.
 */
type CompactInt = number | bigint;

function compactInt(v: bigint): CompactInt {
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v;
}
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Converts an entry from the server (called while the response is decoded: keep nothing of `e`). */
function convertEntry(e: Entry): ConvertedEntry {
  const spiffeId = entrySpiffeId(e);
  if (spiffeId === undefined || e.id === '')
    return { invalidId: e.id, revision: compactInt(e.revisionNumber) };
  return {
    id: e.id,
    spiffeId,
    selectorKeys: compactKeys(e.selectors),
    federatesWith: compactList(e.federatesWith),
    hint: e.hint,
    createdAt: compactInt(e.createdAt),
    revision: compactInt(e.revisionNumber),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    storeSvid: e.storeSvid,
  };
}

/**
 * Whether two versions of an entry are the same: same revision and same content. The content is compared too
 * (not only the revision): entries never updated all have revision 0, and a server may not report revisions.
 * A periodic resync of unchanged entries then keeps the cached objects and changes nothing (no reindex, no
 * rewrite of the cache file).
 */
function sameEntry(a: CachedEntry, b: CachedEntry): boolean {
  return (
    a.revision === b.revision &&
    a.spiffeId === b.spiffeId &&
    a.hint === b.hint &&
    a.storeSvid === b.storeSvid &&
    a.createdAt === b.createdAt &&
    a.x509SvidTtl === b.x509SvidTtl &&
    a.jwtSvidTtl === b.jwtSvidTtl &&
    sameStrings(keysOf(a), keysOf(b)) &&
    sameStrings(a.federatesWith, b.federatesWith)
  );
}

function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameSnapshot(a: IdentitySnapshot, b: IdentitySnapshot): boolean {
  if (a.bundle !== b.bundle || a.svids.length !== b.svids.length) return false;
  // A change of `issuing` alone matters: it releases streams that hold a partial set back.
  if (a.pending !== b.pending || a.issuing !== b.issuing) return false;
  for (let i = 0; i < a.svids.length; i++) if (a.svids[i] !== b.svids[i]) return false;
  if (a.federatedBundles.size !== b.federatedBundles.size) return false;
  for (const [k, v] of a.federatedBundles) if (b.federatedBundles.get(k) !== v) return false;
  return true;
}

/** Loads the bootstrap bundle of `trust_bundle_path` / `trust_bundle_url`; undefined for insecure bootstrap. */
export async function loadBootstrapBundle(
  td: TrustDomain,
  bootstrap: TrustBootstrap,
  fetchText: (url: URL) => Promise<string> = defaultFetch,
): Promise<SpiffeBundle | undefined> {
  switch (bootstrap.type) {
    case 'bundle_path':
      return SpiffeBundle.fromBundle(X509Bundle.load(td, bootstrap.path));
    case 'bundle_url': {
      const text = await fetchText(bootstrap.url);
      return bootstrap.format === 'pem'
        ? SpiffeBundle.fromBundle(X509Bundle.parse(td, text))
        : SpiffeBundle.parse(td, text);
    }
    case 'insecure':
      return undefined;
  }
}

async function defaultFetch(url: URL): Promise<string> {
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(30_000) });
  if (res.status !== 200) {
    throw new SpiffeError(
      'ERR_BUNDLE_INVALID',
      `agent: unexpected status ${res.status} fetching bundle "${url}"`,
    );
  }
  return res.text();
}

/**
 * The identity manager; see the module comment.
 *
 * @example
 * ```ts
 * const manager = new IdentityManager({ trustDomain, serverAddress: 'server', serverPort: 8081,
 *   trustBootstrap: { type: 'bundle_path', path: 'bundle.pem' }, attestor, storage });
 * await manager.start();
 * const sub = manager.subscribe([{ type: 'unix', value: 'uid:1000' }], (snap) => send(snap));
 * ```
 */
export class IdentityManager implements WorkloadIdentityProvider, StoreSvidSource {
  readonly #cfg: IdentityManagerConfig;
  readonly #td: TrustDomain;
  readonly #log: ManagerLogger;
  readonly #now: () => Date;
  readonly #random: () => number;
  readonly #x509Max: number;
  readonly #jwtMax: number;
  readonly #pollMs: number;
  readonly #resyncMs: number;
  readonly #newClient: (config: ServerClientConfig) => ManagerServerClient;

  #agentSvid: X509Svid | undefined;
  #reattestable = false;
  /** The agent SVID or bundle in memory is newer than the stored agent state (its save failed). */
  #agentStateUnsaved = false;
  #client: ManagerServerClient | undefined;
  #bundle: SpiffeBundle | undefined;
  #bundleGen = 0;
  #tainted: ReadonlySet<string> = new Set();
  /** Key IDs of the tainted JWT authorities of the own bundle. */
  #taintedJwt: ReadonlySet<string> = new Set();
  #federated = new Map<string, SpiffeBundle>();
  #entries = new Map<string, CachedEntry>();
  /** Entries of the last full sync that cannot be used (invalid SPIFFE ID), by ID, with their revision. */
  #invalidEntries = new Map<string, CompactInt>();
  /** Entry IDs by the first selector key of each entry (one ID as a string, several as a list). */
  #bySelector = new Map<string, string | string[]>();
  #storeEntryIds: ReadonlySet<string> = new Set();
  readonly #storeListeners = new Set<() => void>();
  #svids = new Map<string, CachedSvid>();
  #groups = new Map<string, Group>();
  /**
   * Snapshots of recently closed groups (at most {@link RECENT_SNAPSHOTS}): a workload that connects again gets
   * the same snapshot object while nothing changed, so the endpoints' per-snapshot message and encoding caches
   * still hold.
   */
  readonly #recentSnapshots = new Map<string, IdentitySnapshot>();
  #jwt = new Map<string, CachedJwt>();
  readonly #bundleListeners = new Set<() => void>();
  #synced = false;

  #timer: NodeJS.Timeout | undefined;
  #persistTimer: NodeJS.Timeout | undefined;
  #watch: ClientReadableStream<WatchAuthorizedEntriesResponse> | undefined;
  #watchUp = false;
  #watchRetryAtMs = 0;
  #lastRevision: bigint | undefined;
  #entriesDirty = true;
  #lastEntrySyncMs = Number.NEGATIVE_INFINITY;
  #lastBundleSyncMs = Number.NEGATIVE_INFINITY;
  #issueBackoffUntilMs = 0;
  /** Backoff of re-attestation after a failure that may pass (unreachable server, local fault). */
  #reattestDelayMs = 0;
  #reattestRetryAtMs = 0;
  /** When the last "cannot persist" error was logged (it is retried every round; logged once a minute). */
  #persistErrorLoggedMs = Number.NEGATIVE_INFINITY;
  /** Per-entry backoff after the server refused (or returned an unusable) SVID, by entry ID. */
  #entryBackoff = new Map<string, IssueBackoff>();
  readonly #runner = new CoalescingRunner({
    round: () => this.#round(),
    stopped: () => this.#stopped,
    onError: (err) => this.#log.error({ err }, 'Agent sync round failed'),
  });
  #stopped = false;
  /** Aborted by {@link stop} and by a fatal error: ends retry waits at once. */
  readonly #stopController = new AbortController();
  #fatalError: Error | undefined;

  constructor(config: IdentityManagerConfig) {
    this.#cfg = config;
    this.#td = config.trustDomain;
    this.#log = config.logger ?? nullLogger;
    this.#now = config.now ?? (() => new Date());
    this.#random = config.random ?? Math.random;
    this.#x509Max = config.x509SvidCacheMaxSize ?? 1000;
    this.#jwtMax = config.jwtSvidCacheMaxSize ?? 1000;
    this.#pollMs = config.pollMs ?? 5000;
    this.#resyncMs = config.resyncMs ?? 60_000;
    this.#newClient = config.clientFactory ?? ((c) => new ServerClient(c));
    for (const [name, v] of [
      ['x509SvidCacheMaxSize', this.#x509Max],
      ['jwtSvidCacheMaxSize', this.#jwtMax],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`manager: ${name} must be a positive integer, got ${v}`);
    }
  }

  // ------------------------------------------------------------------------------------------------------------
  // Lifecycle

  /**
   * Loads the persisted state, attests the node when it has no valid agent SVID (retrying while the server is
   * unreachable), then syncs once and starts the background loop and the entry watch.
   *
   * @throws {SpiffeError} ERR_NODE_ATTESTATION_FAILED when the server refuses attestation (bad join token,
   * banned agent) — the agent must not run
   */
  async start(signal?: AbortSignal): Promise<void> {
    const storage = this.#cfg.storage;
    await storage.init();
    await this.#loadPersisted();
    if (this.#bundle === undefined) {
      this.#setBundle(
        await loadBootstrapBundle(this.#td, this.#cfg.trustBootstrap, this.#cfg.fetch),
        new Set(),
      );
    }
    if (this.#agentSvid === undefined) {
      await this.#attestWithRetry(signal);
    } else {
      this.#log.info(
        { spiffe_id: this.#agentSvid.id.toString() },
        'Using the stored agent SVID (no re-attestation)',
      );
    }
    this.#openClient();
    await this.#runOnce();
    const tickMs = this.#cfg.tickMs ?? 1000;
    if (tickMs > 0 && !this.#stopped) {
      const loop = () => {
        this.#timer = setTimeout(() => {
          void this.#runOnce().finally(() => {
            if (!this.#stopped) loop();
          });
        }, tickMs);
      };
      loop();
    }
  }

  /** Stops the loop and the watch, closes the server connection and flushes the cache to disk. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopController.abort();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#closeWatch();
    this.#client?.close();
    this.#client = undefined;
    await this.#runner.settled();
    if (this.#agentStateUnsaved && this.#fatalError === undefined) await this.#persistAgentState();
    if (this.#persistTimer !== undefined) {
      clearTimeout(this.#persistTimer);
      this.#persistTimer = undefined;
      if (this.#fatalError === undefined) await this.#persistCache().catch(() => {});
    }
    await this.#cfg.storage.flush().catch(() => {});
    for (const g of this.#groups.values()) g.subs.clear();
  }

  /** Why the manager stopped on its own (banned, evicted without re-attestation); undefined while healthy. */
  get fatalError(): Error | undefined {
    return this.#fatalError;
  }

  /** The agent's SVID (undefined before attestation). */
  get agentSvid(): X509Svid | undefined {
    return this.#agentSvid;
  }

  /** Number of cached X509-SVIDs and JWT-SVIDs and of known entries (metrics). */
  stats(): {
    readonly x509Svids: number;
    readonly jwtSvids: number;
    readonly entries: number;
    readonly subscriptions: number;
  } {
    let subs = 0;
    for (const g of this.#groups.values()) subs += g.subs.size;
    return {
      x509Svids: this.#svids.size,
      jwtSvids: this.#jwt.size,
      entries: this.#entries.size,
      subscriptions: subs,
    };
  }

  /**
   * Runs one round of housekeeping now: agent SVID renewal, bundle and entry sync when due, SVID issuance and
   * rotation. Tests drive the manager with it (with `tickMs: 0` and a fake clock).
   */
  tick(): Promise<void> {
    return this.#runOnce();
  }

  /** Marks entries as changed and syncs them at once (what a watch notification does). */
  syncNow(): Promise<void> {
    this.#entriesDirty = true;
    this.#lastBundleSyncMs = Number.NEGATIVE_INFINITY;
    return this.#runOnce();
  }

  #runOnce(): Promise<void> {
    return this.#runner.run();
  }

  async #round(): Promise<void> {
    const nowMs = this.#now().getTime();
    if (!(await this.#recoverExpiredAgent(nowMs))) {
      // No usable agent SVID (re-attestation failed for now): no server call can succeed, but cached SVIDs
      // still expire.
      if (this.#stopped) return;
      this.#dropExpired(nowMs);
      this.#pruneJwt(nowMs);
      return;
    }
    await this.#maybeRenewAgent(nowMs);
    if (this.#stopped) return;
    if (this.#agentStateUnsaved) await this.#persistAgentState();
    if (this.#client === undefined) this.#openClient();
    if (!this.#watchUp && this.#watch === undefined && nowMs >= this.#watchRetryAtMs) this.#startWatch();
    if (nowMs - this.#lastBundleSyncMs >= this.#pollMs)
      await this.#timed('bundles', () => this.#guard('bundle sync', () => this.#syncBundles()));
    const entriesDue =
      this.#entriesDirty ||
      (!this.#watchUp && nowMs - this.#lastEntrySyncMs >= this.#pollMs) ||
      nowMs - this.#lastEntrySyncMs >= this.#resyncMs;
    if (entriesDue && !this.#stopped)
      await this.#timed('entries', () => this.#guard('entry sync', () => this.#syncEntries()));
    if (this.#stopped) return;
    this.#dropExpired(nowMs);
    if (nowMs >= this.#issueBackoffUntilMs) {
      const ok = await this.#guard('svid issuance', () => this.#issueNeeded());
      if (!ok) {
        this.#issueBackoffUntilMs = nowMs + Math.min(this.#pollMs, 5000);
        // Nothing is being issued now: workloads held back for a missing SVID get the SVIDs there are.
        this.#refreshGroups();
      }
    }
    this.#pruneJwt(nowMs);
  }

  /** Runs a guarded sync step and reports its duration (monotonic clock) to the metric hooks. */
  async #timed(kind: 'entries' | 'bundles', step: () => Promise<boolean>): Promise<void> {
    const hook = this.#cfg.metrics?.synced;
    if (hook === undefined) {
      await step();
      return;
    }
    const start = performance.now();
    const ok = await step();
    hook(kind, (performance.now() - start) / 1000, ok);
  }

  /** Runs a server step; handles ban/eviction; returns false when it failed. */
  async #guard(what: string, fn: () => Promise<void>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      await this.#onServerError(what, err);
      return false;
    }
  }

  async #onServerError(what: string, err: unknown): Promise<void> {
    const kind = classifyServerError(err);
    if (kind === 'banned') {
      await this.#fatal(
        new SpiffeError('ERR_NODE_ATTESTATION_FAILED', 'agent: this agent is banned by the server', {
          cause: err,
        }),
      );
    } else if (kind === 'not_attested') {
      if (this.#reattestable) {
        this.#log.warn({ err, step: what }, 'The server no longer knows this agent; re-attesting');
        await this.#reattest();
      } else {
        await this.#fatal(
          new SpiffeError(
            'ERR_NODE_ATTESTATION_FAILED',
            'agent: this agent was evicted and its attestation method (join_token) cannot re-attest; a new join token is needed',
            { cause: err },
          ),
        );
      }
    } else if (kind === 'unavailable') {
      this.#log.debug({ err, step: what }, 'Server unavailable');
    } else if (typeof (err as { code?: unknown } | null)?.code === 'number') {
      this.#log.warn({ err, step: what }, 'Server call failed');
    } else {
      // Not a server answer: a local failure (a file that cannot be written) or data the agent refuses (a
      // bundle of another trust domain, a renewal that changes the agent ID).
      this.#log.error({ err, step: what }, 'Agent step failed');
    }
  }

  /**
   * Attests the node again (re-attestable methods only) and reconnects with the new SVID. A server that cannot
   * be reached is retried at the next round; a refusal stops the agent. Returns whether it succeeded.
   */
  async #reattest(): Promise<boolean> {
    const nowMs = this.#now().getTime();
    if (nowMs < this.#reattestRetryAtMs) return false;
    try {
      await this.#attest();
      this.#openClient();
      this.#reattestDelayMs = 0;
      this.#reattestRetryAtMs = 0;
      return true;
    } catch (e) {
      const kind = classifyServerError(e);
      const code = (e as { code?: unknown } | null)?.code;
      const refused = kind === 'banned' || (typeof code === 'number' && ATTESTATION_REFUSALS.has(code));
      if (refused) {
        // The server answered and refused: attesting again would be refused again.
        await this.#fatal(
          new SpiffeError('ERR_NODE_ATTESTATION_FAILED', 'agent: re-attestation failed', { cause: e }),
        );
        return false;
      }
      // The server cannot be reached or failed (Internal: its datastore), or a local fault (a certificate file
      // being replaced): retried with backoff.
      this.#reattestDelayMs = Math.min(
        Math.max(REATTEST_RETRY_MIN_MS, this.#reattestDelayMs * 2),
        REATTEST_RETRY_MAX_MS,
      );
      this.#reattestRetryAtMs = nowMs + this.#reattestDelayMs;
      const fields = { err: e, retry_in_ms: this.#reattestDelayMs };
      if (kind === 'unavailable') this.#log.warn(fields, 'Re-attestation failed; retrying later');
      else this.#log.error(fields, 'Re-attestation failed; retrying later');
      return false;
    }
  }

  /** Whether the agent SVID has expired at `nowMs` (false while there is none). */
  #agentSvidExpired(nowMs: number): boolean {
    const leaf = this.#agentSvid?.certificates[0];
    return leaf !== undefined && parseTime(leaf.validTo) <= nowMs;
  }

  /**
   * Handles an agent SVID that expired while the agent ran (an outage longer than its lifetime). The server
   * refuses an expired client certificate (UNAUTHENTICATED), so it can no longer be renewed: a re-attestable
   * method (x509pop) attests again; any other (join_token, whose token was used once) stops the agent.
   * Returns whether the agent has an unexpired SVID afterwards.
   */
  async #recoverExpiredAgent(nowMs: number): Promise<boolean> {
    if (!this.#agentSvidExpired(nowMs)) return true;
    const id = this.#agentSvid?.id.toString();
    if (!this.#reattestable) {
      await this.#fatal(
        new SpiffeError(
          'ERR_NODE_ATTESTATION_FAILED',
          `agent: the agent SVID "${id}" has expired and its attestation method (${this.#cfg.attestor.type}) cannot re-attest${this.#cfg.attestor.type === 'join_token' ? '; a new join token is needed' : ''}`,
        ),
      );
      return false;
    }
    this.#log.warn({ spiffe_id: id }, 'The agent SVID has expired; re-attesting');
    return this.#reattest();
  }

  async #fatal(err: Error): Promise<void> {
    if (this.#fatalError !== undefined) return;
    this.#fatalError = err;
    this.#log.error({ err }, 'Agent stopping: it can no longer obtain identities (its state is deleted)');
    this.#stopped = true;
    this.#stopController.abort();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#persistTimer !== undefined) clearTimeout(this.#persistTimer);
    this.#persistTimer = undefined;
    this.#closeWatch();
    this.#client?.close();
    this.#client = undefined;
    // Fail closed: a banned or evicted node hands out nothing more.
    this.#entries.clear();
    this.#bySelector.clear();
    this.#svids.clear();
    this.#jwt.clear();
    this.#entryBackoff.clear();
    this.#refreshGroups();
    await this.#cfg.storage
      .clear()
      .catch((e: unknown) => this.#log.error({ err: e }, 'Cannot delete agent state'));
    this.#cfg.onFatal?.(err);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Persistence

  async #loadPersisted(): Promise<void> {
    const storage = this.#cfg.storage;
    const nowMs = this.#now().getTime();
    try {
      const st = await storage.loadAgentState();
      if (st !== undefined) {
        if (st.trustDomain !== this.#td.name) {
          this.#log.warn(
            { trust_domain: st.trustDomain },
            'Stored agent state is for another trust domain; ignoring it',
          );
        } else {
          const bundle = SpiffeBundle.parse(this.#td, st.bundle);
          this.#setBundle(bundle, new Set());
          const svid = X509Svid.parseDer(Buffer.concat(st.chain), st.key);
          const leaf = svid.certificates[0] as X509Certificate;
          if (parseTime(leaf.validTo) <= nowMs) {
            this.#log.info({}, 'Stored agent SVID has expired; attesting again');
          } else {
            verifyX509SvidSync(svid.certificates, bundle, { now: new Date(nowMs) });
            this.#agentSvid = svid;
            this.#reattestable = st.reattestable;
          }
        }
      }
    } catch (err) {
      this.#log.warn({ err }, 'Stored agent state is unusable; attesting again');
    }
    if (this.#bundle === undefined) return;
    try {
      const c = await storage.loadCache();
      if (c === undefined || c.trustDomain !== this.#td.name) return;
      for (const [name, json] of Object.entries(c.federated)) {
        try {
          const td = TrustDomain.fromString(name);
          this.#federated.set(name, SpiffeBundle.parse(td, json));
        } catch (err) {
          this.#log.warn({ err, trust_domain: name }, 'Ignoring an unreadable stored federated bundle');
        }
      }
      for (const e of c.entries) this.#putEntry(storedToEntry(e));
      this.#reindex();
      for (const s of c.svids) {
        const entry = this.#entries.get(s.entryId);
        if (entry === undefined) continue;
        try {
          const cached = this.#makeSvid(entry, compactInt(BigInt(s.entryRevision)), s.chain, s.key, nowMs);
          if (cached.notAfterMs > nowMs) this.#svids.set(entry.id, cached);
        } catch (err) {
          this.#log.warn({ err, entry_id: s.entryId }, 'Ignoring an unusable stored SVID');
        }
      }
      this.#synced = true;
      this.#log.info(
        { entries: this.#entries.size, svids: this.#svids.size },
        'Loaded the persisted SVID cache',
      );
    } catch (err) {
      this.#log.warn({ err }, 'Stored SVID cache is unusable; ignoring it');
    }
  }

  #persistSoon(): void {
    if (this.#persistTimer !== undefined || this.#stopped) return;
    this.#persistTimer = setTimeout(() => {
      this.#persistTimer = undefined;
      this.#persistCache().catch((err: unknown) => this.#log.error({ err }, 'Cannot persist the SVID cache'));
    }, 100);
    this.#persistTimer.unref();
  }

  #persistCache(): Promise<void> {
    const federated: Record<string, string> = {};
    for (const [k, v] of this.#federated) federated[k] = v.marshal();
    // References only (the maps change while the file is written); each record is converted as it is written.
    const entries = [...this.#entries.values()];
    const svids = [...this.#svids.values()];
    return this.#cfg.storage.saveCache({
      trustDomain: this.#td.name,
      entries: (function* () {
        for (const e of entries) yield entryToStored(e);
      })(),
      svids: (function* () {
        for (const s of svids) {
          yield {
            entryId: s.entryId,
            entryRevision: s.entryRevision.toString(),
            chain: s.chainDers,
            key: s.keyDer,
          };
        }
      })(),
      federated,
    });
  }

  /**
   * Saves the agent SVID and bundle, best effort: a failure is logged at error and the save is retried at every
   * round until it succeeds. The state in memory is never rolled back for it: it is what the server knows (after
   * a renewal the server accepts only the new SVID; a new bundle may drop or taint an authority), so the client
   * and the subscribers must follow it at once. A crash before the retry succeeds restarts from the older state.
   */
  async #persistAgentState(): Promise<void> {
    try {
      await this.#saveAgentState();
      if (this.#agentStateUnsaved) this.#log.info({}, 'Agent state persisted');
      this.#agentStateUnsaved = false;
    } catch (err) {
      this.#agentStateUnsaved = true;
      const nowMs = this.#now().getTime();
      if (nowMs - this.#persistErrorLoggedMs >= 60_000) {
        this.#persistErrorLoggedMs = nowMs;
        this.#log.error({ err }, 'Cannot persist the agent state; retrying at every round');
      }
    }
  }

  #saveAgentState(): Promise<void> {
    const svid = this.#agentSvid;
    const bundle = this.#bundle;
    if (svid === undefined || bundle === undefined) return Promise.resolve();
    return this.#cfg.storage.saveAgentState({
      trustDomain: this.#td.name,
      chain: svid.certificates.map((c) => c.raw),
      key: pkcs8Der(svid.privateKey),
      reattestable: this.#reattestable,
      bundle: bundle.marshal(),
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Attestation and the agent SVID

  #trust(): ServerTrust {
    return this.#bundle === undefined
      ? { type: 'insecure' }
      : { type: 'bundle', bundle: () => this.#requireBundle() };
  }

  #requireBundle(): SpiffeBundle {
    if (this.#bundle === undefined)
      throw new SpiffeError('ERR_BUNDLE_NOT_FOUND', 'agent: no trust bundle yet');
    return this.#bundle;
  }

  #clientConfig(extra: Partial<ServerClientConfig> = {}): ServerClientConfig {
    return {
      address: this.#cfg.serverAddress,
      port: this.#cfg.serverPort,
      trustDomain: this.#td,
      trust: this.#trust(),
      ...extra,
    };
  }

  #openClient(): void {
    const svid = this.#agentSvid;
    if (svid === undefined || this.#stopped) return;
    this.#closeWatch();
    this.#client?.close();
    this.#client = this.#newClient(this.#clientConfig({ agentSvid: () => svid }));
    this.#watchRetryAtMs = 0;
  }

  /**
   * Attests, retrying with backoff while the server cannot be reached; any other failure (a refusal, an
   * attestor that cannot read its files) ends it at once. A wait ends at once when `signal` aborts or the
   * manager stops.
   */
  async #attestWithRetry(signal?: AbortSignal): Promise<void> {
    const stop =
      signal === undefined
        ? this.#stopController.signal
        : AbortSignal.any([this.#stopController.signal, signal]);
    let delay = REATTEST_RETRY_MIN_MS;
    for (;;) {
      try {
        await this.#attest();
        return;
      } catch (err) {
        if (classifyServerError(err) !== 'unavailable' || signal?.aborted || this.#stopped)
          throw attestationError(err);
        this.#log.warn({ err, retry_ms: delay }, 'Server unreachable for node attestation; retrying');
        await abortableSleep(delay, stop);
        if (signal?.aborted || this.#stopped) throw attestationError(err);
        delay = Math.min(delay * 2, REATTEST_RETRY_MAX_MS);
      }
    }
  }

  async #attest(): Promise<void> {
    try {
      await this.#attestOnce();
      this.#cfg.metrics?.nodeAttestation?.('attest', true);
    } catch (err) {
      this.#cfg.metrics?.nodeAttestation?.('attest', false);
      throw err;
    }
  }

  async #attestOnce(): Promise<void> {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const csr = buildCsr(privateKey);
    const client = this.#newClient(this.#clientConfig());
    let result: Awaited<ReturnType<ManagerServerClient['attestAgent']>>;
    try {
      result = await client.attestAgent(this.#cfg.attestor, csr);
    } finally {
      client.close();
    }
    const svid = this.#agentSvidFrom(result.svid, privateKey);
    if (this.#bundle === undefined) {
      // insecure_bootstrap: trust on first use. Fetch the bundle with the new SVID, then require that it
      // issued that SVID.
      const tofu = this.#newClient(
        this.#clientConfig({ trust: { type: 'insecure' }, agentSvid: () => svid }),
      );
      let converted: ReturnType<typeof bundleFromApi>;
      try {
        converted = bundleFromApi(await tofu.getBundle());
      } finally {
        tofu.close();
      }
      if (!converted.bundle.trustDomain.equals(this.#td)) {
        throw new SpiffeError(
          'ERR_BUNDLE_INVALID',
          `agent: server sent a bundle for "${converted.bundle.trustDomain.name}"`,
        );
      }
      verifyX509SvidSync(svid.certificates, converted.bundle, { now: this.#now() });
      this.#log.warn(
        {},
        'insecure_bootstrap: trusting the bundle of the first server contacted (do not use in production)',
      );
      this.#setBundle(converted.bundle, converted.taintedX509, converted.taintedJwt);
    } else {
      verifyX509SvidSync(svid.certificates, this.#bundle, { now: this.#now() });
    }
    this.#agentSvid = svid;
    this.#reattestable = result.reattestable;
    await this.#persistAgentState();
    this.#log.info({ spiffe_id: svid.id.toString(), reattestable: result.reattestable }, 'Node attested');
  }

  #agentSvidFrom(wire: X509SVID, key: KeyObject): X509Svid {
    const svid = X509Svid.parseDer(Buffer.concat(wire.certChain), pkcs8Der(key));
    const prefix = `${this.#td.id().toString()}/spire/agent/`;
    if (!svid.id.toString().startsWith(prefix)) {
      throw new SpiffeError(
        'ERR_X509SVID_INVALID',
        `agent: server issued "${svid.id.toString()}", not an agent ID`,
      );
    }
    return svid;
  }

  async #maybeRenewAgent(nowMs: number): Promise<void> {
    const svid = this.#agentSvid;
    if (svid === undefined || this.#client === undefined) return;
    const leaf = svid.certificates[0] as X509Certificate;
    const from = parseTime(leaf.validFrom);
    const to = parseTime(leaf.validTo);
    if (nowMs < from + (to - from) / 2) return;
    const client = this.#client;
    const ok = await this.#guard('agent renewal', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const renewed = this.#agentSvidFrom(await client.renewAgent(buildCsr(privateKey)), privateKey);
      if (!renewed.id.equals(svid.id)) {
        throw new SpiffeError(
          'ERR_X509SVID_INVALID',
          `agent: renewal changed the agent ID to "${renewed.id.toString()}"`,
        );
      }
      verifyX509SvidSync(renewed.certificates, this.#requireBundle(), { now: this.#now() });
      // The server now accepts only the renewed SVID: the client switches to it even if it cannot be saved.
      this.#agentSvid = renewed;
      this.#openClient();
      this.#log.info({ spiffe_id: renewed.id.toString() }, 'Agent SVID renewed');
      await this.#persistAgentState();
    });
    this.#cfg.metrics?.nodeAttestation?.('renew', ok);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Sync

  #startWatch(): void {
    const client = this.#client;
    if (client === undefined) return;
    let stream: ClientReadableStream<WatchAuthorizedEntriesResponse>;
    try {
      stream = client.watchAuthorizedEntries();
    } catch (err) {
      this.#log.debug({ err }, 'Cannot open the entry watch');
      this.#watchRetryAtMs = this.#now().getTime() + this.#pollMs;
      return;
    }
    this.#watch = stream;
    const down = (err: unknown) => {
      if (this.#watch !== stream) return;
      this.#watch = undefined;
      this.#watchUp = false;
      const code = (err as { code?: unknown } | undefined)?.code;
      this.#watchRetryAtMs =
        this.#now().getTime() + (code === grpcStatus.UNIMPLEMENTED ? 60_000 : this.#pollMs);
      if (err !== undefined) {
        const kind = classifyServerError(err);
        if (kind === 'banned' || kind === 'not_attested') void this.#onServerError('entry watch', err);
        else if (code === grpcStatus.PERMISSION_DENIED || code === grpcStatus.UNAUTHENTICATED) {
          // Refused without a reason we recognize (e.g. "no longer attested" after a ban or an eviction): sync
          // at once, so the next server call says which, instead of serving until the next poll.
          this.#log.warn({ err }, 'Entry watch refused by the server; syncing now');
          this.#entriesDirty = true;
          void this.#runOnce();
        } else this.#log.debug({ err }, 'Entry watch closed; polling');
      }
    };
    stream.on('data', (r: WatchAuthorizedEntriesResponse) => {
      if (this.#watch !== stream) return;
      this.#watchUp = true;
      if (r.revision !== this.#lastRevision) {
        this.#lastRevision = r.revision;
        this.#entriesDirty = true;
        void this.#runOnce();
      }
    });
    stream.on('error', (err) => down(err));
    stream.on('end', () => down(undefined));
  }

  #closeWatch(): void {
    const w = this.#watch;
    this.#watch = undefined;
    this.#watchUp = false;
    w?.cancel();
  }

  async #syncBundles(): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    const own = bundleFromApi(await client.getBundle());
    if (!own.bundle.trustDomain.equals(this.#td)) {
      throw new SpiffeError(
        'ERR_BUNDLE_INVALID',
        `agent: server sent a bundle for "${own.bundle.trustDomain.name}"`,
      );
    }
    const fed = await client.listFederatedBundles();
    this.#lastBundleSyncMs = this.#now().getTime();
    let changed = false;
    if (
      this.#bundle === undefined ||
      !own.bundle.equals(this.#bundle) ||
      !sameSet(own.taintedX509, this.#tainted) ||
      !sameSet(own.taintedJwt, this.#taintedJwt)
    ) {
      this.#setBundle(own.bundle, own.taintedX509, own.taintedJwt);
      await this.#persistAgentState();
      changed = true;
      this.#log.info({ x509_authorities: own.bundle.x509Authorities().length }, 'Trust bundle updated');
    }
    const next = new Map<string, SpiffeBundle>();
    for (const b of fed) {
      try {
        const c = bundleFromApi(b).bundle;
        if (c.trustDomain.equals(this.#td)) continue;
        const prev = this.#federated.get(c.trustDomain.name);
        next.set(c.trustDomain.name, prev?.equals(c) ? prev : c);
      } catch (err) {
        this.#log.warn({ err, trust_domain: b.trustDomain }, 'Ignoring an invalid federated bundle');
      }
    }
    if (next.size !== this.#federated.size || [...next].some(([k, v]) => this.#federated.get(k) !== v)) {
      this.#federated = next;
      changed = true;
    }
    if (changed) {
      this.#refreshGroups();
      this.#persistSoon();
      for (const l of this.#bundleListeners) {
        try {
          l();
        } catch (err) {
          this.#log.error({ err }, 'Bundle listener failed');
        }
      }
    }
  }

  #setBundle(
    bundle: SpiffeBundle | undefined,
    tainted: ReadonlySet<string>,
    taintedJwt: ReadonlySet<string> = new Set(),
  ): void {
    this.#bundle = bundle;
    this.#tainted = tainted;
    this.#taintedJwt = taintedJwt;
    this.#bundleGen++;
    this.#dropUntrustedJwts();
  }

  /**
   * Drops cached JWT-SVIDs that validators will refuse or should no longer accept: signed by a JWT authority
   * that is tainted, no longer in the bundle, or not named (no `kid`). The next fetch mints a new one.
   */
  #dropUntrustedJwts(): void {
    const bundle = this.#bundle;
    if (bundle === undefined || this.#jwt.size === 0) return;
    for (const [k, j] of this.#jwt) {
      if (
        j.kid === undefined ||
        this.#taintedJwt.has(j.kid) ||
        bundle.findJwtAuthority(j.kid) === undefined
      ) {
        this.#jwt.delete(k);
      }
    }
  }

  async #syncEntries(): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    const notified = this.#entriesDirty;
    this.#entriesDirty = false;
    let list: ConvertedEntry[];
    try {
      // A periodic resync or a poll (nothing announced a change) first asks for IDs and revisions only: the
      // server bumps an entry's revision on every update, so when they all match nothing changed, and the full
      // entries (and the memory their decoding takes) are not fetched again.
      if (!notified && this.#synced && client.getAuthorizedEntryRevisions !== undefined) {
        if (this.#sameRevisions(await client.getAuthorizedEntryRevisions())) {
          this.#lastEntrySyncMs = this.#now().getTime();
          return;
        }
      }
      list =
        client.getAuthorizedEntriesMapped === undefined
          ? (await client.getAuthorizedEntries()).map(convertEntry)
          : await client.getAuthorizedEntriesMapped(convertEntry);
    } catch (err) {
      this.#entriesDirty = true;
      throw err;
    }
    this.#lastEntrySyncMs = this.#now().getTime();
    this.#applyEntries(list);
  }

  /** Whether `revisions` (entry ID → revision, from the server) are exactly those of the last full sync. */
  #sameRevisions(revisions: ReadonlyMap<string, bigint>): boolean {
    if (revisions.size !== this.#entries.size + this.#invalidEntries.size) return false;
    for (const [id, revision] of revisions) {
      const known = this.#entries.get(id)?.revision ?? this.#invalidEntries.get(id);
      if (known !== compactInt(revision)) return false;
    }
    return true;
  }

  #applyEntries(list: readonly ConvertedEntry[]): void {
    const previous = this.#entries;
    this.#entries = new Map();
    this.#invalidEntries = new Map();
    let changed = list.length !== previous.size;
    for (const e of list) {
      if ('invalidId' in e) {
        this.#invalidEntries.set(e.invalidId, e.revision);
        this.#log.warn({ entry_id: e.invalidId }, 'Ignoring an authorized entry with an invalid SPIFFE ID');
        continue;
      }
      const prev = previous.get(e.id);
      if (prev !== undefined && sameEntry(prev, e)) {
        this.#entries.set(e.id, prev);
        continue;
      }
      changed = true;
      this.#putEntry(e);
    }
    for (const id of previous.keys()) if (!this.#entries.has(id)) changed = true;
    this.#synced = true;
    if (!changed) return;
    for (const [id, s] of this.#svids) {
      const entry = this.#entries.get(id);
      if (entry === undefined) this.#svids.delete(id);
      // A changed entry (new revision or content, see sameEntry) gets a new SVID: its ID, hint or TTL may differ.
      else if (
        entry !== previous.get(id) ||
        entry.revision !== s.entryRevision ||
        entry.spiffeId !== s.spiffeId
      )
        s.stale = true;
    }
    if (this.#jwt.size > 0) {
      const ids = new Set<string>();
      for (const e of this.#entries.values()) ids.add(e.spiffeId);
      for (const [k, j] of this.#jwt) if (!ids.has(j.svid.spiffeId)) this.#jwt.delete(k);
    }
    // A removed or changed entry forgets its backoff (a changed one may be signed now).
    for (const [id, b] of this.#entryBackoff)
      if (this.#entries.get(id) !== b.entry) this.#entryBackoff.delete(id);
    this.#reindex();
    this.#refreshGroups();
    this.#persistSoon();
    this.#log.debug({ entries: this.#entries.size }, 'Authorized entries synced');
  }

  #putEntry(e: CachedEntry): void {
    this.#entries.set(e.id, e);
  }

  #reindex(): void {
    const idx = new Map<string, string | string[]>();
    const store = new Set<string>();
    for (const e of this.#entries.values()) {
      if (e.storeSvid) {
        // Store-SVID entries go to SVID stores only: never matched for the Workload API or SDS.
        store.add(e.id);
        continue;
      }
      // Index each entry under its first selector only: a workload must hold all of them anyway.
      // Most keys index a single entry: kept as a plain string, a list only from the second one on.
      const k = firstKeyOf(e);
      if (k === undefined) continue;
      const ids = idx.get(k);
      if (ids === undefined) idx.set(k, e.id);
      else if (typeof ids === 'string') idx.set(k, [ids, e.id]);
      else ids.push(e.id);
    }
    this.#bySelector = idx;
    this.#storeEntryIds = store;
  }

  // ------------------------------------------------------------------------------------------------------------
  // X509-SVIDs

  #makeSvid(
    entry: CachedEntry,
    revision: CompactInt,
    chainDers: readonly Buffer[],
    key: Buffer | P256KeyDer,
    nowMs: number,
    issuedAtMs?: number,
  ): CachedSvid {
    const chain = chainDers.map((d) => new X509Certificate(d));
    const leaf = chain[0];
    if (leaf === undefined) throw new SpiffeError('ERR_X509SVID_INVALID', 'agent: empty certificate chain');
    // A fresh key is checked by its SPKI (read from the leaf's DER, no native key objects); a stored one (PKCS#8
    // only, read once at start-up) through a key object.
    const keyDer = Buffer.isBuffer(key) ? key : key.pkcs8;
    const matches = Buffer.isBuffer(key)
      ? leaf.checkPrivateKey(createPrivateKey({ key, format: 'der', type: 'pkcs8' }))
      : certificateSpkiDer(chainDers[0] as Buffer).equals(key.spki);
    if (!matches) {
      throw new SpiffeError(
        'ERR_X509SVID_INVALID',
        `agent: svid of entry "${entry.id}" does not match its key`,
      );
    }
    const bundle = this.#requireBundle();
    const verified = verifyX509SvidSync(chain, bundle, { now: new Date(nowMs) });
    if (verified.id.toString() !== entry.spiffeId) {
      throw new SpiffeError(
        'ERR_X509SVID_INVALID',
        `agent: server issued "${verified.id.toString()}" for entry "${entry.id}" ("${entry.spiffeId}")`,
      );
    }
    const notBeforeMs = parseTime(leaf.validFrom);
    const notAfterMs = parseTime(leaf.validTo);
    // Half-life counts from issuance, not from notBefore: servers backdate notBefore (clock skew tolerance,
    // 10 s as in SPIRE), which for short TTLs would put the "half-life" in the past and rotate on every tick.
    // SVIDs loaded from disk (issuedAtMs undefined) keep notBefore: they rotate no later than before.
    const startMs =
      issuedAtMs === undefined ? notBeforeMs : Math.min(Math.max(notBeforeMs, issuedAtMs), notAfterMs);
    const ttl = notAfterMs - startMs;
    const target = this.#cfg.availabilityTargetMs;
    const rotateAtMs =
      target !== undefined && ttl > target
        ? notAfterMs - target
        : startMs + ttl * (0.5 - 0.1 * this.#random());
    // The chain and the key share one allocation (small ones come from Node's shared Buffer pool) instead of
    // one long-lived native allocation per key.
    const all = Buffer.concat([...chainDers, keyDer]);
    const chainLen = all.length - keyDer.length;
    const chainDer = all.subarray(0, chainLen);
    const ownKeyDer = all.subarray(chainLen);
    const views: Buffer[] = [];
    let at = 0;
    for (const d of chainDers) {
      views.push(all.subarray(at, at + d.length));
      at += d.length;
    }
    return {
      entryId: entry.id,
      entryRevision: revision,
      spiffeId: entry.spiffeId,
      chainDers: views,
      keyDer: ownKeyDer,
      notBeforeMs,
      notAfterMs,
      rotateAtMs,
      wire: Object.freeze({
        entryId: entry.id,
        spiffeId: entry.spiffeId,
        hint: entry.hint,
        chainDer,
        keyDer: ownKeyDer,
        expiresAt: new Date(notAfterMs),
      }),
      checkedGen: this.#bundleGen,
      stale: false,
    };
  }

  #isTainted(s: CachedSvid): boolean {
    if (this.#tainted.size === 0) return false;
    const chain = certificatesOf(s);
    for (const c of chain) if (this.#tainted.has(c.fingerprint256)) return true;
    const top = chain[chain.length - 1] as X509Certificate;
    const bundle = this.#bundle;
    if (bundle === undefined) return false;
    for (const a of bundle.x509Authorities()) {
      if (this.#tainted.has(a.fingerprint256) && top.checkIssued(a) && top.verify(a.publicKey)) return true;
    }
    return false;
  }

  /** Whether `s` must be reissued now. */
  #needsReissue(s: CachedSvid, nowMs: number): boolean {
    if (s.stale || nowMs >= s.rotateAtMs) return true;
    if (s.checkedGen !== this.#bundleGen) {
      s.checkedGen = this.#bundleGen;
      try {
        verifyX509SvidSync(certificatesOf(s), this.#requireBundle(), { now: new Date(nowMs) });
      } catch {
        s.stale = true;
        return true;
      }
      if (this.#isTainted(s)) {
        s.stale = true;
        return true;
      }
    }
    return false;
  }

  #dropExpired(nowMs: number): void {
    let dropped = false;
    for (const [id, s] of this.#svids) {
      if (s.notAfterMs <= nowMs) {
        this.#svids.delete(id);
        dropped = true;
      }
    }
    if (dropped) {
      this.#refreshGroups();
      this.#persistSoon();
    }
  }

  #subscribedEntryIds(): Set<string> {
    // Store-SVID entries count as subscribed: always issued, rotated, and never evicted.
    const ids = new Set<string>(this.#storeEntryIds);
    for (const g of this.#groups.values()) for (const id of g.entryIds) ids.add(id);
    return ids;
  }

  /** Whether `e` waits after a refusal (a changed entry does not). */
  #backingOff(e: CachedEntry, nowMs: number): boolean {
    const b = this.#entryBackoff.get(e.id);
    if (b === undefined) return false;
    if (b.entry !== e) {
      this.#entryBackoff.delete(e.id);
      return false;
    }
    return nowMs < b.untilMs;
  }

  /**
   * Delays the next try of `e` after a failed SVID request: 1 s, doubling per failure, at most 60 s. `refused`:
   * the failure is a refusal (see {@link IssueBackoff.refused}).
   */
  #backOff(e: CachedEntry, nowMs: number, refused: boolean): void {
    const prev = this.#entryBackoff.get(e.id);
    const failures = prev?.entry === e ? prev.failures + 1 : 1;
    const delay = Math.min(ISSUE_RETRY_MIN_MS * 2 ** Math.min(failures - 1, 30), ISSUE_RETRY_MAX_MS);
    this.#entryBackoff.set(e.id, { entry: e, failures, untilMs: nowMs + delay, refused });
  }

  async #issueNeeded(): Promise<void> {
    if (this.#client === undefined || this.#bundle === undefined) return;
    const nowMs = this.#now().getTime();
    const subscribed = this.#subscribedEntryIds();
    const need: CachedEntry[] = [];
    for (const id of subscribed) {
      const e = this.#entries.get(id);
      const s = this.#svids.get(id);
      if (e === undefined || this.#backingOff(e, nowMs)) continue;
      if (s === undefined || this.#needsReissue(s, nowMs)) need.push(e);
    }
    // Evict least recently used SVIDs nobody subscribes to, down to the bound.
    if (this.#svids.size > this.#x509Max) {
      for (const id of this.#svids.keys()) {
        if (this.#svids.size <= this.#x509Max) break;
        if (!subscribed.has(id)) this.#svids.delete(id);
      }
    }
    for (const [id, s] of this.#svids) {
      if (subscribed.has(id)) continue;
      const e = this.#entries.get(id);
      if (e !== undefined && !this.#backingOff(e, nowMs) && this.#needsReissue(s, nowMs)) need.push(e);
    }
    let room = this.#x509Max - this.#svids.size;
    if (room > 0) {
      const missing = [...this.#entries.values()].filter(
        (e) => !this.#svids.has(e.id) && !subscribed.has(e.id) && !this.#backingOff(e, nowMs),
      );
      missing.sort((a, b) =>
        a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : 1,
      );
      for (const e of missing) {
        if (room-- <= 0) break;
        need.push(e);
      }
    }
    if (need.length === 0) return;
    for (let i = 0; i < need.length; i += ISSUE_BATCH) {
      await this.#issueBatch(need.slice(i, i + ISSUE_BATCH));
      if (this.#stopped) return;
    }
    this.#refreshGroups();
    this.#persistSoon();
  }

  async #issueBatch(batch: readonly CachedEntry[]): Promise<void> {
    const client = this.#client;
    if (client === undefined) return;
    // Keys are kept as PKCS#8 DER only: no KeyObject (native memory freed only when collected) lives across
    // the signing call.
    const keys = batch.map(() => newKeyPairDer());
    const params = batch.map((e, i) => ({ entryId: e.id, csr: buildP256Csr(keys[i] as P256KeyDer) }));
    const results = await client.batchNewX509Svid(params);
    const nowMs = this.#now().getTime();
    let failures = 0;
    let fresh = 0;
    let rotated = 0;
    for (const [i, r] of results.entries()) {
      const entry = batch[i] as CachedEntry;
      if (this.#entries.get(entry.id) !== entry) continue; // changed meanwhile; next round handles it
      if (r.status !== undefined && r.status.code !== 0) {
        failures++;
        this.#backOff(entry, nowMs, REFUSALS.has(r.status.code));
        this.#log.warn(
          { entry_id: entry.id, code: r.status.code, message: r.status.message },
          'Server refused to sign an SVID',
        );
        continue;
      }
      if (r.svid === undefined) {
        failures++;
        this.#backOff(entry, nowMs, true);
        continue;
      }
      try {
        const s = this.#makeSvid(
          entry,
          entry.revision,
          r.svid.certChain,
          keys[i] as P256KeyDer,
          nowMs,
          nowMs,
        );
        if (this.#svids.delete(entry.id)) rotated++;
        else fresh++;
        this.#svids.set(entry.id, s);
        this.#entryBackoff.delete(entry.id);
      } catch (err) {
        failures++;
        this.#backOff(entry, nowMs, true);
        this.#log.error({ err, entry_id: entry.id }, 'Server returned an unusable SVID');
      }
    }
    this.#log.debug({ issued: batch.length - failures, failed: failures }, 'Workload SVIDs issued');
    if (fresh + rotated > 0) this.#cfg.metrics?.x509SvidsIssued?.(fresh, rotated);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Subscriptions (WorkloadIdentityProvider)

  #match(selectorKeys: ReadonlySet<string>): string[] {
    const out: CachedEntry[] = [];
    for (const k of selectorKeys) {
      const ids = this.#bySelector.get(k);
      if (ids === undefined) continue;
      for (const id of typeof ids === 'string' ? [ids] : ids) {
        const e = this.#entries.get(id);
        if (e !== undefined && holdsAll(e, selectorKeys)) out.push(e);
      }
    }
    out.sort((a, b) =>
      a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    );
    return out.map((e) => e.id);
  }

  #snapshotOf(entryIds: readonly string[]): IdentitySnapshot {
    const svids: WorkloadX509Svid[] = [];
    const hints = new Set<string>();
    const federated = new Map<string, SpiffeBundle>();
    let pending = false;
    let issuing = false;
    for (const id of entryIds) {
      const e = this.#entries.get(id);
      if (e === undefined) continue;
      for (const td of e.federatesWith) {
        const b = this.#federated.get(td.replace(/^spiffe:\/\//, ''));
        if (b !== undefined) federated.set(b.trustDomain.name, b);
      }
      const s = this.#svids.get(id);
      if (s === undefined || s.stale) {
        // A stale SVID (entry changed) is still served until its replacement arrives, unless its ID changed.
        if (s === undefined || s.spiffeId !== e.spiffeId) {
          // Missing. An entry the server refused is left out until a retry succeeds; any other is waited for
          // (`pending`), and its SVID is being issued (`issuing`: a partial set is held back) unless the entry or
          // the whole issuance backs off after a failure, when the SVIDs there are go out meanwhile.
          const b = this.#entryBackoff.get(e.id);
          const backingOff = b !== undefined && b.entry === e;
          if (!(backingOff && b.refused)) {
            pending = true;
            if (!backingOff && this.#now().getTime() >= this.#issueBackoffUntilMs) issuing = true;
          }
          continue;
        }
      }
      if (e.hint !== '') {
        if (hints.has(e.hint)) continue; // duplicate hints: the oldest entry wins
        hints.add(e.hint);
      }
      svids.push(s.wire);
    }
    return {
      svids,
      bundle: this.#requireBundle(),
      federatedBundles: federated,
      ...(pending ? { pending } : {}),
      ...(issuing ? { issuing } : {}),
    };
  }

  #refreshGroups(): void {
    for (const g of this.#groups.values()) {
      g.entryIds = this.#match(g.selectorKeys);
      const next = this.#bundle === undefined ? g.snapshot : this.#snapshotOf(g.entryIds);
      if (sameSnapshot(next, g.snapshot)) continue;
      g.snapshot = next;
      for (const s of g.subs) {
        if (s.closed) continue;
        try {
          s.onUpdate(next);
        } catch (err) {
          this.#log.error({ err }, 'Identity subscriber failed');
        }
      }
    }
    for (const l of this.#storeListeners) {
      try {
        l();
      } catch (err) {
        this.#log.error({ err }, 'SVID store listener failed');
      }
    }
  }

  subscribe(
    selectors: readonly WorkloadSelector[],
    onUpdate: (snapshot: IdentitySnapshot) => void,
  ): IdentitySubscription {
    const keys = new Set(selectors.map(selectorKey));
    const groupKey = [...keys].sort().join('\u0000');
    let g = this.#groups.get(groupKey);
    if (g === undefined) {
      const entryIds = this.#match(keys);
      let snapshot = this.#snapshotOf(entryIds);
      const recent = this.#recentSnapshots.get(groupKey);
      if (recent !== undefined && sameSnapshot(recent, snapshot)) snapshot = recent;
      this.#recentSnapshots.delete(groupKey);
      g = {
        key: groupKey,
        selectorKeys: keys,
        subs: new Set(),
        entryIds,
        snapshot,
      };
      this.#groups.set(groupKey, g);
      if (entryIds.some((id) => !this.#svids.has(id))) void this.#runOnce();
    }
    for (const id of g.entryIds) {
      const s = this.#svids.get(id);
      if (s !== undefined) {
        this.#svids.delete(id);
        this.#svids.set(id, s);
      }
    }
    const group = g;
    const sub: Sub = { onUpdate, closed: false };
    group.subs.add(sub);
    return {
      current: () => group.snapshot,
      close: () => {
        if (sub.closed) return;
        sub.closed = true;
        group.subs.delete(sub);
        if (group.subs.size === 0 && this.#groups.get(group.key) === group) {
          this.#groups.delete(group.key);
          this.#recentSnapshots.set(group.key, group.snapshot);
          if (this.#recentSnapshots.size > RECENT_SNAPSHOTS) {
            const oldest = this.#recentSnapshots.keys().next().value as string;
            this.#recentSnapshots.delete(oldest);
          }
        }
      },
    };
  }

  async fetchJwtSvids(
    selectors: readonly WorkloadSelector[],
    audience: readonly string[],
    spiffeId?: string,
  ): Promise<WorkloadJwtSvid[]> {
    if (audience.length === 0) throw new TypeError('manager: audience must not be empty');
    const ids = this.#match(new Set(selectors.map(selectorKey)));
    const seen = new Set<string>();
    const hints = new Set<string>();
    const out: WorkloadJwtSvid[] = [];
    const audKey = [...new Set(audience)].sort().join('\u0000');
    for (const id of ids) {
      const e = this.#entries.get(id) as CachedEntry;
      if (spiffeId !== undefined && e.spiffeId !== spiffeId) continue;
      if (seen.has(e.spiffeId)) continue;
      if (e.hint !== '') {
        if (hints.has(e.hint)) continue;
        hints.add(e.hint);
      }
      seen.add(e.spiffeId);
      const key = `${e.spiffeId}\u0000${audKey}`;
      const nowMs = this.#now().getTime();
      const cached = this.#jwt.get(key);
      if (cached !== undefined && nowMs < cached.refreshAtMs) {
        // A hit makes the token the most recently used (the map's last): eviction takes the least recently used.
        this.#jwt.delete(key);
        this.#jwt.set(key, cached);
        out.push(cached.svid);
        continue;
      }
      const client = this.#client;
      try {
        if (client === undefined)
          throw new SpiffeError('ERR_WORKLOADAPI_UNAVAILABLE', 'agent: not connected to the server');
        const j = await client.newJwtSvid(e.id, audience);
        this.#cfg.metrics?.jwtSvidIssued?.();
        const svid: WorkloadJwtSvid = { spiffeId: e.spiffeId, token: j.token, hint: e.hint };
        const iat = Number(j.issuedAt) * 1000;
        const exp = Number(j.expiresAt) * 1000;
        const kid = jwtKeyId(j.token);
        this.#jwt.delete(key);
        // Not cached when signed by a key already known to be tainted (a bundle update raced the mint).
        if (kid === undefined || !this.#taintedJwt.has(kid))
          this.#jwt.set(key, { svid, kid, refreshAtMs: iat + (exp - iat) / 2, expiresAtMs: exp });
        while (this.#jwt.size > this.#jwtMax) {
          const oldest = this.#jwt.keys().next().value as string;
          this.#jwt.delete(oldest);
        }
        out.push(svid);
      } catch (err) {
        // The server is away: a cached token that has not expired is still good.
        if (cached !== undefined && nowMs < cached.expiresAtMs - 1000) {
          out.push(cached.svid);
          continue;
        }
        const kind = classifyServerError(err);
        if (kind === 'banned' || kind === 'not_attested') void this.#onServerError('jwt-svid', err);
        throw err;
      }
    }
    return out;
  }

  #pruneJwt(nowMs: number): void {
    for (const [k, j] of this.#jwt) if (j.expiresAtMs <= nowMs) this.#jwt.delete(k);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Store-SVID entries (StoreSvidSource, consumed by the SVIDStore service)

  /** Store-SVID entries with their current (non-stale, unexpired) SVIDs, and the bundles. */
  storeSvidState(): StoreSvidState {
    const nowMs = this.#now().getTime();
    const entries: StoreSvidEntry[] = [];
    for (const id of this.#storeEntryIds) {
      const e = this.#entries.get(id);
      if (e === undefined) continue;
      const s = this.#svids.get(id);
      const usable = s !== undefined && !s.stale && s.notAfterMs > nowMs;
      entries.push({
        id: e.id,
        spiffeId: e.spiffeId,
        selectors: selectorsOf(e),
        federatesWith: e.federatesWith,
        svid: usable
          ? { chainDer: s.chainDers, keyDer: s.keyDer, expiresAt: new Date(s.notAfterMs) }
          : undefined,
      });
    }
    // After a ban or eviction nothing is reported as synced, so the stores are left as they are.
    return {
      synced: this.#synced && this.#fatalError === undefined,
      entries,
      bundle: this.#bundle,
      federated: this.#federated,
    };
  }

  /** Calls `listener` after every change of entries, SVIDs or bundles. */
  onStoreSvidChange(listener: () => void): () => void {
    this.#storeListeners.add(listener);
    return () => this.#storeListeners.delete(listener);
  }

  /**
   * Mints a JWT-SVID for a store-SVID entry.
   *
   * @throws {SpiffeError} ERR_SVIDSTORE_INVALID when `entryId` is not a store-SVID entry of this agent
   */
  async mintStoreJwtSvid(
    entryId: string,
    audience: readonly string[],
  ): Promise<{ readonly token: string; readonly issuedAt: Date; readonly expiresAt: Date }> {
    if (!this.#storeEntryIds.has(entryId)) {
      throw new SpiffeError('ERR_SVIDSTORE_INVALID', `agent: "${entryId}" is not a store-SVID entry`);
    }
    const client = this.#client;
    if (client === undefined)
      throw new SpiffeError('ERR_WORKLOADAPI_UNAVAILABLE', 'agent: not connected to the server');
    try {
      const j = await client.newJwtSvid(entryId, audience);
      return {
        token: j.token,
        issuedAt: new Date(Number(j.issuedAt) * 1000),
        expiresAt: new Date(Number(j.expiresAt) * 1000),
      };
    } catch (err) {
      const kind = classifyServerError(err);
      if (kind === 'banned' || kind === 'not_attested') void this.#onServerError('jwt-svid', err);
      throw err;
    }
  }

  bundles(): { readonly own: SpiffeBundle; readonly federated: ReadonlyMap<string, SpiffeBundle> } {
    return { own: this.#requireBundle(), federated: this.#federated };
  }

  onBundlesChange(listener: () => void): () => void {
    this.#bundleListeners.add(listener);
    return () => this.#bundleListeners.delete(listener);
  }

  /** Whether the agent can serve: it has a bundle, has synced, has not stopped, and its SVID has not expired. */
  ready(): boolean {
    return (
      this.#bundle !== undefined &&
      this.#synced &&
      this.#fatalError === undefined &&
      !this.#agentSvidExpired(this.#now().getTime())
    );
  }
}

/** The `kid` of a compact JWS's protected header; undefined when it has none or cannot be read. */
function jwtKeyId(token: string): string | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString('utf8'));
    const kid = (header as { kid?: unknown } | null)?.kid;
    return typeof kid === 'string' && kid !== '' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** `err` of a failed node attestation as a coded error (a {@link SpiffeError} is kept as it is). */
function attestationError(err: unknown): SpiffeError {
  if (err instanceof SpiffeError) return err;
  const e = err as { details?: unknown } | null;
  const reason =
    typeof e?.details === 'string' && e.details !== ''
      ? e.details
      : err instanceof Error
        ? err.message
        : String(err);
  return new SpiffeError('ERR_NODE_ATTESTATION_FAILED', `agent: node attestation failed: ${reason}`, {
    cause: err,
  });
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

function entryToStored(e: CachedEntry): StoredEntry {
  return {
    id: e.id,
    spiffeId: e.spiffeId,
    selectors: selectorsOf(e),
    federatesWith: e.federatesWith,
    hint: e.hint,
    createdAt: e.createdAt.toString(),
    revision: e.revision.toString(),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    storeSvid: e.storeSvid,
  };
}

function storedToEntry(e: StoredEntry): CachedEntry {
  const id = SpiffeId.fromString(e.spiffeId).toString();
  return {
    id: e.id,
    spiffeId: id,
    selectorKeys: compactKeys(e.selectors),
    federatesWith: compactList(e.federatesWith),
    hint: e.hint,
    createdAt: compactInt(BigInt(e.createdAt)),
    revision: compactInt(BigInt(e.revision)),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    storeSvid: e.storeSvid === true,
  };
}
