/**
 * Records stored by the server's datastore. Plain readonly values: validation of SPIFFE IDs and selectors
 * against the trust domain belongs to the API layer; the datastore checks only what it needs to store them
 * faithfully on every engine.
 *
 * @module
 */

/** A selector, `type:value` (e.g. `{ type: 'unix', value: 'uid:1000' }`). */
export interface Selector {
  readonly type: string;
  readonly value: string;
}

/** A registration entry: which workloads, on which nodes, get which SPIFFE ID. */
export interface RegistrationEntry {
  /** Opaque unique ID (a UUID unless the creator chose one). */
  readonly id: string;
  readonly spiffeId: string;
  /** The SPIFFE ID of the node (agent, or the server's own ID for node aliases) the entry is for. */
  readonly parentId: string;
  /** At least one selector; stored as a set (duplicates are refused). */
  readonly selectors: readonly Selector[];
  /** X509-SVID lifetime in seconds; 0 means the server default. */
  readonly x509SvidTtl: number;
  /** JWT-SVID lifetime in seconds; 0 means the server default. */
  readonly jwtSvidTtl: number;
  readonly dnsNames: readonly string[];
  /** Trust domain names (e.g. `example.org`) whose bundles the workload receives. */
  readonly federatesWith: readonly string[];
  readonly admin: boolean;
  readonly downstream: boolean;
  readonly storeSvid: boolean;
  /** Hint for the workload to pick between SVIDs (≤ 1024 bytes); empty when none. */
  readonly hint: string;
  /** When the entry stops being valid; undefined when it never expires. */
  readonly expiresAt: Date | undefined;
  /** Incremented by every update; 0 at creation. */
  readonly revision: number;
  readonly createdAt: Date;
}

/** What a caller supplies to create an entry: `id` is optional, `revision` and `createdAt` are set by the store. */
export type NewRegistrationEntry = Omit<RegistrationEntry, 'id' | 'revision' | 'createdAt'> & {
  readonly id?: string;
};

/** An agent that attested to the server. */
export interface AttestedNode {
  readonly spiffeId: string;
  /** Node attestor name, e.g. `join_token`, `x509pop`. */
  readonly attestationType: string;
  /** Serial number (decimal or hex string as issued) of the current agent SVID; empty once banned. */
  readonly certSerial: string;
  readonly certNotAfter: Date;
  /** Serial of an agent SVID issued but not yet used by the agent (SPIRE's two-phase renewal). */
  readonly newCertSerial: string | undefined;
  readonly newCertNotAfter: Date | undefined;
  /** A banned node is refused at once and cannot re-attest until evicted. */
  readonly banned: boolean;
  /** Selectors the node attestor produced; a separate set, see `setNodeSelectors`. */
  readonly selectors: readonly Selector[];
  readonly canReattest: boolean;
}

/** What a caller supplies to create an attested node (selectors are set separately). */
export type NewAttestedNode = Omit<AttestedNode, 'selectors'> & { readonly selectors?: readonly Selector[] };

/** A join token: single use, expiring. Only a hash of `token` is stored. */
export interface JoinToken {
  readonly token: string;
  readonly expiresAt: Date;
}

/** A trust bundle as stored: the raw SPIFFE bundle document (JSON bytes) and its sequence number. */
export interface Bundle {
  /** Trust domain name, e.g. `example.org`. */
  readonly trustDomain: string;
  /** The bundle document bytes (SPIFFE bundle JSON); the datastore does not interpret them. */
  readonly data: Uint8Array;
  readonly sequence: number;
}

/** How a federated trust domain's bundle endpoint is authenticated. */
export type BundleEndpointProfile = 'https_web' | 'https_spiffe';

/** A federation relationship with another trust domain. */
export interface FederationRelationship {
  /** Trust domain name, e.g. `partner.example`. */
  readonly trustDomain: string;
  readonly bundleEndpointUrl: string;
  readonly profile: BundleEndpointProfile;
  /** SPIFFE ID of the bundle endpoint server; required for `https_spiffe`, absent for `https_web`. */
  readonly endpointSpiffeId: string | undefined;
}

/** The CA journal: which X.509 and JWT authorities are active, and the journal of prepared/old ones. */
export interface CaJournal {
  /** Assigned by the store on creation. */
  readonly id: number;
  readonly activeX509AuthorityId: string;
  readonly activeJwtAuthorityId: string;
  /** The journal entries, serialized as JSON by the CA. */
  readonly entries: string;
  /** When every authority in the journal has expired; used by `pruneCaJournals`. */
  readonly expiresAt: Date;
}

/** A page request: `token` from a previous response's `nextPageToken`, `pageSize` in 1..10000. */
export interface Pagination {
  readonly token?: string | undefined;
  readonly pageSize: number;
}

/** A page of results; `nextPageToken` is undefined on the last page. */
export interface Page<T> {
  readonly items: T[];
  readonly nextPageToken: string | undefined;
}

/**
 * How a set of selectors (or trust domains) given in a filter is compared with a record's set, as SPIRE does:
 * - `exact`: the record's set equals the given set;
 * - `subset`: the record's set is a subset of the given set (every record selector was given), e.g. the entries a
 *   workload with these attested selectors is entitled to;
 * - `superset`: the record's set contains every given selector;
 * - `any`: the record's set shares at least one element with the given set.
 */
export type MatchMode = 'exact' | 'subset' | 'superset' | 'any';

/** What a change event is about. */
export type ChangeKind = 'entry' | 'node';
/** What happened. */
export type ChangeAction = 'created' | 'updated' | 'deleted';

/**
 * One change to an entry or node. `sequence` increases strictly in commit order (writers are serialized on the
 * sequence row), so a reader that saw sequence N and asks for changes after N misses nothing.
 */
export interface ChangeEvent {
  readonly sequence: number;
  readonly kind: ChangeKind;
  readonly action: ChangeAction;
  /** The entry ID or the node's SPIFFE ID. */
  readonly id: string;
  readonly at: Date;
}
