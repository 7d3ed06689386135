/**
 * The server's datastore interface. One implementation (`sql/`) serves SQLite, PostgreSQL and MariaDB/MySQL.
 *
 * Conventions: `fetch*` returns `undefined` when absent; `update*` and `delete*` throw `DatastoreError`
 * `ERR_DATASTORE_NOT_FOUND` when absent; unique violations throw `ERR_DATASTORE_CONFLICT`; records the engines
 * could not store faithfully throw `ERR_DATASTORE_INVALID`; any other engine failure throws
 * `ERR_DATASTORE_FAILED` without the driver's message. A bad page size is a `RangeError`, a bad page token a
 * `DatastoreError` `ERR_DATASTORE_INVALID`.
 *
 * @module
 */
import type {
  AttestedNode,
  Bundle,
  CaJournal,
  ChangeEvent,
  FederationRelationship,
  JoinToken,
  MatchMode,
  NewAttestedNode,
  NewRegistrationEntry,
  Page,
  Pagination,
  RegistrationEntry,
  Selector,
} from './types.js';

/** Filters of `listEntries`/`countEntries`; all given filters must hold. */
export interface ListEntriesRequest {
  readonly bySpiffeId?: string;
  readonly byParentId?: string;
  readonly bySelectors?: { readonly selectors: readonly Selector[]; readonly match: MatchMode };
  readonly byFederatesWith?: { readonly trustDomains: readonly string[]; readonly match: MatchMode };
  readonly byHint?: string;
  readonly pagination?: Pagination;
}

/** Filters of `listAttestedNodes`/`countAttestedNodes`; all given filters must hold. */
export interface ListAttestedNodesRequest {
  readonly byBanned?: boolean;
  readonly byAttestationType?: string;
  /** Nodes whose current SVID expires strictly before this instant. */
  readonly byExpiresBefore?: Date;
  readonly byCanReattest?: boolean;
  readonly bySelectors?: { readonly selectors: readonly Selector[]; readonly match: MatchMode };
  readonly pagination?: Pagination;
}

/** Plain paging request (bundles, federation relationships). */
export interface ListRequest {
  readonly pagination?: Pagination;
}

/** Mutable fields of an entry for `updateEntry`; `true` means "take this field from the record". */
export type EntryMask = Partial<
  Record<
    | 'spiffeId'
    | 'parentId'
    | 'selectors'
    | 'x509SvidTtl'
    | 'jwtSvidTtl'
    | 'dnsNames'
    | 'federatesWith'
    | 'admin'
    | 'downstream'
    | 'storeSvid'
    | 'hint'
    | 'expiresAt',
    boolean
  >
>;

/** Mutable fields of an attested node for `updateAttestedNode`. */
export type AttestedNodeMask = Partial<
  Record<
    | 'attestationType'
    | 'certSerial'
    | 'certNotAfter'
    | 'newCertSerial'
    | 'newCertNotAfter'
    | 'banned'
    | 'canReattest',
    boolean
  >
>;

/** Mutable fields of a federation relationship for `updateFederationRelationship`. */
export type FederationRelationshipMask = Partial<
  Record<'bundleEndpointUrl' | 'profile' | 'endpointSpiffeId', boolean>
>;

/** What `deleteBundle` does with entries that federate with the trust domain (SPIRE's modes). */
export type DeleteBundleMode = 'restrict' | 'dissociate' | 'delete';

/** The datastore's engine. */
export type DatastoreEngine = 'sqlite' | 'postgres' | 'mysql';

/** The server's persistent state. */
export interface Datastore {
  readonly engine: DatastoreEngine;

  /** Creates one entry. */
  createEntry(entry: NewRegistrationEntry): Promise<RegistrationEntry>;
  /** Creates entries atomically, in one transaction: all are stored, or none. */
  createEntries(entries: readonly NewRegistrationEntry[]): Promise<RegistrationEntry[]>;
  fetchEntry(id: string): Promise<RegistrationEntry | undefined>;
  listEntries(req?: ListEntriesRequest): Promise<Page<RegistrationEntry>>;
  countEntries(req?: Omit<ListEntriesRequest, 'pagination'>): Promise<number>;
  /** Updates the fields named by `mask`, increments the revision, and returns the stored entry. */
  updateEntry(entry: RegistrationEntry, mask: EntryMask): Promise<RegistrationEntry>;
  /** Deletes an entry and returns it. */
  deleteEntry(id: string): Promise<RegistrationEntry>;
  /** Deletes entries whose `expiresAt` is before `before`; returns how many. */
  pruneEntries(before: Date): Promise<number>;
  /**
   * Reads every entry in batches, for building an in-memory index on cold start. Read `currentSequence()`
   * before iterating, then follow `listEventsSince` from it: changes made during the scan are replayed.
   */
  listAllEntriesForIndex(batchSize?: number): AsyncIterable<RegistrationEntry[]>;

