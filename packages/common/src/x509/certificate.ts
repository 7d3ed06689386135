/**
 * Hand-built X.509 v3 certificates (RFC 5280) signed with node:crypto.
 *
 * {@link buildCertificate} is the general builder: it emits exactly the extensions it is asked for, so that tests
 * can also make defective certificates. {@link buildLeafSvid} is the issuance fast path: everything constant is
 * precomputed in an {@link IssuerContext} and the SPIFFE policy for leaves is enforced.
 *
 * @module
 */
import { type KeyObject, randomFillSync, sign, X509Certificate } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import { DerError, DerReader, readOne } from './der-reader.js';
import {
  bitString,
  boolean,
  explicit,
  ia5Bytes,
  implicit,
  integer,
  namedBits,
  octetString,
  oid,
  printableString,
  sequence,
  setOf,
  Tag,
  tlv,
  utf8String,
  x509Time,
} from './der-writer.js';
import { keyIdentifier, type SignatureScheme, signatureSchemeFor, spkiDer } from './keys.js';
import { ExtensionOidDer, Oid } from './oids.js';

/** A distinguished name built from the common attributes; an empty object is the empty name. */
export interface DistinguishedName {
  readonly country?: string;
  readonly organization?: string;
  readonly organizationalUnit?: string;
  readonly serialNumber?: string;
  readonly commonName?: string;
}

/** The KeyUsage bits of RFC 5280 §4.2.1.3. */
export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

/** Bit number of each {@link KeyUsageName}. */
export const KEY_USAGE_BITS: Readonly<Record<KeyUsageName, number>> = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
};

/** Extended key usages Tessera emits. */
export type ExtKeyUsageName = 'serverAuth' | 'clientAuth';

/** SPIRE's X509-SVID key usage: digitalSignature, keyEncipherment, keyAgreement. */
export const LEAF_KEY_USAGE: readonly KeyUsageName[] = [
  'digitalSignature',
  'keyEncipherment',
  'keyAgreement',
];
/** SPIRE's CA key usage: keyCertSign, cRLSign. */
export const CA_KEY_USAGE: readonly KeyUsageName[] = ['keyCertSign', 'cRLSign'];

/** Options of {@link buildCertificate}. An absent extension option means the extension is omitted. */
export interface CertificateOptions {
  /** The subject's public key (a private key is accepted and its public half used). */
  readonly publicKey: KeyObject;
  /** Subject name; absent or `{}` means the empty name. */
  readonly subject?: DistinguishedName;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Serial number: magnitude bytes or a bigint. Default: 16 random bytes, positive. */
  readonly serialNumber?: Uint8Array | bigint;
  /** basicConstraints, always critical. */
  readonly basicConstraints?: { readonly ca: boolean; readonly pathLen?: number };
  /** keyUsage; critical unless `critical: false`. */
  readonly keyUsage?: { readonly usages: readonly KeyUsageName[]; readonly critical?: boolean };
  /** extKeyUsage (non-critical). An empty list emits an (invalid) empty extension. */
  readonly extKeyUsage?: readonly ExtKeyUsageName[];
  /** subjectAltName; critical by default only when the subject is empty (RFC 5280 §4.2.1.6). */
  readonly subjectAltName?: {
    readonly uris?: readonly string[];
    readonly dnsNames?: readonly string[];
    readonly ipAddresses?: readonly string[];
    readonly critical?: boolean;
  };
  /** nameConstraints (critical) with URI host and DNS subtrees. */
  readonly nameConstraints?: {
    readonly permittedUris?: readonly string[];
    readonly excludedUris?: readonly string[];
    readonly permittedDnsNames?: readonly string[];
    readonly excludedDnsNames?: readonly string[];
  };
  /** Emit subjectKeyIdentifier (RFC 5280 method 1). Default true. */
  readonly subjectKeyIdentifier?: boolean;
  /** Emit authorityKeyIdentifier (keyIdentifier of the issuer). Default true. */
  readonly authorityKeyIdentifier?: boolean;
}

/** Who signs: a private key, and the issuer's certificate unless self-signed. */
export interface CertificateIssuer {
  /** The issuer certificate; absent for a self-signed certificate (then `privateKey` must match `publicKey`). */
  readonly certificate?: X509Certificate | Uint8Array;
  readonly privateKey: KeyObject;
}

