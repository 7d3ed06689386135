/**
 * X.509 building blocks shared by the server (issuance) and the test CA: a DER encoder, a certificate builder
 * with an issuance fast path, CSR building and verification, and key helpers.
 *
 * @module
 */
export {
  BuiltCertificate,
  buildCertificate,
  buildLeafSvid,
  CA_KEY_USAGE,
  type CertificateIssuer,
  type CertificateOptions,
  certificateSpkiDer,
  createIssuerContext,
  type DistinguishedName,
  derToPem,
  type ExtKeyUsageName,
  encodeName,
  type IssuerContext,
  type IssuerContextOptions,
  ipAddressBytes,
  KEY_USAGE_BITS,
  type KeyUsageName,
  LEAF_KEY_USAGE,
} from './certificate.js';
export {
  type BasicConstraints,
  type CertificateConstraints,
  readCertificateConstraints,
} from './certificate-constraints.js';
export { buildCsr, buildP256Csr, type CsrOptions, type P256KeyDer, type ParsedCsr, parseCsr } from './csr.js';
export { type DerElement, DerError, DerReader, decodeBitString, decodeOid, readOne } from './der-reader.js';
export {
  bitString,
  boolean,
  encodeLength,
  explicit,
  generalizedTime,
  ia5Bytes,
  ia5String,
  implicit,
  integer,
  namedBits,
  nullValue,
  octetString,
  oid,
  printableString,
  sequence,
  setOf,
  Tag,
  tlv,
  unsignedInteger,
  utcTime,
  utf8String,
  x509Time,
} from './der-writer.js';
export {
  generateKey,
  KEY_TYPES,
  type KeyPair,
  type KeyType,
  keyIdentifier,
  keyTypeOf,
  pkcs8Der,
  pkcs8Pem,
  type SignatureScheme,
  signatureSchemeFor,
  spkiDer,
} from './keys.js';
export { ExtensionOidDer, Oid, SignatureAlgorithmDer } from './oids.js';
