/** The server CA: authorities, rotation, bundle, issuance, and upstream authorities. @module */
export {
  type AuthorityInfo,
  type AuthorityKind,
  type AuthorityState,
  type CaDatastore,
  type CaLogger,
  type CaManager,
  type CaManagerConfig,
  type Clock,
  createCaManager,
  type JwtKeyType,
  type MintedJwtSvid,
  type MintJwtSvidRequest,
  type SignedX509Svid,
  type SignX509SvidCsrRequest,
  type SignX509SvidRequest,
  type TaintEvent,
} from './ca-manager.js';
export {
  type AuthorityStatus,
  type JournalContent,
  type JwtAuthorityRecord,
  marshalJournal,
  parseJournal,
  type X509AuthorityRecord,
} from './journal.js';
export type { MintX509CaRequest, MintX509CaResult, PublishedJwtKey, UpstreamAuthority } from './upstream.js';
export { createDiskUpstreamAuthority, type DiskUpstreamAuthorityConfig } from './upstream-disk.js';