/** A certificate built by {@link buildCertificate}: its DER, and a lazily parsed X509Certificate. */
export class BuiltCertificate {
  /** The certificate DER. */
  readonly der: Buffer;
  #certificate: X509Certificate | undefined;

  constructor(der: Buffer) {
    this.der = der;
  }

  /** The parsed certificate (parsed on first access: about 0.3 ms). */
  get certificate(): X509Certificate {
    this.#certificate ??= new X509Certificate(this.der);
    return this.#certificate;
  }

  /** The certificate as PEM. */
  pem(): string {
    return derToPem(this.der);
  }
}

/**
 * Encodes DER as a PEM `CERTIFICATE` block.
 *
 * @example derToPem(built.der).startsWith('-----BEGIN CERTIFICATE-----')
 */
export function derToPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Facts taken from an issuer certificate, cached per certificate. */
interface IssuerInfo {
  readonly subjectDer: Buffer;
  readonly keyId: Buffer;
}

const issuerInfoCache = new WeakMap<X509Certificate, IssuerInfo>();

/**
 * Reads the raw subject Name and the key identifier of an issuer certificate: its subjectKeyIdentifier,
 * or the RFC 5280 method-1 identifier of its key when it has none.
 */
function issuerInfo(cert: X509Certificate | Uint8Array): IssuerInfo {
  if (cert instanceof X509Certificate) {
    const cached = issuerInfoCache.get(cert);
    if (cached) return cached;
    const info = readIssuerInfo(cert.raw);
    issuerInfoCache.set(cert, info);
    return info;
  }
  return readIssuerInfo(Buffer.from(cert.buffer, cert.byteOffset, cert.byteLength));
}

/**
 * Reads a certificate's TBSCertificate up to and including subjectPublicKeyInfo; the reader is left after it.
 * Exported for the other modules of this folder only (not from the package index).
 *
 * @throws {DerError} when the DER is malformed.
 */
export function readTbsToSpki(der: Buffer): { tbs: DerReader; subject: Buffer; spki: Buffer } {
  const cert = new DerReader(readOne(der, Tag.sequence, 'certificate').content);
  const tbs = new DerReader(cert.read(Tag.sequence, 'tbsCertificate').content);
  tbs.readOptional(0xa0, 'version');
  tbs.read(Tag.integer, 'serialNumber');
  tbs.read(Tag.sequence, 'signature');
  tbs.read(Tag.sequence, 'issuer');
  tbs.read(Tag.sequence, 'validity');
  const subject = tbs.read(Tag.sequence, 'subject').raw;
  const spki = tbs.read(Tag.sequence, 'subjectPublicKeyInfo').raw;
  return { tbs, subject, spki };
}

/**
 * The SubjectPublicKeyInfo DER of a certificate, read from its DER without parsing it natively (a view into
 * `der`). Compare it with a key's SPKI to check that a certificate carries that key.
 *
 * @throws {TypeError} when `der` is not a well-formed certificate up to its subjectPublicKeyInfo.
 * @example certificateSpkiDer(leafDer).equals(spkiDer(privateKey))
 */
export function certificateSpkiDer(der: Uint8Array): Buffer {
  try {
    return readTbsToSpki(Buffer.from(der.buffer, der.byteOffset, der.byteLength)).spki;
  } catch (err) {
    if (err instanceof DerError) throw new TypeError(`x509: malformed certificate: ${err.message}`);
    throw err;
  }
}

function readIssuerInfo(der: Buffer): IssuerInfo {
  try {
    const head = readTbsToSpki(der);
    const tbs = head.tbs;
    const subjectDer = Buffer.from(head.subject);
    const spki = head.spki;
    tbs.readOptional(0x81, 'issuerUniqueID');
    tbs.readOptional(0x82, 'subjectUniqueID');
    const extsTagged = tbs.readOptional(0xa3, 'extensions');
    if (extsTagged) {
      const exts = new DerReader(readOne(extsTagged.content, Tag.sequence, 'extensions').content);
      const skiOid = ExtensionOidDer.subjectKeyIdentifier;
      while (!exts.atEnd()) {
        const ext = new DerReader(exts.read(Tag.sequence, 'extension').content);
        const id = ext.read(Tag.oid, 'extnID');
        ext.readOptional(Tag.boolean, 'critical');
        const value = ext.read(Tag.octetString, 'extnValue');
        if (id.raw.equals(skiOid)) {
          const keyId = readOne(value.content, Tag.octetString, 'subjectKeyIdentifier').content;
          return { subjectDer, keyId: Buffer.from(keyId) };
        }
      }
    }
    return { subjectDer, keyId: keyIdentifier(spki) };
  } catch (err) {
    if (err instanceof DerError) throw new TypeError(`x509: malformed issuer certificate: ${err.message}`);
    throw err;
  }
}

