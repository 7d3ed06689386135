/**
 * Kysely table types of the SQL datastore. Times are epoch milliseconds, booleans 0/1, lists JSON text; BIGINT
 * columns come back as strings from PostgreSQL, hence `Big`.
 *
 * @module
 */
import type { ColumnType } from 'kysely';

/** A BIGINT column: numbers in, number or string (pg) out. */
export type Big = ColumnType<number | string, number, number>;
/** An auto-increment BIGINT key: never written, read as number or string (pg). */
export type GeneratedBig = ColumnType<number | string, never, never>;
/** A nullable BIGINT column. */
export type NullableBig = ColumnType<number | string | null, number | null, number | null>;

export interface MigrationsTable {
  version: number;
  name: string;
  applied_at: Big;
}

export interface ChangeSequenceTable {
  id: number;
  value: Big;
}

export interface EventsTable {
  seq: Big;
  kind: string;
  action: string;
  object_id: string;
  at: Big;
}

export interface EntriesTable {
  pk: GeneratedBig;
  id: string;
  spiffe_id: string;
  parent_id: string;
  selectors: string;
  selector_count: number;
  federates_with: string;
  federates_with_count: number;
  dns_names: string;
  x509_svid_ttl: number;
  jwt_svid_ttl: number;
  admin: number;
  downstream: number;
  store_svid: number;
  hint: string;
  expires_at: NullableBig;
  revision: Big;
  created_at: Big;
  unique_key: string;
}

export interface EntrySelectorsTable {
  entry_pk: Big;
  type: string;
  value: string;
}

export interface EntryFederatesWithTable {
  entry_pk: Big;
  trust_domain: string;
}

export interface AttestedNodesTable {
  pk: GeneratedBig;
  spiffe_id: string;
  attestation_type: string;
  cert_serial: string;
  cert_not_after: Big;
  new_cert_serial: string | null;
  new_cert_not_after: NullableBig;
  banned: number;
  can_reattest: number;
}

export interface NodeSelectorsTable {
  spiffe_id: string;
  type: string;
  value: string;
}

export interface JoinTokensTable {
  token_hash: string;
  expires_at: Big;
}

export interface BundlesTable {
  pk: GeneratedBig;
  trust_domain: string;
  data: Uint8Array;
  sequence: Big;
}

export interface FederationRelationshipsTable {
  pk: GeneratedBig;
  trust_domain: string;
  bundle_endpoint_url: string;
  profile: string;
  endpoint_spiffe_id: string | null;
}

export interface CaJournalsTable {
  id: GeneratedBig;
  active_x509_authority_id: string;
  active_jwt_authority_id: string;
  entries: string;
  expires_at: Big;
}

/** The whole schema. */
export interface DatabaseSchema {
  tessera_migrations: MigrationsTable;
  change_sequence: ChangeSequenceTable;
  events: EventsTable;
  entries: EntriesTable;
  entry_selectors: EntrySelectorsTable;
  entry_federates_with: EntryFederatesWithTable;
  attested_nodes: AttestedNodesTable;
  node_selectors: NodeSelectorsTable;
  join_tokens: JoinTokensTable;
  bundles: BundlesTable;
  federation_relationships: FederationRelationshipsTable;
  ca_journals: CaJournalsTable;
}
