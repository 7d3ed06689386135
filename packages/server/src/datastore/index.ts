/** The server datastore: interface, records, and the SQL implementation. @module */
export type { DatastoreTarget } from './connection-string.js';
export { parseConnectionString } from './connection-string.js';
export type {
  AttestedNodeMask,
  Datastore,
  DatastoreEngine,
  DeleteBundleMode,
  EntryMask,
  FederationRelationshipMask,
  ListAttestedNodesRequest,
  ListEntriesRequest,
  ListRequest,
} from './datastore.js';
export type { OpenDatastoreOptions } from './sql/open.js';
export { openDatastore } from './sql/open.js';
export { collectAll } from './sql/sql-datastore.js';
export type {
  AttestedNode,
  Bundle,
  BundleEndpointProfile,
  CaJournal,
  ChangeAction,
  ChangeEvent,
  ChangeKind,
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
export { MAX_PAGE_SIZE } from './validate.js';