const nameAttributeOrder: readonly [keyof DistinguishedName, string][] = [
  ['country', Oid.country],
  ['organization', Oid.organization],
  ['organizationalUnit', Oid.organizationalUnit],
  ['serialNumber', Oid.serialNumber],
  ['commonName', Oid.commonName],
];

/**
 * Encodes a distinguished name (one attribute per RDN, in C, O, OU, serialNumber, CN order).
 * Country and serialNumber are PrintableStrings, the rest UTF8Strings.
 *
 * @throws {RangeError} when a country or serial number is not printable.
 * @example encodeName({ country: 'US', organization: 'SPIFFE' })
 */
export function encodeName(name: DistinguishedName | undefined): Buffer {
  const rdns: Buffer[] = [];
  if (name) {
    for (const [key, attrOid] of nameAttributeOrder) {
      const value = name[key];
      if (value === undefined) continue;
      const str = key === 'country' || key === 'serialNumber' ? printableString(value) : utf8String(value);
      rdns.push(setOf(sequence(oid(attrOid), str)));
    }
  }
  return sequence(...rdns);
}

function isEmptyName(name: DistinguishedName | undefined): boolean {
  return !name || nameAttributeOrder.every(([key]) => name[key] === undefined);
}

/**
 * The octets of an IPv4 (4 bytes) or IPv6 (16 bytes) address, as in an iPAddress GeneralName.
 *
 * @throws {RangeError} when the text is not an IP address.
 * @example ipAddressBytes('127.0.0.1') // <7f 00 00 01>
 */
export function ipAddressBytes(text: string): Buffer {
  if (isIPv4(text)) return Buffer.from(text.split('.').map(Number));
  if (!isIPv6(text) || text.includes('%')) throw new RangeError(`x509: invalid ip address "${text}"`);
  let body = text;
  let tail: number[] = [];
  if (body.includes('.')) {
    const idx = body.lastIndexOf(':');
    const v4 = body
      .slice(idx + 1)
      .split('.')
      .map(Number);
    tail = [((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0)];
    body = body.slice(0, idx + 1);
    if (!body.endsWith('::')) body = body.slice(0, -1);
  }
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((h) => Number.parseInt(h, 16)));
  const parts = body.split('::');
  const head = parse(parts[0] ?? '');
  let words: number[];
  if (parts.length === 2) {
    const rest = parse(parts[1] ?? '');
    const zeros = new Array<number>(8 - head.length - rest.length - tail.length).fill(0);
    words = [...head, ...zeros, ...rest, ...tail];
  } else {
    words = [...head, ...tail];
  }
  if (words.length !== 8) throw new RangeError(`x509: invalid ip address "${text}"`);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(words[i] as number, i * 2);
  return out;
}

function extension(oidDer: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical
    ? sequence(oidDer, boolean(true), octetString(value))
    : sequence(oidDer, octetString(value));
}

function generalNames(
  uris: readonly string[],
  dnsNames: readonly string[],
  ips: readonly string[],
): Buffer[] {
  const out: Buffer[] = [];
  for (const d of dnsNames) out.push(implicit(2, ia5Bytes(d)));
  for (const u of uris) out.push(implicit(6, ia5Bytes(u)));
  for (const ip of ips) out.push(implicit(7, ipAddressBytes(ip)));
  return out;
}

function keyUsageValue(usages: readonly KeyUsageName[]): Buffer {
  return namedBits(
    usages.map((u) => {
      const bit = KEY_USAGE_BITS[u];
      if (bit === undefined) throw new TypeError(`x509: unknown key usage "${String(u)}"`);
      return bit;
    }),
  );
}

