/**
 * The in-memory entry/node index: every registration entry and attested node, kept current from the
 * datastore's change events, so an agent's sync never costs a query per entry and several servers sharing one
 * database converge within a poll interval.
 *
 * @module
 */
import type { TrustDomain } from '@tessera/spiffe/spiffeid';
import type { Datastore } from '../datastore/datastore.js';
import type { AttestedNode, ChangeEvent, RegistrationEntry } from '../datastore/types.js';

/** The datastore operations the index uses. */
export type EntryIndexDatastore = Pick<
  Datastore,
  | 'listAllEntriesForIndex'
  | 'currentSequence'
  | 'listEventsSince'
  | 'fetchEntry'
  | 'fetchAttestedNode'
  | 'listAttestedNodes'
>;

/** The logging the index does (pino's `Logger` fits). */
export interface EntryIndexLogger {
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** Configuration of {@link EntryIndex.create}. */
export interface EntryIndexConfig {
  readonly datastore: EntryIndexDatastore;
  readonly trustDomain: TrustDomain;
  /** Period of the event poll started by `start()`; default 100 ms. */
  readonly pollIntervalMs?: number;
  /** Clock used to leave out expired entries; default the system clock. */
  readonly now?: () => Date;
  readonly logger?: EntryIndexLogger;
}

/** Told after the index applied a batch of changes. */
export type EntryIndexListener = (events: readonly ChangeEvent[]) => void;

const silent: EntryIndexLogger = { warn() {}, error() {} };

function selectorKey(type: string, value: string): string {
  return `${type}:${value}`;
}

/**
 * An in-memory index of entries and attested nodes that follows the datastore's change events.
 *
 * @example
 * ```ts
 * const index = await EntryIndex.create({ datastore, trustDomain: td });
 * index.start();
 * const entries = index.authorizedEntries('spiffe://example.org/spire/agent/join_token/abc');
 * ```
 */
export class EntryIndex {
  readonly #ds: EntryIndexDatastore;
  readonly #serverId: string;
  readonly #pollMs: number;
  readonly #now: () => Date;
  readonly #log: EntryIndexLogger;
  readonly #entries = new Map<string, RegistrationEntry>();
  readonly #byParent = new Map<string, Set<string>>();
  /** Node-alias entries (parent = the server's ID) by each of their selectors. */
  readonly #aliasesBySelector = new Map<string, Set<string>>();
  readonly #nodes = new Map<string, AttestedNode>();
  /** SPIFFE IDs of entries marked admin, with how many such entries. */
  readonly #adminIds = new Map<string, number>();
  readonly #listeners = new Set<EntryIndexListener>();
  #sequence = 0;
  #lastRefreshAt: Date | undefined;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #again = false;
  #closed = false;

  private constructor(config: EntryIndexConfig, serverId: string) {
    this.#ds = config.datastore;
    this.#serverId = serverId;
    this.#pollMs = config.pollIntervalMs ?? 100;
    this.#now = config.now ?? (() => new Date());
    this.#log = config.logger ?? silent;
  }

  /**
   * Builds the index: reads the event sequence, then every entry and attested node, then replays the events
   * committed during the scan.
   *
   * @throws {DatastoreError} when the datastore fails
   */
  static async create(config: EntryIndexConfig): Promise<EntryIndex> {
    const index = new EntryIndex(config, `${config.trustDomain.id().toString()}/spire/server`);
    await index.#coldLoad();
    return index;
  }

  async #coldLoad(): Promise<void> {
    this.#sequence = await this.#ds.currentSequence();
    for await (const batch of this.#ds.listAllEntriesForIndex()) {
      for (const e of batch) this.#putEntry(e);
    }
    let token: string | undefined;
    do {
      const page = await this.#ds.listAttestedNodes({ pagination: { token, pageSize: 10_000 } });
      for (const n of page.items) this.#nodes.set(n.spiffeId, n);
      token = page.nextPageToken;
    } while (token !== undefined);
    await this.refresh();
  }

  /** Starts following the datastore's events every poll interval. */
  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => {
      this.refresh().catch((err: unknown) => this.#log.error({ err }, 'Entry index refresh failed'));
    }, this.#pollMs);
    this.#timer.unref();
  }

  /** Stops following events. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#polling?.catch(() => {});
  }

  /** Subscribes to applied changes; returns the unsubscribe function. */
  onChange(listener: EntryIndexListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Applies every event committed so far (call it after a local write so the index reflects it at once).
   * Concurrent calls share one poll; a call made during a poll triggers one more.
   */
  refresh(): Promise<void> {
    if (this.#polling !== undefined) {
      this.#again = true;
      return this.#polling;
    }
    this.#polling = (async () => {
      try {
        do {
          this.#again = false;
          await this.#drain();
        } while (this.#again);
        this.#lastRefreshAt = this.#now();
      } finally {
        this.#polling = undefined;
      }
    })();
    return this.#polling;
  }

