/**
 * Object identifiers used by certificates and CSRs, and constant DER pieces computed once.
 *
 * @module
 */
import { nullValue, oid, sequence } from './der-writer.js';

/** Dotted-decimal OIDs used by Tessera's X.509 code. */
export const Oid = {
  // Attribute types (RFC 5280 appendix A).
  commonName: '2.5.4.3',
  serialNumber: '2.5.4.5',
  country: '2.5.4.6',
  locality: '2.5.4.7',
  state: '2.5.4.8',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  // Extensions (RFC 5280 §4.2).
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  nameConstraints: '2.5.29.30',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  // Extended key usages.
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  // PKCS#9 extensionRequest attribute (RFC 2985).
  extensionRequest: '1.2.840.113549.1.9.14',
  // Key algorithms.
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ed25519: '1.3.101.112',
  // Signature algorithms.
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
} as const;

/** Precomputed AlgorithmIdentifier encodings for the signature algorithms the builder emits. */
export const SignatureAlgorithmDer = {
  ecdsaWithSha256: sequence(oid(Oid.ecdsaWithSha256)),
  ecdsaWithSha384: sequence(oid(Oid.ecdsaWithSha384)),
  // RFC 4055: the parameters of the PKCS#1 v1.5 algorithms are NULL.
  sha256WithRsa: sequence(oid(Oid.sha256WithRsa), nullValue()),
  // RFC 8410: no parameters.
  ed25519: sequence(oid(Oid.ed25519)),
} as const;

/** Precomputed extension OID encodings (the `extnID` TLVs). */
export const ExtensionOidDer = {
  subjectKeyIdentifier: oid(Oid.subjectKeyIdentifier),
  keyUsage: oid(Oid.keyUsage),
  subjectAltName: oid(Oid.subjectAltName),
  basicConstraints: oid(Oid.basicConstraints),
  nameConstraints: oid(Oid.nameConstraints),
  authorityKeyIdentifier: oid(Oid.authorityKeyIdentifier),
  extKeyUsage: oid(Oid.extKeyUsage),
} as const;