function extKeyUsageValue(usages: readonly ExtKeyUsageName[]): Buffer {
  return sequence(
    ...usages.map((u) => {
      if (u !== 'serverAuth' && u !== 'clientAuth')
        throw new TypeError(`x509: unknown ext key usage "${String(u)}"`);
      return oid(Oid[u]);
    }),
  );
}

function subtrees(
  tagNumber: number,
  uris: readonly string[],
  dnsNames: readonly string[],
): Buffer | undefined {
  const list = [
    ...dnsNames.map((d) => sequence(implicit(2, ia5Bytes(d)))),
    ...uris.map((u) => sequence(implicit(6, ia5Bytes(u)))),
  ];
  return list.length ? implicit(tagNumber, Buffer.concat(list), true) : undefined;
}

const SERIAL_POOL_SIZE = 16 * 256;
let serialPool = Buffer.alloc(0);
let serialPos = SERIAL_POOL_SIZE;

/** A 16-byte random positive serial number INTEGER (126 random bits; high bit clear, next bit set). */
function randomSerial(): Buffer {
  if (serialPos >= SERIAL_POOL_SIZE) {
    serialPool = randomFillSync(Buffer.allocUnsafe(SERIAL_POOL_SIZE));
    serialPos = 0;
  }
  const out = Buffer.allocUnsafe(18);
  out[0] = Tag.integer;
  out[1] = 16;
  serialPool.copy(out, 2, serialPos, serialPos + 16);
  serialPos += 16;
  out[2] = ((out[2] as number) & 0x7f) | 0x40;
  return out;
}

function signCertificate(tbs: Buffer, scheme: SignatureScheme, key: KeyObject): Buffer {
  const signature = sign(scheme.hash, tbs, key);
  return sequence(tbs, scheme.algorithmDer, bitString(signature));
}

const VERSION_3 = explicit(0, integer(2));

/**
 * Builds and signs an X.509 v3 certificate. Only the requested extensions are emitted, in the order
 * basicConstraints, keyUsage, extKeyUsage, subjectAltName, nameConstraints, subjectKeyIdentifier,
 * authorityKeyIdentifier. No SPIFFE policy is applied here (see {@link buildLeafSvid} for issuance).
 *
 * @param options what to put in the certificate.
 * @param issuer the signer; without `certificate`, the result is self-signed.
 * @throws {TypeError} on an unsupported key or unknown usage; {@link RangeError} on unencodable values.
 * @example
 * const { privateKey, publicKey } = generateKey('ec-p256');
 * const root = buildCertificate({ publicKey, notBefore, notAfter, subject: { commonName: 'root' },
 *   basicConstraints: { ca: true }, keyUsage: { usages: CA_KEY_USAGE } }, { privateKey });
 */
