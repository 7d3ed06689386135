/**
 * The SVIDStore service: pushes the SVIDs of entries created with `store_svid` into the store their selectors
 * name (`disk:…`, `aws_secretsmanager:…`, `gcp_secretmanager:…`), again on every rotation, entry change and
 * bundle change (and before a stored JWT-SVID reaches half its lifetime), and deletes them from the store when
 * the entry is deleted, loses the flag or points elsewhere. Failed pushes and deletions are retried with
 * exponential backoff. Where secrets were pushed is persisted (no key material) so deletions that happen
 * while the agent is down are still carried out after a restart.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SpiffeBundle } from '@tessera/spiffe/bundle';
import { CoalescingRunner } from '../coalescing-runner.js';
import { writeFileAtomic } from '../manager/storage.js';
import {
  errorMessage,
  JWT_AUDIENCE_KEY,
  marshalStoredSvid,
  type StoredSvid,
  type StoreSelector,
  type SvidStore,
  SvidStoreError,
} from './store.js';

/** A store-SVID entry as the identity manager knows it. */
export interface StoreSvidEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly selectors: readonly StoreSelector[];
  /** Trust domains the entry federates with (`td` or `spiffe://td`). */
  readonly federatesWith: readonly string[];
  /** The entry's current X509-SVID; undefined until the first one is issued. */
  readonly svid:
    | {
        /** DER certificates, leaf first. */
        readonly chainDer: readonly Buffer[];
        /** PKCS#8 DER private key. */
        readonly keyDer: Buffer;
        readonly expiresAt: Date;
      }
    | undefined;
}

/** Everything the service needs about store-SVID entries, at one instant. */
export interface StoreSvidState {
  /** False until the manager has synced entries once (nothing is deleted before that). */
  readonly synced: boolean;
  readonly entries: readonly StoreSvidEntry[];
  /** The agent's trust domain bundle; undefined before the agent has one. */
  readonly bundle: SpiffeBundle | undefined;
  /** Federated bundles keyed by trust domain name. */
  readonly federated: ReadonlyMap<string, SpiffeBundle>;
}

/** What the service consumes from the identity manager (it implements this). */
export interface StoreSvidSource {
  storeSvidState(): StoreSvidState;
  /** Calls `listener` whenever store-SVID entries, their SVIDs or the bundles may have changed. */
  onStoreSvidChange(listener: () => void): () => void;
  /** Mints a JWT-SVID for a store-SVID entry. */
  mintStoreJwtSvid(
    entryId: string,
    audience: readonly string[],
  ): Promise<{ readonly token: string; readonly issuedAt: Date; readonly expiresAt: Date }>;
}

/** The logger the service writes to (pino's Logger fits). */
export interface SvidStoreLogger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** Options of {@link SvidStoreService}. */
export interface SvidStoreServiceConfig {
  readonly source: StoreSvidSource;
  /** The configured stores; an entry naming another store type is logged and skipped. */
  readonly stores: readonly SvidStore[];
  /** File recording where secrets were pushed (0600, no key material); without it, only in memory. */
  readonly statePath?: string;
  readonly logger?: SvidStoreLogger;
  /** Clock; default the system clock. */
  readonly now?: () => Date;
  /** Random numbers in [0, 1) for backoff jitter; default Math.random. */
  readonly random?: () => number;
  /** First retry delay. Default 1000 ms. */
  readonly initialBackoffMs?: number;
  /** Longest retry delay. Default 300000 ms (5 min). */
  readonly maxBackoffMs?: number;
  /** Longest wait between two passes even without changes. Default 30000 ms; 0 disables timers (tests drive `reconcile`). */
  readonly resyncMs?: number;
}

/** One secret the service has pushed (persisted). */
interface Pushed {
  readonly entryId: string;
  readonly store: string;
  readonly selectors: readonly StoreSelector[];
  /** SHA-256 of the last document pushed. */
  readonly digest: string;
}

interface Retry {
  attempts: number;
  nextAtMs: number;
}

interface CachedJwt {
  readonly token: string;
  readonly refreshAtMs: number;
}

interface Desired {
  readonly entry: StoreSvidEntry;
  readonly store: SvidStore;
  readonly selectors: readonly StoreSelector[];
  readonly audiences: readonly string[];
}

const nullLogger: SvidStoreLogger = { debug() {}, info() {}, warn() {}, error() {} };
const STATE_VERSION = 1;

