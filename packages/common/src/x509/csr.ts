/**
 * PKCS#10 certificate signing requests (RFC 2986): building, and strict parsing that verifies the
 * self-signature (proof of possession of the private key).
 *
 * @module
 */
import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { X509SvidError } from '@tessera/spiffe/errors';
import { type DistinguishedName, encodeName, ipAddressBytes } from './certificate.js';
import { DerError, DerReader, decodeBitString, decodeOid, readOne } from './der-reader.js';
import {
  bitString,
  ia5Bytes,
  implicit,
  integer,
  octetString,
  oid,
  sequence,
  setOf,
  Tag,
} from './der-writer.js';
import { keyTypeOf, signatureSchemeFor, spkiDer } from './keys.js';
import { ExtensionOidDer, Oid, SignatureAlgorithmDer } from './oids.js';

/** Options of {@link buildCsr}. */
export interface CsrOptions {
  /** URI SANs (usually none: the server decides the SPIFFE ID). */
  readonly uris?: readonly string[];
  /** DNS SANs. */
  readonly dnsNames?: readonly string[];
  /** IP SANs. */
  readonly ipAddresses?: readonly string[];
  /** Subject name. Default: empty. */
  readonly subject?: DistinguishedName;
}

/** A parsed CSR whose self-signature has been verified. */
export interface ParsedCsr {
  /** The requested public key. */
  readonly publicKey: KeyObject;
  /** The SubjectPublicKeyInfo DER, ready for {@link buildLeafSvid}. */
  readonly spkiDer: Buffer;
  /** URI SANs requested. */
  readonly uris: readonly string[];
  /** DNS SANs requested. */
  readonly dnsNames: readonly string[];
  /** IP SANs requested: dotted IPv4, or IPv6 as eight uncompressed hex groups (`2001:db8:0:0:0:0:0:1`). */
  readonly ipAddresses: readonly string[];
  /** Subject attributes Tessera knows (others are ignored). */
  readonly subject: DistinguishedName;
  /** The raw subject Name DER. */
  readonly subjectDer: Buffer;
}

/**
 * Builds a DER PKCS#10 CSR signed by `privateKey` (ECDSA P-256/P-384, RSA, or Ed25519), with a
 * subjectAltName extension request when SANs are given.
 *
 * @throws {TypeError} when the key is not a supported private key; {@link RangeError} on unencodable names.
 * @example const der = buildCsr(privateKey, { uris: ['spiffe://example.org/agent'] });
 */
export function buildCsr(privateKey: KeyObject, options: CsrOptions = {}): Buffer {
  if (privateKey.type !== 'private') throw new TypeError('csr: buildCsr needs a private key');
  const scheme = signatureSchemeFor(privateKey);
  const info = certificationRequestInfo(spkiDer(privateKey), options);
  return sequence(info, scheme.algorithmDer, bitString(sign(scheme.hash, info, privateKey)));
}