export function buildCertificate(options: CertificateOptions, issuer: CertificateIssuer): BuiltCertificate {
  const scheme = signatureSchemeFor(issuer.privateKey);
  const subjectDer = encodeName(options.subject);
  const spki = spkiDer(options.publicKey);
  let issuerName: Buffer;
  let issuerKeyId: Buffer;
  if (issuer.certificate === undefined) {
    if (!spkiDer(issuer.privateKey).equals(spki)) {
      throw new TypeError('x509: a self-signed certificate needs the private key of its public key');
    }
    issuerName = subjectDer;
    issuerKeyId = keyIdentifier(spki);
  } else {
    const info = issuerInfo(issuer.certificate);
    issuerName = info.subjectDer;
    issuerKeyId = info.keyId;
  }
  let serial: Buffer;
  if (options.serialNumber === undefined) serial = randomSerial();
  else if (typeof options.serialNumber === 'bigint') serial = integer(options.serialNumber);
  else serial = tlv(Tag.integer, options.serialNumber);

  const exts: Buffer[] = [];
  const bc = options.basicConstraints;
  if (bc) {
    const fields: Buffer[] = [];
    if (bc.ca) fields.push(boolean(true));
    if (bc.pathLen !== undefined) {
      if (!Number.isSafeInteger(bc.pathLen) || bc.pathLen < 0) {
        throw new RangeError(`x509: invalid path length ${bc.pathLen}`);
      }
      fields.push(integer(bc.pathLen));
    }
    exts.push(extension(ExtensionOidDer.basicConstraints, true, sequence(...fields)));
  }
  if (options.keyUsage) {
    exts.push(
      extension(
        ExtensionOidDer.keyUsage,
        options.keyUsage.critical ?? true,
        keyUsageValue(options.keyUsage.usages),
      ),
    );
  }
  if (options.extKeyUsage) {
    exts.push(extension(ExtensionOidDer.extKeyUsage, false, extKeyUsageValue(options.extKeyUsage)));
  }
  const san = options.subjectAltName;
  if (san) {
    const names = generalNames(san.uris ?? [], san.dnsNames ?? [], san.ipAddresses ?? []);
    const critical = san.critical ?? isEmptyName(options.subject);
    exts.push(extension(ExtensionOidDer.subjectAltName, critical, sequence(...names)));
  }
  const nc = options.nameConstraints;
  if (nc) {
    const permitted = subtrees(0, nc.permittedUris ?? [], nc.permittedDnsNames ?? []);
    const excluded = subtrees(1, nc.excludedUris ?? [], nc.excludedDnsNames ?? []);
    const parts = [permitted, excluded].filter((p): p is Buffer => p !== undefined);
    exts.push(extension(ExtensionOidDer.nameConstraints, true, sequence(...parts)));
  }
  if (options.subjectKeyIdentifier ?? true) {
    exts.push(extension(ExtensionOidDer.subjectKeyIdentifier, false, octetString(keyIdentifier(spki))));
  }
  if (options.authorityKeyIdentifier ?? true) {
    exts.push(extension(ExtensionOidDer.authorityKeyIdentifier, false, sequence(implicit(0, issuerKeyId))));
  }

  const tbs = sequence(
    VERSION_3,
    serial,
    scheme.algorithmDer,
    issuerName,
    sequence(x509Time(options.notBefore), x509Time(options.notAfter)),
    subjectDer,
    spki,
    ...(exts.length ? [explicit(3, sequence(...exts))] : []),
  );
  return new BuiltCertificate(signCertificate(tbs, scheme, issuer.privateKey));
}

/** Options of {@link createIssuerContext}. */
export interface IssuerContextOptions {
  /** The signing CA certificate (must be a CA whose key is `privateKey`). */
  readonly certificate: X509Certificate;
  readonly privateKey: KeyObject;
  /** Leaf subject. Default: empty, which makes the SAN extension critical. */
  readonly subject?: DistinguishedName;
  /** Leaf key usage. Default {@link LEAF_KEY_USAGE}. Must include digitalSignature and not keyCertSign/cRLSign. */
  readonly keyUsage?: readonly KeyUsageName[];
  /** Leaf extended key usage. Default serverAuth + clientAuth; `null` omits the extension. */
  readonly extKeyUsage?: readonly ExtKeyUsageName[] | null;
}

/** Everything constant for issuing leaves from one CA, computed once by {@link createIssuerContext}. */
export interface IssuerContext {
  /** The issuing CA certificate. */
  readonly certificate: X509Certificate;
  /** @internal */ readonly privateKey: KeyObject;
  /** @internal */ readonly scheme: SignatureScheme;
  /** @internal */ readonly issuerName: Buffer;
  /** @internal */ readonly subject: Buffer;
  /** @internal */ readonly sanCritical: boolean;
  /** @internal */ readonly constantExtensions: Buffer;
  /** @internal */ readonly caNotAfterMs: number;
}

/**
 * Precomputes the constant parts of leaf X509-SVIDs issued by one CA: version, signature algorithm, issuer
 * name, subject, and the basicConstraints/keyUsage/extKeyUsage/authorityKeyIdentifier extensions.
 *
 * @throws {TypeError} when the certificate is not a CA, the key does not match it, or the key usage would
 *   break the X509-SVID profile (X5-13).
 * @example const ctx = createIssuerContext({ certificate: caCert, privateKey: caKey });
 */
