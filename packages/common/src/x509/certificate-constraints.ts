/**
 * Reads the basicConstraints and keyUsage extensions of a certificate from its DER: node:crypto's
 * `X509Certificate` exposes the cA flag but neither the pathLenConstraint nor the key usage bits.
 *
 * @module
 */
import { KEY_USAGE_BITS, type KeyUsageName, readTbsToSpki } from './certificate.js';
import { DerError, DerReader, decodeBitString, readOne } from './der-reader.js';
import { Tag } from './der-writer.js';
import { ExtensionOidDer } from './oids.js';

/** The basicConstraints extension (RFC 5280 §4.2.1.9). */
export interface BasicConstraints {
  /** The cA flag. */
  readonly ca: boolean;
  /** pathLenConstraint: how many non-self-issued intermediate CA certificates may follow; absent means no limit. */
  readonly pathLen: number | undefined;
}

/** The constraints a certificate path validator reads from a certificate's extensions. */
export interface CertificateConstraints {
  /** basicConstraints, or `undefined` when the certificate has no such extension. */
  readonly basicConstraints: BasicConstraints | undefined;
  /** The key usages asserted by the keyUsage extension, or `undefined` when the certificate has none. */
  readonly keyUsage: ReadonlySet<KeyUsageName> | undefined;
}

/** Largest pathLenConstraint accepted (four content octets); longer encodings are refused, not clamped. */
const MAX_PATH_LEN_OCTETS = 4;

const KEY_USAGE_NAMES = Object.keys(KEY_USAGE_BITS) as KeyUsageName[];

/**
 * Reads the basicConstraints and keyUsage extensions of a DER certificate. Strict: a repeated extension
 * (RFC 5280 §4.2), a malformed extension value, a BOOLEAN other than 0x00/0xff, a negative, non-minimal
 * or over-long pathLenConstraint, or trailing data in an extension are all errors.
 *
 * @throws {DerError} when the certificate or one of these extensions is malformed.
 * @example
 * ```ts
 * const { basicConstraints, keyUsage } = readCertificateConstraints(cert.raw);
 * if (keyUsage && !keyUsage.has('keyCertSign')) throw new Error('cannot sign certificates');
 * ```
 */
export function readCertificateConstraints(der: Uint8Array): CertificateConstraints {
  const { tbs } = readTbsToSpki(Buffer.from(der.buffer, der.byteOffset, der.byteLength));
  tbs.readOptional(0x81, 'issuerUniqueID');
  tbs.readOptional(0x82, 'subjectUniqueID');
  const extsTagged = tbs.readOptional(0xa3, 'extensions');
  tbs.end('tbsCertificate');
  let basicConstraints: BasicConstraints | undefined;
  let keyUsage: ReadonlySet<KeyUsageName> | undefined;
  if (extsTagged === undefined) return { basicConstraints, keyUsage };
  const exts = new DerReader(readOne(extsTagged.content, Tag.sequence, 'extensions').content);
  const seen = new Set<string>();
  while (!exts.atEnd()) {
    const ext = new DerReader(exts.read(Tag.sequence, 'extension').content);
    const id = ext.read(Tag.oid, 'extnID').raw;
    const critical = ext.readOptional(Tag.boolean, 'critical');
    if (critical) readBoolean(critical.content, 'critical');
    const value = ext.read(Tag.octetString, 'extnValue').content;
    ext.end('extension');
    const key = id.toString('hex');
    if (seen.has(key)) throw new DerError(`repeated extension ${key}`);
    seen.add(key);
    if (id.equals(ExtensionOidDer.basicConstraints)) basicConstraints = readBasicConstraints(value);
    else if (id.equals(ExtensionOidDer.keyUsage)) keyUsage = readKeyUsage(value);
  }
  return { basicConstraints, keyUsage };
}

function readBoolean(content: Buffer, what: string): boolean {
  if (content.length !== 1 || (content[0] !== 0x00 && content[0] !== 0xff)) {
    throw new DerError(`invalid boolean in ${what}`);
  }
  return content[0] === 0xff;
}

function readBasicConstraints(value: Buffer): BasicConstraints {
  const seq = new DerReader(readOne(value, Tag.sequence, 'basicConstraints').content);
  const caEl = seq.readOptional(Tag.boolean, 'basicConstraints cA');
  const ca = caEl === undefined ? false : readBoolean(caEl.content, 'basicConstraints cA');
  const lenEl = seq.readOptional(Tag.integer, 'basicConstraints pathLenConstraint');
  seq.end('basicConstraints');
  if (lenEl === undefined) return { ca, pathLen: undefined };
  const c = lenEl.content;
  if (c.length === 0) throw new DerError('empty basicConstraints pathLenConstraint');
  if ((c[0] as number) & 0x80) throw new DerError('negative basicConstraints pathLenConstraint');
  if (c.length > 1 && c[0] === 0 && !((c[1] as number) & 0x80)) {
    throw new DerError('non-minimal basicConstraints pathLenConstraint');
  }
  if (c.length > MAX_PATH_LEN_OCTETS) throw new DerError('basicConstraints pathLenConstraint too large');
  return { ca, pathLen: c.readUIntBE(0, c.length) };
}

function readKeyUsage(value: Buffer): ReadonlySet<KeyUsageName> {
  const { bytes, unusedBits } = decodeBitString(readOne(value, Tag.bitString, 'keyUsage').content);
  const bitCount = bytes.length * 8 - unusedBits;
  const usages = new Set<KeyUsageName>();
  for (const name of KEY_USAGE_NAMES) {
    const bit = KEY_USAGE_BITS[name];
    if (bit < bitCount && ((bytes[bit >> 3] as number) >> (7 - (bit & 7))) & 1) usages.add(name);
  }
  return usages;
}