  async #drain(): Promise<void> {
    for (;;) {
      const events = await this.#ds.listEventsSince(this.#sequence, 1000);
      if (events.length === 0) return;
      // Fetch the current state of each touched record once (several events may touch one record).
      const entryIds = new Set<string>();
      const nodeIds = new Set<string>();
      for (const ev of events) (ev.kind === 'entry' ? entryIds : nodeIds).add(ev.id);
      const [entries, nodes] = await Promise.all([
        Promise.all([...entryIds].map(async (id) => [id, await this.#ds.fetchEntry(id)] as const)),
        Promise.all([...nodeIds].map(async (id) => [id, await this.#ds.fetchAttestedNode(id)] as const)),
      ]);
      for (const [id, e] of entries) {
        this.#removeEntry(id);
        if (e !== undefined) this.#putEntry(e);
      }
      for (const [id, n] of nodes) {
        if (n === undefined) this.#nodes.delete(id);
        else this.#nodes.set(id, n);
      }
      this.#sequence = (events[events.length - 1] as ChangeEvent).sequence;
      for (const l of this.#listeners) {
        try {
          l(events);
        } catch (err) {
          this.#log.warn({ err }, 'Entry index listener failed');
        }
      }
      if (events.length < 1000) return;
    }
  }

  #putEntry(e: RegistrationEntry): void {
    this.#entries.set(e.id, e);
    let set = this.#byParent.get(e.parentId);
    if (set === undefined) {
      set = new Set();
      this.#byParent.set(e.parentId, set);
    }
    set.add(e.id);
    if (e.admin) this.#adminIds.set(e.spiffeId, (this.#adminIds.get(e.spiffeId) ?? 0) + 1);
    if (e.parentId === this.#serverId) {
      for (const s of e.selectors) {
        const k = selectorKey(s.type, s.value);
        let a = this.#aliasesBySelector.get(k);
        if (a === undefined) {
          a = new Set();
          this.#aliasesBySelector.set(k, a);
        }
        a.add(e.id);
      }
    }
  }

  #removeEntry(id: string): void {
    const e = this.#entries.get(id);
    if (e === undefined) return;
    this.#entries.delete(id);
    const set = this.#byParent.get(e.parentId);
    set?.delete(id);
    if (set?.size === 0) this.#byParent.delete(e.parentId);
    if (e.admin) {
      const n = (this.#adminIds.get(e.spiffeId) ?? 1) - 1;
      if (n <= 0) this.#adminIds.delete(e.spiffeId);
      else this.#adminIds.set(e.spiffeId, n);
    }
    if (e.parentId === this.#serverId) {
      for (const s of e.selectors) {
        const k = selectorKey(s.type, s.value);
        const a = this.#aliasesBySelector.get(k);
        a?.delete(id);
        if (a?.size === 0) this.#aliasesBySelector.delete(k);
      }
    }
  }

  /**
   * When the index last caught up with the datastore's events (by the configured clock); `undefined` until
   * the cold load finished. It stops advancing while the datastore fails, so readiness checks can tell.
   */
  get lastRefreshAt(): Date | undefined {
    return this.#lastRefreshAt;
  }

  /** The last datastore event sequence applied. */
  get sequence(): number {
    return this.#sequence;
  }

  /** Number of entries held. */
  get entryCount(): number {
    return this.#entries.size;
  }

  /** Number of attested nodes held (banned ones included). */
  get nodeCount(): number {
    return this.#nodes.size;
  }

  /** The entry with this ID, if held. */
  entry(id: string): RegistrationEntry | undefined {
    return this.#entries.get(id);
  }

  /** The attested node with this SPIFFE ID, if held. */
  node(spiffeId: string): AttestedNode | undefined {
    return this.#nodes.get(spiffeId);
  }

  /** Whether an entry marked admin has this SPIFFE ID. */
  isAdminId(spiffeId: string): boolean {
    return this.#adminIds.has(spiffeId);
  }

  /** Every entry whose SPIFFE ID is `spiffeId`. */
  entriesWithSpiffeId(spiffeId: string): RegistrationEntry[] {
    const out: RegistrationEntry[] = [];
    for (const e of this.#entries.values()) if (e.spiffeId === spiffeId) out.push(e);
    return out;
  }

  /** The SPIFFE IDs of the node-alias entries whose selectors are all among the node's selectors. */
  aliasesOf(agentId: string): string[] {
    const node = this.#nodes.get(agentId);
    if (node === undefined || node.selectors.length === 0) return [];
    const hits = new Map<string, number>();
    for (const s of node.selectors) {
      for (const id of this.#aliasesBySelector.get(selectorKey(s.type, s.value)) ?? []) {
        hits.set(id, (hits.get(id) ?? 0) + 1);
      }
    }
    const now = this.#now().getTime();
    const out: string[] = [];
    for (const [id, n] of hits) {
      const e = this.#entries.get(id);
      if (e !== undefined && n === new Set(e.selectors.map((s) => selectorKey(s.type, s.value))).size) {
        if (e.expiresAt === undefined || e.expiresAt.getTime() > now) out.push(e.spiffeId);
      }
    }
    return out;
  }

  /**
   * The entries an agent is authorized for, as SPIRE: entries whose parent is the agent's ID or the ID of a
   * node alias matching the agent's node selectors, and recursively the children of every authorized entry.
   * Expired entries are left out; node-alias entries themselves are not included.
   */
  authorizedEntries(agentId: string): RegistrationEntry[] {
    const now = this.#now().getTime();
    const out: RegistrationEntry[] = [];
    const seenEntries = new Set<string>();
    const seenParents = new Set<string>();
    const queue = [agentId, ...this.aliasesOf(agentId)];
    while (queue.length > 0) {
      const parent = queue.pop() as string;
      if (seenParents.has(parent)) continue;
      seenParents.add(parent);
      const children = this.#byParent.get(parent);
      if (children === undefined) continue;
      for (const id of children) {
        if (seenEntries.has(id)) continue;
        const e = this.#entries.get(id) as RegistrationEntry;
        if (e.expiresAt !== undefined && e.expiresAt.getTime() <= now) continue;
        seenEntries.add(id);
        out.push(e);
        if (!seenParents.has(e.spiffeId)) queue.push(e.spiffeId);
      }
    }
    return out;
  }

  /** Whether `entryId` is among the agent's authorized entries; returns the entry when it is. */
  authorizedEntry(agentId: string, entryId: string): RegistrationEntry | undefined {
    const e = this.#entries.get(entryId);
    if (e === undefined) return undefined;
    return this.authorizedEntries(agentId).find((x) => x.id === entryId);
  }
}