export function createIssuerContext(options: IssuerContextOptions): IssuerContext {
  const { certificate, privateKey } = options;
  if (!certificate.ca) throw new TypeError('x509: issuer certificate is not a ca');
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TypeError('x509: issuer private key does not match the issuer certificate');
  }
  const keyUsage = options.keyUsage ?? LEAF_KEY_USAGE;
  if (
    !keyUsage.includes('digitalSignature') ||
    keyUsage.includes('keyCertSign') ||
    keyUsage.includes('cRLSign')
  ) {
    throw new TypeError(
      'x509: leaf key usage must include digitalSignature and exclude keyCertSign and cRLSign',
    );
  }
  const eku =
    options.extKeyUsage === undefined ? (['serverAuth', 'clientAuth'] as const) : options.extKeyUsage;
  const scheme = signatureSchemeFor(privateKey);
  const info = issuerInfo(certificate);
  const exts = [
    extension(ExtensionOidDer.basicConstraints, true, sequence()),
    extension(ExtensionOidDer.keyUsage, true, keyUsageValue(keyUsage)),
  ];
  if (eku) exts.push(extension(ExtensionOidDer.extKeyUsage, false, extKeyUsageValue(eku)));
  exts.push(extension(ExtensionOidDer.authorityKeyIdentifier, false, sequence(implicit(0, info.keyId))));
  const caNotAfterMs = new Date(certificate.validTo).getTime();
  return {
    certificate,
    privateKey,
    scheme,
    issuerName: info.subjectDer,
    subject: encodeName(options.subject),
    sanCritical: isEmptyName(options.subject),
    constantExtensions: Buffer.concat(exts),
    caNotAfterMs: Number.isNaN(caNotAfterMs) ? 0 : caNotAfterMs,
  };
}

const MAX_SPIFFE_ID_LENGTH = 2048;

/**
 * Issues a leaf X509-SVID DER: one URI SAN (the SPIFFE ID), cA=false, the context's key usages, a random
 * 16-byte serial, subjectKeyIdentifier and authorityKeyIdentifier. The public key is given as SPKI DER
 * (from {@link parseCsr} or `KeyObject.export({ type: 'spki', format: 'der' })`).
 *
 * Policy enforced (fail closed): the ID must be `spiffe://<td>/<path>` with a non-root path (X5-03), at most
 * 2048 bytes, ASCII; `notBefore < notAfter`; the leaf must not outlive the CA.
 *
 * @throws {RangeError} when the ID, key or validity break the policy above.
 * @example const der = buildLeafSvid('spiffe://example.org/web', spki, nb, na, ctx);
 */
export function buildLeafSvid(
  spiffeId: string,
  publicKeySpkiDer: Uint8Array,
  notBefore: Date,
  notAfter: Date,
  ctx: IssuerContext,
): Buffer {
  if (spiffeId.length > MAX_SPIFFE_ID_LENGTH || !spiffeId.startsWith('spiffe://')) {
    throw new RangeError(`x509: refusing to issue for "${spiffeId.slice(0, 64)}": not a spiffe id`);
  }
  const slash = spiffeId.indexOf('/', 9);
  if (slash <= 9 || slash === spiffeId.length - 1) {
    throw new RangeError(`x509: refusing to issue for "${spiffeId}": leaf id must have a non-root path`);
  }
  let uri: Buffer;
  try {
    uri = ia5Bytes(spiffeId);
  } catch {
    throw new RangeError(`x509: refusing to issue for "${spiffeId}": not ascii`);
  }
  const nb = notBefore.getTime();
  const na = notAfter.getTime();
  if (!(nb < na)) throw new RangeError('x509: notBefore must be before notAfter');
  if (na > ctx.caNotAfterMs) throw new RangeError('x509: leaf must not outlive its issuer');
  const spki = Buffer.from(publicKeySpkiDer.buffer, publicKeySpkiDer.byteOffset, publicKeySpkiDer.byteLength);
  let keyId: Buffer;
  try {
    keyId = keyIdentifier(spki);
  } catch {
    throw new RangeError('x509: malformed subject public key info');
  }
  const tbs = sequence(
    VERSION_3,
    randomSerial(),
    ctx.scheme.algorithmDer,
    ctx.issuerName,
    sequence(x509Time(notBefore), x509Time(notAfter)),
    ctx.subject,
    spki,
    explicit(
      3,
      sequence(
        ctx.constantExtensions,
        extension(ExtensionOidDer.subjectAltName, ctx.sanCritical, sequence(implicit(6, uri))),
        extension(ExtensionOidDer.subjectKeyIdentifier, false, octetString(keyId)),
      ),
    ),
  );
  return signCertificate(tbs, ctx.scheme, ctx.privateKey);
}
