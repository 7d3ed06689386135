/**
 * SVIDs: X509-SVIDs and JWT-SVIDs, their parsing, verification and sources.
 *
 * @module
 */
export {
  JWT_SVID_ALGORITHMS,
  JwtSvid,
  type JwtSvidParams,
  type JwtSvidParseOptions,
  type JwtSvidSource,
} from './jwt-svid.js';
export type { X509SvidSource } from './source.js';
export { X509Svid } from './x509-svid.js';
export {
  idFromCert,
  type VerifiedX509Svid,
  type VerifyX509SvidOptions,
  verifyX509Svid,
  verifyX509SvidSync,
  type X509AuthoritySource,
} from './x509-verify.js';