/** The location of a secret: store type plus its place selectors (JWT audiences do not move a secret). */
function locationKey(store: string, selectors: readonly StoreSelector[]): string {
  const place = selectors
    .filter((s) => !s.value.startsWith(`${JWT_AUDIENCE_KEY}:`))
    .map((s) => s.value)
    .sort();
  return JSON.stringify([store, ...place]);
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

function bundlePem(b: SpiffeBundle): string {
  return b
    .x509Authorities()
    .map((c) => pem('CERTIFICATE', c.raw))
    .join('');
}

/**
 * The SVIDStore service; see the module comment.
 *
 * @example
 * ```ts
 * const service = new SvidStoreService({ source: manager, stores: [createDiskSvidStore({ directory })],
 *   statePath: join(dataDir, 'svidstore-state.json') });
 * await service.start();
 * ```
 */
export class SvidStoreService {
  readonly #cfg: SvidStoreServiceConfig;
  readonly #log: SvidStoreLogger;
  readonly #now: () => Date;
  readonly #random: () => number;
  readonly #stores: ReadonlyMap<string, SvidStore>;
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #resyncMs: number;
  #pushed = new Map<string, Pushed>();
  readonly #retries = new Map<string, Retry>();
  readonly #jwt = new Map<string, CachedJwt>();
  readonly #reported = new Map<string, string>();
  #unsubscribe: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #runner = new CoalescingRunner({
    round: () => this.#pass(),
    stopped: () => this.#stopped,
    onError: (err) => this.#log.error({ err }, 'SVID store pass failed'),
    onIdle: () => this.#schedule(),
  });
  #stopped = false;

  constructor(config: SvidStoreServiceConfig) {
    this.#cfg = config;
    this.#log = config.logger ?? nullLogger;
    this.#now = config.now ?? (() => new Date());
    this.#random = config.random ?? Math.random;
    this.#initialMs = config.initialBackoffMs ?? 1000;
    this.#maxMs = config.maxBackoffMs ?? 300_000;
    this.#resyncMs = config.resyncMs ?? 30_000;
    if (!(this.#initialMs > 0) || !(this.#maxMs >= this.#initialMs)) {
      throw new RangeError('svidstore: backoff must satisfy 0 < initialBackoffMs <= maxBackoffMs');
    }
    const stores = new Map<string, SvidStore>();
    for (const s of config.stores) {
      if (stores.has(s.name)) throw new TypeError(`svidstore: store "${s.name}" is configured twice`);
      stores.set(s.name, s);
    }
    this.#stores = stores;
  }

  /** Loads the persisted push records, subscribes to the manager and runs a first pass. */
  async start(): Promise<void> {
    await this.#loadState();
    this.#unsubscribe = this.#cfg.source.onStoreSvidChange(() => {
      void this.reconcile();
    });
    await this.reconcile();
  }

  /** Stops the service (secrets stay in their stores) and closes the store clients. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#unsubscribe?.();
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#runner.settled();
    for (const s of this.#stores.values()) {
      await s
        .close()
        .catch((err: unknown) => this.#log.warn({ err, svid_store: s.name }, 'Closing an SVID store failed'));
    }
  }

  /** Secrets currently pushed, and pushes or deletions waiting for a retry. */
  status(): { readonly pushed: number; readonly pendingRetries: number } {
    return { pushed: this.#pushed.size, pendingRetries: this.#retries.size };
  }

  /** Runs one pass now (pushes what changed, deletes what is gone, retries what is due). */
  reconcile(): Promise<void> {
    return this.#runner.run();
  }

  #schedule(): void {
    if (this.#stopped || this.#resyncMs <= 0) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const nowMs = this.#now().getTime();
    let next = nowMs + this.#resyncMs;
    for (const r of this.#retries.values()) next = Math.min(next, r.nextAtMs);
    for (const j of this.#jwt.values()) next = Math.min(next, j.refreshAtMs);
    this.#timer = setTimeout(() => void this.reconcile(), Math.max(10, next - nowMs));
    this.#timer.unref();
  }

  #backoff(key: string, nowMs: number): number {
    const r = this.#retries.get(key) ?? { attempts: 0, nextAtMs: 0 };
    r.attempts++;
    const base = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(r.attempts - 1, 30));
    const delay = Math.round(base * (0.8 + 0.4 * this.#random()));
    r.nextAtMs = nowMs + Math.min(delay, this.#maxMs);
    this.#retries.set(key, r);
    return r.nextAtMs - nowMs;
  }

  /** Logs a problem once per (key, message), so a broken entry does not flood the log each pass. */
  #reportOnce(key: string, fields: Record<string, unknown>, message: string, msg: string): void {
    if (this.#reported.get(key) === message) return;
    this.#reported.set(key, message);
    this.#log.error({ ...fields, reason: message }, msg);
  }

  #resolve(entry: StoreSvidEntry): Desired | undefined {
    const first = entry.selectors[0];
    const fields = { entry_id: entry.id, spiffe_id: entry.spiffeId };
    if (first === undefined) {
      this.#reportOnce(
        `entry:${entry.id}`,
        fields,
        'the entry has no selectors',
        'Store-SVID entry cannot be stored',
      );
      return undefined;
    }
    const mixed = entry.selectors.find((s) => s.type !== first.type);
    if (mixed !== undefined) {
      this.#reportOnce(
        `entry:${entry.id}`,
        fields,
        `selectors of more than one type ("${first.type}", "${mixed.type}"); a store-SVID entry names exactly one store`,
        'Store-SVID entry cannot be stored',
      );
      return undefined;
    }
    const store = this.#stores.get(first.type);
    if (store === undefined) {
      this.#reportOnce(
        `entry:${entry.id}`,
        fields,
        `no SVID store "${first.type}" is configured (svid_stores)`,
        'Store-SVID entry cannot be stored',
      );
      return undefined;
    }
    try {
      store.validate(entry.selectors);
    } catch (err) {
      this.#reportOnce(`entry:${entry.id}`, fields, errorMessage(err), 'Store-SVID entry cannot be stored');
      return undefined;
    }
    const audiences = entry.selectors
      .filter((s) => s.value.startsWith(`${JWT_AUDIENCE_KEY}:`))
      .map((s) => s.value.slice(JWT_AUDIENCE_KEY.length + 1));
    return { entry, store, selectors: entry.selectors, audiences: [...new Set(audiences)].sort() };
  }

  async #pass(): Promise<void> {
    const state = this.#cfg.source.storeSvidState();
    const bundle = state.bundle;
    if (bundle === undefined || !state.synced) return;
    const nowMs = this.#now().getTime();

    // Where every store-SVID entry wants its secret. Two entries naming one secret: the first (by ID) wins.
    const desired = new Map<string, Desired>();
    const sorted = [...state.entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (const e of sorted) {
      const d = this.#resolve(e);
      if (d === undefined) continue;
      const loc = locationKey(d.store.name, d.selectors);
      const other = desired.get(loc);
      if (other !== undefined) {
        this.#reportOnce(
          `entry:${e.id}`,
          { entry_id: e.id, spiffe_id: e.spiffeId },
          `entry "${other.entry.id}" already stores its SVID in the same place`,
          'Store-SVID entry cannot be stored',
        );
        continue;
      }
      desired.set(loc, d);
      this.#reported.delete(`entry:${e.id}`);
    }
    const live = new Set(state.entries.map((e) => e.id));
    for (const k of this.#jwt.keys()) if (!live.has(k.slice(0, k.indexOf('\u0000')))) this.#jwt.delete(k);
    for (const k of this.#reported.keys())
      if (k.startsWith('entry:') && !live.has(k.slice(6))) this.#reported.delete(k);

    let dirty = false;
    // Deletions: secrets pushed to a place no entry wants any more.
    for (const [loc, p] of [...this.#pushed]) {
      if (this.#stopped) return;
      if (desired.has(loc)) continue;
      const retry = this.#retries.get(loc);
      if (retry !== undefined && nowMs < retry.nextAtMs) continue;
      const store = this.#stores.get(p.store);
      const fields = { entry_id: p.entryId, svid_store: p.store };
      if (store === undefined) {
        this.#reportOnce(
          `delete:${loc}`,
          fields,
          `the store "${p.store}" is no longer configured; the secret is left in place`,
          'Cannot delete a stored SVID',
        );
        continue;
      }
      try {
        await store.delete(p.selectors);
        this.#pushed.delete(loc);
        this.#retries.delete(loc);
        this.#reported.delete(`delete:${loc}`);
        dirty = true;
        this.#log.info(fields, 'Stored SVID deleted');
      } catch (err) {
        const inMs = this.#backoff(loc, nowMs);
        this.#log.warn(
          { ...fields, err: safeError(err), retry_in_ms: inMs },
          'Deleting a stored SVID failed; will retry',
        );
      }
    }

    // Pushes: new, rotated or changed documents.
    for (const [loc, d] of desired) {
      if (this.#stopped) return;
      const svid = d.entry.svid;
      if (svid === undefined || svid.expiresAt.getTime() <= nowMs) continue;
      const retry = this.#retries.get(loc);
      if (retry !== undefined && nowMs < retry.nextAtMs) continue;
      const fields = { entry_id: d.entry.id, spiffe_id: d.entry.spiffeId, svid_store: d.store.name };
      let doc: StoredSvid;
      try {
        doc = await this.#document(d, svid, bundle, state.federated, nowMs);
      } catch (err) {
        const inMs = this.#backoff(loc, nowMs);
        this.#log.warn(
          { ...fields, err: safeError(err), retry_in_ms: inMs },
          'Minting a JWT-SVID to store failed; will retry',
        );
        continue;
      }
      const digest = createHash('sha256').update(marshalStoredSvid(doc)).digest('hex');
      const prev = this.#pushed.get(loc);
      if (prev !== undefined && prev.digest === digest && prev.entryId === d.entry.id) continue;
      try {
        await d.store.put(doc, d.selectors);
        this.#pushed.set(loc, { entryId: d.entry.id, store: d.store.name, selectors: d.selectors, digest });
        this.#retries.delete(loc);
        dirty = true;
        this.#log.info({ ...fields, expires_at: svid.expiresAt.toISOString() }, 'SVID stored');
      } catch (err) {
        const inMs = this.#backoff(loc, nowMs);
        const msg =
          err instanceof SvidStoreError && err.code !== 'ERR_SVIDSTORE_FAILED'
            ? 'Storing an SVID was refused; will retry'
            : 'Storing an SVID failed; will retry';
        this.#log.warn({ ...fields, err: safeError(err), retry_in_ms: inMs }, msg);
      }
    }
    if (dirty) await this.#saveState();
  }

  async #document(
    d: Desired,
    svid: NonNullable<StoreSvidEntry['svid']>,
    bundle: SpiffeBundle,
    federated: ReadonlyMap<string, SpiffeBundle>,
    nowMs: number,
  ): Promise<StoredSvid> {
    const fed: Record<string, string> = {};
    for (const td of d.entry.federatesWith) {
      const name = td.replace(/^spiffe:\/\//, '');
      const b = federated.get(name);
      if (b !== undefined && name !== bundle.trustDomain.name) fed[`spiffe://${name}`] = bundlePem(b);
    }
    const jwtSvids: Record<string, string> = {};
    for (const aud of d.audiences) {
      const key = `${d.entry.id}\u0000${aud}`;
      const cached = this.#jwt.get(key);
      if (cached !== undefined && nowMs < cached.refreshAtMs) {
        jwtSvids[aud] = cached.token;
        continue;
      }
      const j = await this.#cfg.source.mintStoreJwtSvid(d.entry.id, [aud]);
      const iat = j.issuedAt.getTime();
      const exp = j.expiresAt.getTime();
      this.#jwt.set(key, { token: j.token, refreshAtMs: iat + (exp - iat) / 2 });
      jwtSvids[aud] = j.token;
    }
    return {
      spiffeId: d.entry.spiffeId,
      x509Svid: svid.chainDer.map((c) => pem('CERTIFICATE', c)).join(''),
      x509SvidKey: pem('PRIVATE KEY', svid.keyDer),
      bundle: bundlePem(bundle),
      federatedBundles: fed,
      jwtSvids,
      expiresAt: svid.expiresAt,
    };
  }

  async #loadState(): Promise<void> {
    const path = this.#cfg.statePath;
    if (path === undefined) return;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.#log.warn({ err, path }, 'Cannot read the SVID store state; starting empty');
      }
      return;
    }
    try {
      const doc = JSON.parse(text) as { version?: unknown; pushed?: unknown };
      if (doc.version !== STATE_VERSION || !Array.isArray(doc.pushed)) throw new Error('unknown format');
      const pushed = new Map<string, Pushed>();
      for (const raw of doc.pushed as unknown[]) {
        const p = raw as Partial<Pushed>;
        if (
          typeof p.entryId !== 'string' ||
          typeof p.store !== 'string' ||
          typeof p.digest !== 'string' ||
          !Array.isArray(p.selectors) ||
          !p.selectors.every((s) => typeof s?.type === 'string' && typeof s.value === 'string')
        ) {
          throw new Error('malformed record');
        }
        const selectors = p.selectors.map((s) => ({ type: s.type, value: s.value }));
        pushed.set(locationKey(p.store, selectors), {
          entryId: p.entryId,
          store: p.store,
          selectors,
          digest: p.digest,
        });
      }
      this.#pushed = pushed;
    } catch (err) {
      this.#log.warn({ err, path }, 'The SVID store state is unreadable; starting empty');
    }
  }

  async #saveState(): Promise<void> {
    const path = this.#cfg.statePath;
    if (path === undefined) return;
    const doc = { version: STATE_VERSION, pushed: [...this.#pushed.values()] };
    await writeFileAtomic(path, `${JSON.stringify(doc)}\n`, 0o600).catch((err: unknown) =>
      this.#log.error({ err, path }, 'Cannot save the SVID store state'),
    );
  }
}

/** An error reduced to what is safe to log (message, code, name), dropping causes that might carry requests. */
function safeError(err: unknown): { message: string; code?: string; name?: string } {
  const out: { message: string; code?: string; name?: string } = { message: errorMessage(err) };
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') out.code = code;
  const name = (err as { name?: unknown } | undefined)?.name;
  if (typeof name === 'string') out.name = name;
  return out;
}