/** An ECDSA P-256 key pair held as DER only, as `generateKeyPairSync` returns it with DER encodings. */
export interface P256KeyDer {
  /** The private key, PKCS#8 DER. */
  readonly pkcs8: Buffer;
  /** The public key, SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
}

/**
 * Builds a DER PKCS#10 CSR for an ECDSA P-256 key given as DER, signed with ECDSA/SHA-256. No KeyObject is
 * created: an agent issuing thousands of CSRs leaves no native key objects waiting for garbage collection.
 * The key must be P-256 (the signature algorithm says so; a CSR for another key fails the CA's
 * proof-of-possession check).
 *
 * @throws {TypeError} when `key.pkcs8` is not a private key Node can read; {@link RangeError} on unencodable names.
 * @example
 * ```ts
 * const { privateKey: pkcs8, publicKey: spki } = generateKeyPairSync('ec', {
 *   namedCurve: 'P-256',
 *   publicKeyEncoding: { type: 'spki', format: 'der' },
 *   privateKeyEncoding: { type: 'pkcs8', format: 'der' },
 * });
 * const der = buildP256Csr({ pkcs8, spki });
 * ```
 */
export function buildP256Csr(key: P256KeyDer, options: CsrOptions = {}): Buffer {
  const info = certificationRequestInfo(key.spki, options);
  const signature = sign('sha256', info, { key: key.pkcs8, format: 'der', type: 'pkcs8' });
  return sequence(info, SignatureAlgorithmDer.ecdsaWithSha256, bitString(signature));
}

/** The CertificationRequestInfo of a CSR for the key `spki`. */
function certificationRequestInfo(spki: Buffer, options: CsrOptions): Buffer {
  const names: Buffer[] = [];
  for (const d of options.dnsNames ?? []) names.push(implicit(2, ia5Bytes(d)));
  for (const u of options.uris ?? []) names.push(implicit(6, ia5Bytes(u)));
  for (const ip of options.ipAddresses ?? []) names.push(implicit(7, ipAddressBytes(ip)));
  const attributes: Buffer[] = [];
  if (names.length) {
    const san = sequence(ExtensionOidDer.subjectAltName, octetString(sequence(...names)));
    attributes.push(sequence(oid(Oid.extensionRequest), setOf(sequence(san))));
  }
  return sequence(
    integer(0),
    encodeName(options.subject),
    spki,
    implicit(0, Buffer.concat(attributes), true),
  );
}

/** Signature algorithms accepted in CSRs: digest, key type, whether NULL parameters are allowed. */
const csrSignatureAlgorithms: ReadonlyMap<string, { hash: string | null; key: string; nullParams: boolean }> =
  new Map([
    [Oid.ecdsaWithSha256, { hash: 'sha256', key: 'ec', nullParams: false }],
    [Oid.ecdsaWithSha384, { hash: 'sha384', key: 'ec', nullParams: false }],
    [Oid.ecdsaWithSha512, { hash: 'sha512', key: 'ec', nullParams: false }],
    [Oid.sha256WithRsa, { hash: 'sha256', key: 'rsa', nullParams: true }],
    [Oid.sha384WithRsa, { hash: 'sha384', key: 'rsa', nullParams: true }],
    [Oid.sha512WithRsa, { hash: 'sha512', key: 'rsa', nullParams: true }],
    [Oid.ed25519, { hash: null, key: 'ed25519', nullParams: false }],
  ]);

const knownNameAttributes: ReadonlyMap<string, keyof DistinguishedName> = new Map([
  [Oid.country, 'country'],
  [Oid.organization, 'organization'],
  [Oid.organizationalUnit, 'organizationalUnit'],
  [Oid.serialNumber, 'serialNumber'],
  [Oid.commonName, 'commonName'],
]);

function fail(message: string, cause?: unknown): never {
  throw new X509SvidError(
    'ERR_X509SVID_INVALID',
    `csr: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Parses a DER PKCS#10 CSR and verifies its self-signature. Fails closed: malformed DER, trailing data,
 * a version other than v1, unsupported or mismatched algorithms, weak keys (RSA < 2048 bits, curves other
 * than P-256/P-384), duplicate extensions, or a bad signature are all rejected.
 *
 * @throws {X509SvidError} `ERR_X509SVID_INVALID` with a message starting `csr: `.
 * @example const { spkiDer, uris } = parseCsr(der);
 */
export function parseCsr(der: Uint8Array): ParsedCsr {
  if (!(der instanceof Uint8Array)) throw new TypeError('csr: parseCsr expects bytes');
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  try {
    return parseCsrDer(buf);
  } catch (err) {
    if (err instanceof X509SvidError) throw err;
    if (err instanceof DerError) fail(`malformed request: ${err.message}`, err);
    fail('malformed request', err);
  }
}

/** The DER of a P-256 SubjectPublicKeyInfo with an uncompressed point, up to the point's X coordinate. */
const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d03010703420004', 'hex');

/**
 * Imports a SubjectPublicKeyInfo. A P-256 key goes through JWK, about twice as cheap as OpenSSL's DER decoder
 * on the issuance hot path; the import still checks that the point is on the curve.
 */
function importSpki(der: Buffer): { publicKey: KeyObject; keyType: ReturnType<typeof keyTypeOf> } {
  if (
    der.length === P256_SPKI_PREFIX.length + 64 &&
    der.subarray(0, P256_SPKI_PREFIX.length).equals(P256_SPKI_PREFIX)
  ) {
    const at = P256_SPKI_PREFIX.length;
    const jwk = {
      kty: 'EC',
      crv: 'P-256',
      x: der.subarray(at, at + 32).toString('base64url'),
      y: der.subarray(at + 32).toString('base64url'),
    };
    return { publicKey: createPublicKey({ key: jwk, format: 'jwk' }), keyType: 'ec-p256' };
  }
  const publicKey = createPublicKey({ key: Buffer.from(der), format: 'der', type: 'spki' });
  return { publicKey, keyType: keyTypeOf(publicKey) };
}

function parseCsrDer(buf: Buffer): ParsedCsr {
  const outer = new DerReader(readOne(buf, Tag.sequence, 'certification request').content);
  const info = outer.read(Tag.sequence, 'certification request info');
  const algorithm = outer.read(Tag.sequence, 'signature algorithm');
  const signature = decodeBitString(outer.read(Tag.bitString, 'signature').content);
  outer.end('certification request');
  if (signature.unusedBits !== 0) fail('signature has unused bits');

  const alg = new DerReader(algorithm.content);
  const algOid = decodeOid(alg.read(Tag.oid, 'signature algorithm oid').content);
  const scheme = csrSignatureAlgorithms.get(algOid);
  if (!scheme) fail(`unsupported signature algorithm "${algOid}"`);
  if (!alg.atEnd()) {
    const params = alg.read(undefined, 'signature algorithm parameters');
    if (!scheme.nullParams || params.tag !== Tag.null || params.content.length !== 0) {
      fail(`unexpected parameters for signature algorithm "${algOid}"`);
    }
    alg.end('signature algorithm');
  }

  const cri = new DerReader(info.content);
  const version = cri.read(Tag.integer, 'version').content;
  if (version.length !== 1 || version[0] !== 0) fail('unsupported version (want v1)');
  const subject = cri.read(Tag.sequence, 'subject');
  const spki = cri.read(Tag.sequence, 'subject public key info');
  const attributes = cri.read(0xa0, 'attributes');
  cri.end('certification request info');

  let publicKey: KeyObject;
  let keyType: ReturnType<typeof keyTypeOf>;
  try {
    ({ publicKey, keyType } = importSpki(spki.raw));
  } catch (err) {
    fail('invalid subject public key', err);
  }
  if (keyType === undefined) {
    const curve = publicKey.asymmetricKeyDetails?.namedCurve;
    fail(`unsupported public key "${publicKey.asymmetricKeyType}${curve ? ` ${curve}` : ''}"`);
  }
  if (publicKey.asymmetricKeyType !== scheme.key) {
    fail(`signature algorithm "${algOid}" does not match a "${publicKey.asymmetricKeyType}" key`);
  }
  let valid = false;
  try {
    valid = verify(scheme.hash, info.raw, publicKey, signature.bytes);
  } catch (err) {
    fail('signature does not verify', err);
  }
  if (!valid) fail('signature does not verify');

  const sans = parseAttributes(attributes.content);
  return {
    publicKey,
    spkiDer: Buffer.from(spki.raw),
    uris: sans.uris,
    dnsNames: sans.dnsNames,
    ipAddresses: sans.ipAddresses,
    subject: parseName(subject.content),
    subjectDer: Buffer.from(subject.raw),
  };
}

interface Sans {
  uris: string[];
  dnsNames: string[];
  ipAddresses: string[];
}

function parseAttributes(content: Buffer): Sans {
  const sans: Sans = { uris: [], dnsNames: [], ipAddresses: [] };
  const attrs = new DerReader(content);
  let sawExtensionRequest = false;
  while (!attrs.atEnd()) {
    const attr = new DerReader(attrs.read(Tag.sequence, 'attribute').content);
    const type = decodeOid(attr.read(Tag.oid, 'attribute type').content);
    const values = new DerReader(attr.read(Tag.set, 'attribute values').content);
    attr.end('attribute');
    if (type !== Oid.extensionRequest) continue;
    if (sawExtensionRequest) fail('duplicate extension request attribute');
    sawExtensionRequest = true;
    const extensions = new DerReader(values.read(Tag.sequence, 'extensions').content);
    values.end('extension request');
    const seen = new Set<string>();
    while (!extensions.atEnd()) {
      const ext = new DerReader(extensions.read(Tag.sequence, 'extension').content);
      const extOid = decodeOid(ext.read(Tag.oid, 'extension id').content);
      const critical = ext.readOptional(Tag.boolean, 'critical');
      if (
        critical &&
        (critical.content.length !== 1 || (critical.content[0] !== 0 && critical.content[0] !== 0xff))
      ) {
        fail('invalid critical flag');
      }
      const value = ext.read(Tag.octetString, 'extension value').content;
      ext.end('extension');
      if (seen.has(extOid)) fail(`duplicate extension "${extOid}"`);
      seen.add(extOid);
      if (extOid === Oid.subjectAltName) parseSan(value, sans);
    }
  }
  return sans;
}

function parseSan(value: Buffer, sans: Sans): void {
  const names = new DerReader(readOne(value, Tag.sequence, 'subject alternative name').content);
  if (names.atEnd()) fail('empty subject alternative name');
  while (!names.atEnd()) {
    const name = names.read(undefined, 'general name');
    switch (name.tag) {
      case 0x82:
        sans.dnsNames.push(ia5(name.content, 'dns name'));
        break;
      case 0x86:
        sans.uris.push(ia5(name.content, 'uri'));
        break;
      case 0x87:
        sans.ipAddresses.push(ipText(name.content));
        break;
      default:
        // Other GeneralName forms (email, directoryName, otherName...) are not used by SPIFFE: ignored.
        if ((name.tag & 0xc0) !== 0x80) fail('invalid general name');
    }
  }
}

function ia5(content: Buffer, what: string): string {
  for (const b of content) {
    if (b > 0x7f) fail(`${what} is not ascii`);
  }
  return content.toString('latin1');
}

function ipText(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) {
    const words: string[] = [];
    for (let i = 0; i < 16; i += 2) words.push(bytes.readUInt16BE(i).toString(16));
    return words.join(':');
  }
  fail(`ip address of ${bytes.length} bytes`);
}

function parseName(content: Buffer): DistinguishedName {
  const out: Partial<Record<keyof DistinguishedName, string>> = {};
  const rdns = new DerReader(content);
  while (!rdns.atEnd()) {
    const rdn = new DerReader(rdns.read(Tag.set, 'relative distinguished name').content);
    if (rdn.atEnd()) fail('empty relative distinguished name');
    while (!rdn.atEnd()) {
      const atv = new DerReader(rdn.read(Tag.sequence, 'attribute').content);
      const type = decodeOid(atv.read(Tag.oid, 'attribute type').content);
      const value = atv.read(undefined, 'attribute value');
      atv.end('attribute');
      const key = knownNameAttributes.get(type);
      if (key && out[key] === undefined) out[key] = decodeString(value.tag, value.content);
    }
  }
  return out;
}

function decodeString(tag: number, content: Buffer): string {
  switch (tag) {
    case Tag.utf8String:
      return decodeUtf8(content);
    case Tag.printableString:
    case Tag.ia5String:
      return ia5(content, 'subject attribute');
    case Tag.t61String:
      return content.toString('latin1');
    case Tag.bmpString: {
      if (content.length % 2) fail('invalid bmp string in subject');
      return Buffer.from(content).swap16().toString('utf16le');
    }
    default:
      fail(`unsupported string type 0x${tag.toString(16)} in subject`);
  }
}

function decodeUtf8(content: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(content);
  } catch (err) {
    fail('invalid utf-8 in subject', err);
  }
}