  createAttestedNode(node: NewAttestedNode): Promise<AttestedNode>;
  fetchAttestedNode(spiffeId: string): Promise<AttestedNode | undefined>;
  listAttestedNodes(req?: ListAttestedNodesRequest): Promise<Page<AttestedNode>>;
  countAttestedNodes(req?: Omit<ListAttestedNodesRequest, 'pagination'>): Promise<number>;
  updateAttestedNode(node: AttestedNode, mask: AttestedNodeMask): Promise<AttestedNode>;
  deleteAttestedNode(spiffeId: string): Promise<AttestedNode>;
  /** Deletes nodes whose current SVID expired before `before` (banned nodes are kept); returns how many. */
  pruneAttestedNodes(before: Date): Promise<number>;
  /** Replaces the selectors of a node (which need not be attested yet). */
  setNodeSelectors(spiffeId: string, selectors: readonly Selector[]): Promise<void>;
  getNodeSelectors(spiffeId: string): Promise<Selector[]>;

  createJoinToken(token: JoinToken): Promise<void>;
  fetchJoinToken(token: string): Promise<JoinToken | undefined>;
  /**
   * Consumes a join token: deletes it and returns it if it existed and had not expired at `now`. Atomic and
   * single use under concurrency: of any number of concurrent calls, at most one returns the token. An expired
   * token is deleted too, and undefined is returned.
   */
  consumeJoinToken(token: string, now: Date): Promise<JoinToken | undefined>;
  deleteJoinToken(token: string): Promise<void>;
  pruneJoinTokens(before: Date): Promise<number>;

  createBundle(bundle: Bundle): Promise<Bundle>;
  /** Creates or replaces the bundle of a trust domain. */
  setBundle(bundle: Bundle): Promise<Bundle>;
  updateBundle(bundle: Bundle): Promise<Bundle>;
  /**
   * Read-modify-write of one bundle under a row lock: `merge` receives the stored bundle (or undefined) and
   * returns the bundle to store. Concurrent appends are serialized, none is lost.
   */
  appendBundle(trustDomain: string, merge: (current: Bundle | undefined) => Bundle): Promise<Bundle>;
  fetchBundle(trustDomain: string): Promise<Bundle | undefined>;
  listBundles(req?: ListRequest): Promise<Page<Bundle>>;
  countBundles(): Promise<number>;
  deleteBundle(trustDomain: string, mode?: DeleteBundleMode): Promise<void>;

  createFederationRelationship(rel: FederationRelationship): Promise<FederationRelationship>;
  fetchFederationRelationship(trustDomain: string): Promise<FederationRelationship | undefined>;
  listFederationRelationships(req?: ListRequest): Promise<Page<FederationRelationship>>;
  updateFederationRelationship(
    rel: FederationRelationship,
    mask: FederationRelationshipMask,
  ): Promise<FederationRelationship>;
  deleteFederationRelationship(trustDomain: string): Promise<void>;

  /** Stores a new CA journal and returns it with its assigned ID. */
  createCaJournal(journal: Omit<CaJournal, 'id'>): Promise<CaJournal>;
  updateCaJournal(journal: CaJournal): Promise<CaJournal>;
  fetchCaJournal(id: number): Promise<CaJournal | undefined>;
  /** The journal whose active X.509 authority is `authorityId`. */
  fetchCaJournalByX509AuthorityId(authorityId: string): Promise<CaJournal | undefined>;
  listCaJournals(req?: ListRequest): Promise<Page<CaJournal>>;
  pruneCaJournals(before: Date): Promise<number>;

  /** The sequence of the last committed change (0 when none). */
  currentSequence(): Promise<number>;
  /** Changes with a sequence strictly greater than `sequence`, in order, at most `limit` (default 1000). */
  listEventsSince(sequence: number, limit?: number): Promise<ChangeEvent[]>;
  /** Deletes change events older than `before`; returns how many. */
  pruneEvents(before: Date): Promise<number>;

  /** Closes the pool or file. Further calls fail. */
  close(): Promise<void>;
}
