/**
 * A small, defensive DER reader for the parts of an X.509 certificate that node:crypto's
 * `X509Certificate` does not expose in a usable form: basic constraints, key usage bits, extended key
 * usage, subject alternative names, name constraints, raw issuer/subject names, validity and unknown
 * critical extensions. Internal: never exported from the package.
 *
 * Every read is bounds-checked; any malformed input raises an {@link X509SvidError} with code
 * `ERR_X509SVID_INVALID` (never another kind of error). Parsed results are cached per
 * `X509Certificate` object in a WeakMap.
 *
 * @module
 */
import type { X509Certificate } from 'node:crypto';
import { X509SvidError } from '../errors.js';

/** Largest DER element we accept (certificates are far smaller). */
const MAX_LENGTH = 1 << 24;
/** Most entries we accept in one list (extensions, SANs, subtrees, EKU OIDs). */
const MAX_ITEMS = 1024;

/** Key usage bits (RFC 5280 §4.2.1.3), as bit masks over {@link KeyUsageInfo.bits}. */
export const KeyUsage = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8,
} as const;

/** Dotted OIDs of the extended key usages SPIFFE cares about. */
export const Eku = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

/** The basicConstraints extension (RFC 5280 §4.2.1.9). */
export interface BasicConstraintsInfo {
  readonly present: boolean;
  readonly critical: boolean;
  readonly cA: boolean;
  /** pathLenConstraint, when present. */
  readonly pathLen: number | undefined;
}

/** The keyUsage extension; `bits` is a mask of {@link KeyUsage} values. */
export interface KeyUsageInfo {
  readonly present: boolean;
  readonly critical: boolean;
  readonly bits: number;
}

/** The extKeyUsage extension: dotted OIDs. */
export interface ExtKeyUsageInfo {
  readonly present: boolean;
  readonly critical: boolean;
  readonly oids: readonly string[];
}

/** The subjectAltName extension. `other` counts names of kinds other than URI, DNS and IP. */
export interface SubjectAltNameInfo {
  readonly present: boolean;
  readonly critical: boolean;
  readonly uris: readonly string[];
  readonly dns: readonly string[];
  /** IP addresses as raw 4- or 16-byte buffers. */
  readonly ips: readonly Buffer[];
  readonly other: number;
}

/** An IP subtree of a name constraint: address and mask of the same length (4 or 16 bytes). */
export interface IpSubtree {
  readonly address: Buffer;
  readonly mask: Buffer;
}

/** The nameConstraints extension (RFC 5280 §4.2.1.10), restricted to the kinds we evaluate. */
export interface NameConstraintsInfo {
  readonly critical: boolean;
  readonly permittedUris: readonly string[];
  readonly excludedUris: readonly string[];
  readonly permittedDns: readonly string[];
  readonly excludedDns: readonly string[];
  readonly permittedIps: readonly IpSubtree[];
  readonly excludedIps: readonly IpSubtree[];
  /**
   * Names of constraint kinds present that this reader cannot evaluate (e.g. `directoryName`,
   * `rfc822Name`, or subtrees with minimum/maximum); a validator must fail closed when non-empty.
   */
  readonly unsupported: readonly string[];
}

/** What the verifier needs from one certificate. */
export interface CertInfo {
  /** The DER of the whole certificate. */
  readonly der: Buffer;
  /** Raw DER (tag, length, content) of the issuer Name. */
  readonly issuer: Buffer;
  /** Raw DER (tag, length, content) of the subject Name. */
  readonly subject: Buffer;
  /** True when the subject Name is an empty sequence. */
  readonly subjectEmpty: boolean;
  /** notBefore, in milliseconds since the epoch. */
  readonly notBefore: number;
  /** notAfter, in milliseconds since the epoch. */
  readonly notAfter: number;
  readonly basicConstraints: BasicConstraintsInfo;
  readonly keyUsage: KeyUsageInfo;
  readonly extKeyUsage: ExtKeyUsageInfo;
  readonly subjectAltName: SubjectAltNameInfo;
  /** Present only when the certificate carries the extension. */
  readonly nameConstraints: NameConstraintsInfo | undefined;
  /** Dotted OIDs of critical extensions this reader does not process. */
  readonly unknownCritical: readonly string[];
}

function malformed(what: string): X509SvidError {
  return new X509SvidError('ERR_X509SVID_INVALID', `x509svid: malformed certificate: ${what}`);
}

/** One DER element: its tag, and where its content starts and ends in the buffer. */
export interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly head: number;
  /** Offset of the first content byte. */
  readonly start: number;
  /** Offset just past the last content byte. */
  readonly end: number;
}

/**
 * Reads one DER element at `pos`, which must end at or before `limit`. Only low tag numbers and
 * definite, minimal lengths are accepted.
 */
export function readTlv(buf: Uint8Array, pos: number, limit: number, what: string): Tlv {
  if (pos + 2 > limit) throw malformed(`${what} is truncated`);
  const tag = buf[pos]!;
  if ((tag & 0x1f) === 0x1f) throw malformed(`${what} uses a high tag number`);
  let len = buf[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw malformed(`${what} uses an indefinite length`);
    if (n > 3) throw malformed(`${what} is too long`);
    if (start + n > limit) throw malformed(`${what} is truncated`);
    if (buf[start] === 0) throw malformed(`${what} has a non-minimal length`);
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[start + i]!;
    if (len < 0x80) throw malformed(`${what} has a non-minimal length`);
    start += n;
  }
  if (len > MAX_LENGTH) throw malformed(`${what} is too long`);
  const end = start + len;
  if (end > limit) throw malformed(`${what} is truncated`);
  return { tag, head: pos, start, end };
}

function expect(buf: Uint8Array, pos: number, limit: number, tag: number, what: string): Tlv {
  const t = readTlv(buf, pos, limit, what);
  if (t.tag !== tag) throw malformed(`${what} has an unexpected tag 0x${t.tag.toString(16)}`);
  return t;
}

/** Iterates the elements inside a constructed element's content. */
function* children(buf: Uint8Array, parent: Tlv, what: string): Generator<Tlv> {
  let pos = parent.start;
  let count = 0;
  while (pos < parent.end) {
    if (++count > MAX_ITEMS) throw malformed(`${what} has too many elements`);
    const t = readTlv(buf, pos, parent.end, what);
    yield t;
    pos = t.end;
  }
}

function readBoolean(buf: Uint8Array, t: Tlv, what: string): boolean {
  if (t.tag !== 0x01 || t.end - t.start !== 1) throw malformed(`${what} is not a boolean`);
  const v = buf[t.start]!;
  if (v === 0xff) return true;
  if (v === 0x00) return false;
  throw malformed(`${what} is not a DER boolean`);
}

/** Reads a non-negative INTEGER small enough for a JS number. */
function readSmallUint(buf: Uint8Array, t: Tlv, what: string): number {
  if (t.tag !== 0x02) throw malformed(`${what} is not an integer`);
  const n = t.end - t.start;
  if (n === 0) throw malformed(`${what} is empty`);
  if (buf[t.start]! & 0x80) throw malformed(`${what} is negative`);
  if (n > 1 && buf[t.start] === 0 && !(buf[t.start + 1]! & 0x80)) throw malformed(`${what} is not minimal`);
  if (n > 5 || (n === 5 && buf[t.start] !== 0)) throw malformed(`${what} is too large`);
  let v = 0;
  for (let i = t.start; i < t.end; i++) v = v * 256 + buf[i]!;
  return v;
}

/** Decodes OBJECT IDENTIFIER content to dotted form (arbitrary-size arcs). */
function oidToString(buf: Uint8Array, t: Tlv): string {
  const arcs: bigint[] = [];
  let v = 0n;
  let inArc = false;
  for (let i = t.start; i < t.end; i++) {
    const b = buf[i]!;
    if (!inArc && b === 0x80) throw malformed('object identifier is not minimal');
    v = (v << 7n) | BigInt(b & 0x7f);
    inArc = (b & 0x80) !== 0;
    if (!inArc) {
      arcs.push(v);
      v = 0n;
    }
  }
  if (inArc || arcs.length === 0) throw malformed('object identifier is truncated');
  const first = arcs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...arcs.slice(1)].join('.');
}

function readOid(buf: Uint8Array, t: Tlv, what: string): { hex: string; dotted: () => string } {
  if (t.tag !== 0x06 || t.end === t.start) throw malformed(`${what} is not an object identifier`);
  const hex = Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start).toString('hex');
  return { hex, dotted: () => oidToString(buf, t) };
}

function readIa5(buf: Uint8Array, t: Tlv, what: string): string {
  for (let i = t.start; i < t.end; i++) {
    if (buf[i]! > 0x7e || buf[i]! < 0x20) throw malformed(`${what} is not printable ASCII`);
  }
  return Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start).toString('latin1');
}

function digits(s: string, from: number, n: number): number {
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return Number.NaN;
    v = v * 10 + c;
  }
  return v;
}

/** Parses UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ) as RFC 5280 requires. */
function readTime(buf: Uint8Array, t: Tlv, what: string): number {
  const s = Buffer.from(buf.buffer, buf.byteOffset + t.start, t.end - t.start).toString('latin1');
  let year: number;
  let rest: number;
  if (t.tag === 0x17 && s.length === 13) {
    const yy = digits(s, 0, 2);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = 2;
  } else if (t.tag === 0x18 && s.length === 15) {
    year = digits(s, 0, 4);
    rest = 4;
  } else {
    throw malformed(`${what} is not a valid time`);
  }
  const month = digits(s, rest, 2);
  const day = digits(s, rest + 2, 2);
  const hour = digits(s, rest + 4, 2);
  const minute = digits(s, rest + 6, 2);
  const second = digits(s, rest + 8, 2);
  if (
    s[s.length - 1] !== 'Z' ||
    !(month >= 1 && month <= 12) ||
    !(day >= 1 && day <= 31) ||
    !(hour >= 0 && hour <= 23) ||
    !(minute >= 0 && minute <= 59) ||
    !(second >= 0 && second <= 59) ||
    Number.isNaN(year)
  ) {
    throw malformed(`${what} is not a valid time`);
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (new Date(ms).getUTCDate() !== day) throw malformed(`${what} is not a valid time`);
  return ms;
}

// Extension OIDs, as hex of the OID content bytes.
const OID_BASIC_CONSTRAINTS = '551d13';
const OID_KEY_USAGE = '551d0f';
const OID_EXT_KEY_USAGE = '551d25';
const OID_SUBJECT_ALT_NAME = '551d11';
const OID_NAME_CONSTRAINTS = '551d1e';
const OID_SUBJECT_KEY_ID = '551d0e';
const OID_AUTHORITY_KEY_ID = '551d23';

function parseBasicConstraints(buf: Uint8Array, v: Tlv, critical: boolean): BasicConstraintsInfo {
  const seq = expect(buf, v.start, v.end, 0x30, 'basic constraints');
  if (seq.end !== v.end) throw malformed('basic constraints has trailing data');
  let cA = false;
  let pathLen: number | undefined;
  let pos = seq.start;
  if (pos < seq.end) {
    const t = readTlv(buf, pos, seq.end, 'basic constraints');
    if (t.tag === 0x01) {
      cA = readBoolean(buf, t, 'basic constraints cA');
      if (!cA) throw malformed('basic constraints encodes the default cA value');
      pos = t.end;
    }
  }
  if (pos < seq.end) {
    const t = readTlv(buf, pos, seq.end, 'basic constraints path length');
    pathLen = readSmallUint(buf, t, 'basic constraints path length');
    pos = t.end;
  }
  if (pos !== seq.end) throw malformed('basic constraints has trailing data');
  return { present: true, critical, cA, pathLen };
}

function parseKeyUsage(buf: Uint8Array, v: Tlv, critical: boolean): KeyUsageInfo {
  const t = expect(buf, v.start, v.end, 0x03, 'key usage');
  if (t.end !== v.end) throw malformed('key usage has trailing data');
  const n = t.end - t.start;
  if (n < 1) throw malformed('key usage is empty');
  const unused = buf[t.start]!;
  if (unused > 7 || (n === 1 && unused !== 0)) throw malformed('key usage has an invalid bit string');
  let bits = 0;
  for (let i = 1; i < n && i <= 2; i++) {
    const byte = buf[t.start + i]!;
    for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) bits |= 1 << ((i - 1) * 8 + b);
  }
  return { present: true, critical, bits };
}

function parseExtKeyUsage(buf: Uint8Array, v: Tlv, critical: boolean): ExtKeyUsageInfo {
  const seq = expect(buf, v.start, v.end, 0x30, 'extended key usage');
  if (seq.end !== v.end) throw malformed('extended key usage has trailing data');
  const oids: string[] = [];
  for (const t of children(buf, seq, 'extended key usage')) {
    oids.push(readOid(buf, t, 'extended key usage').dotted());
  }
  if (oids.length === 0) throw malformed('extended key usage is empty');
  return { present: true, critical, oids };
}

function parseSubjectAltName(buf: Uint8Array, v: Tlv, critical: boolean): SubjectAltNameInfo {
  const seq = expect(buf, v.start, v.end, 0x30, 'subject alternative name');
  if (seq.end !== v.end) throw malformed('subject alternative name has trailing data');
  const uris: string[] = [];
  const dns: string[] = [];
  const ips: Buffer[] = [];
  let other = 0;
  for (const t of children(buf, seq, 'subject alternative name')) {
    switch (t.tag) {
      case 0x86:
        uris.push(readIa5(buf, t, 'URI SAN'));
        break;
      case 0x82:
        dns.push(readIa5(buf, t, 'DNS SAN'));
        break;
      case 0x87: {
        const n = t.end - t.start;
        if (n !== 4 && n !== 16) throw malformed('IP SAN has an invalid length');
        ips.push(Buffer.from(buf.subarray(t.start, t.end)));
        break;
      }
      default:
        if ((t.tag & 0xc0) !== 0x80) throw malformed('subject alternative name has an invalid entry');
        other++;
    }
  }
  if (uris.length + dns.length + ips.length + other === 0)
    throw malformed('subject alternative name is empty');
  return { present: true, critical, uris, dns, ips, other };
}

const GENERAL_NAME_KINDS: Record<number, string> = {
  0: 'otherName',
  1: 'rfc822Name',
  2: 'dNSName',
  3: 'x400Address',
  4: 'directoryName',
  5: 'ediPartyName',
  6: 'uniformResourceIdentifier',
  7: 'iPAddress',
  8: 'registeredID',
};

function parseNameConstraints(buf: Uint8Array, v: Tlv, critical: boolean): NameConstraintsInfo {
  const seq = expect(buf, v.start, v.end, 0x30, 'name constraints');
  if (seq.end !== v.end) throw malformed('name constraints has trailing data');
  const out = {
    critical,
    permittedUris: [] as string[],
    excludedUris: [] as string[],
    permittedDns: [] as string[],
    excludedDns: [] as string[],
    permittedIps: [] as IpSubtree[],
    excludedIps: [] as IpSubtree[],
    unsupported: [] as string[],
  };
  let lastTag = -1;
  for (const subtrees of children(buf, seq, 'name constraints')) {
    if ((subtrees.tag !== 0xa0 && subtrees.tag !== 0xa1) || subtrees.tag <= lastTag) {
      throw malformed('name constraints has an invalid subtree list');
    }
    lastTag = subtrees.tag;
    const permitted = subtrees.tag === 0xa0;
    let count = 0;
    for (const subtree of children(buf, subtrees, 'name constraints subtree')) {
      count++;
      if (subtree.tag !== 0x30) throw malformed('name constraints subtree is not a sequence');
      const base = readTlv(buf, subtree.start, subtree.end, 'name constraints base');
      if (base.end !== subtree.end) {
        // minimum / maximum: DER omits the default minimum, so anything here is a form we do not evaluate.
        out.unsupported.push('subtree with minimum or maximum');
        continue;
      }
      const kind = base.tag & 0x1f;
      if ((base.tag & 0xc0) !== 0x80) throw malformed('name constraints base is not a general name');
      if (base.tag === 0x86) {
        (permitted ? out.permittedUris : out.excludedUris).push(readIa5(buf, base, 'URI constraint'));
      } else if (base.tag === 0x82) {
        (permitted ? out.permittedDns : out.excludedDns).push(readIa5(buf, base, 'DNS constraint'));
      } else if (base.tag === 0x87) {
        const n = base.end - base.start;
        if (n !== 8 && n !== 32) throw malformed('IP constraint has an invalid length');
        const half = n / 2;
        const subtreeIp = {
          address: Buffer.from(buf.subarray(base.start, base.start + half)),
          mask: Buffer.from(buf.subarray(base.start + half, base.end)),
        };
        (permitted ? out.permittedIps : out.excludedIps).push(subtreeIp);
      } else {
        out.unsupported.push(GENERAL_NAME_KINDS[kind] ?? `general name [${kind}]`);
      }
    }
    if (count === 0) throw malformed('name constraints has an empty subtree list');
  }
  return out;
}

const NO_BASIC_CONSTRAINTS: BasicConstraintsInfo = {
  present: false,
  critical: false,
  cA: false,
  pathLen: undefined,
};
const NO_KEY_USAGE: KeyUsageInfo = { present: false, critical: false, bits: 0 };
const NO_EXT_KEY_USAGE: ExtKeyUsageInfo = { present: false, critical: false, oids: [] };
const NO_SUBJECT_ALT_NAME: SubjectAltNameInfo = {
  present: false,
  critical: false,
  uris: [],
  dns: [],
  ips: [],
  other: 0,
};

/**
 * Parses one DER certificate. Throws {@link X509SvidError} `ERR_X509SVID_INVALID` on malformed input.
 */
export function parseCertificateDer(der: Uint8Array): CertInfo {
  try {
    return parseCertificate(der);
  } catch (err) {
    if (err instanceof X509SvidError) throw err;
    // Fail closed: no other kind of error may escape the reader.
    throw malformed('certificate could not be read');
  }
}

function parseCertificate(der: Uint8Array): CertInfo {
  const buf = der;
  const cert = expect(buf, 0, buf.length, 0x30, 'certificate');
  if (cert.end !== buf.length) throw malformed('certificate has trailing data');
  const tbs = expect(buf, cert.start, cert.end, 0x30, 'tbsCertificate');
  const outerAlg = expect(buf, tbs.end, cert.end, 0x30, 'signature algorithm');
  const sig = expect(buf, outerAlg.end, cert.end, 0x03, 'signature');
  if (sig.end !== cert.end) throw malformed('certificate has trailing fields');

  let pos = tbs.start;
  let t = readTlv(buf, pos, tbs.end, 'tbsCertificate');
  let version = 0;
  if (t.tag === 0xa0) {
    const vt = expect(buf, t.start, t.end, 0x02, 'version');
    if (vt.end !== t.end) throw malformed('version has trailing data');
    version = readSmallUint(buf, vt, 'version');
    if (version > 2) throw malformed(`unsupported version ${version + 1}`);
    pos = t.end;
    t = readTlv(buf, pos, tbs.end, 'serial number');
  }
  if (t.tag !== 0x02 || t.end === t.start) throw malformed('serial number is not an integer');
  pos = t.end;
  const innerAlg = expect(buf, pos, tbs.end, 0x30, 'tbs signature algorithm');
  if (
    Buffer.compare(buf.subarray(innerAlg.head, innerAlg.end), buf.subarray(outerAlg.head, outerAlg.end)) !== 0
  ) {
    throw malformed('signature algorithm does not match the tbsCertificate signature algorithm');
  }
  const issuer = expect(buf, innerAlg.end, tbs.end, 0x30, 'issuer');
  const validity = expect(buf, issuer.end, tbs.end, 0x30, 'validity');
  const nb = readTlv(buf, validity.start, validity.end, 'notBefore');
  const na = readTlv(buf, nb.end, validity.end, 'notAfter');
  if (na.end !== validity.end) throw malformed('validity has trailing data');
  const notBefore = readTime(buf, nb, 'notBefore');
  const notAfter = readTime(buf, na, 'notAfter');
  const subject = expect(buf, validity.end, tbs.end, 0x30, 'subject');
  const spki = expect(buf, subject.end, tbs.end, 0x30, 'subject public key info');
  pos = spki.end;

  let basicConstraints = NO_BASIC_CONSTRAINTS;
  let keyUsage = NO_KEY_USAGE;
  let extKeyUsage = NO_EXT_KEY_USAGE;
  let subjectAltName = NO_SUBJECT_ALT_NAME;
  let nameConstraints: NameConstraintsInfo | undefined;
  const unknownCritical: string[] = [];

  let lastTag = 0;
  while (pos < tbs.end) {
    const f = readTlv(buf, pos, tbs.end, 'tbsCertificate field');
    pos = f.end;
    if (f.tag <= lastTag || (f.tag !== 0x81 && f.tag !== 0x82 && f.tag !== 0xa3)) {
      throw malformed(`tbsCertificate has an unexpected field 0x${f.tag.toString(16)}`);
    }
    lastTag = f.tag;
    if (version < 1) throw malformed('version 1 certificate has unique identifiers or extensions');
    if (f.tag !== 0xa3) continue;
    if (version !== 2) throw malformed('only version 3 certificates may have extensions');
    const exts = expect(buf, f.start, f.end, 0x30, 'extensions');
    if (exts.end !== f.end) throw malformed('extensions have trailing data');
    const seen = new Set<string>();
    for (const ext of children(buf, exts, 'extensions')) {
      if (ext.tag !== 0x30) throw malformed('extension is not a sequence');
      const oidTlv = readTlv(buf, ext.start, ext.end, 'extension id');
      const oid = readOid(buf, oidTlv, 'extension id');
      if (seen.has(oid.hex)) throw malformed(`duplicate extension ${oid.dotted()}`);
      seen.add(oid.hex);
      let next = readTlv(buf, oidTlv.end, ext.end, 'extension');
      let critical = false;
      if (next.tag === 0x01) {
        critical = readBoolean(buf, next, 'extension critical flag');
        if (!critical) throw malformed('extension encodes the default critical value');
        next = readTlv(buf, next.end, ext.end, 'extension value');
      }
      if (next.tag !== 0x04 || next.end !== ext.end)
        throw malformed('extension value is not an octet string');
      switch (oid.hex) {
        case OID_BASIC_CONSTRAINTS:
          basicConstraints = parseBasicConstraints(buf, next, critical);
          break;
        case OID_KEY_USAGE:
          keyUsage = parseKeyUsage(buf, next, critical);
          break;
        case OID_EXT_KEY_USAGE:
          extKeyUsage = parseExtKeyUsage(buf, next, critical);
          break;
        case OID_SUBJECT_ALT_NAME:
          subjectAltName = parseSubjectAltName(buf, next, critical);
          break;
        case OID_NAME_CONSTRAINTS:
          nameConstraints = parseNameConstraints(buf, next, critical);
          break;
        case OID_SUBJECT_KEY_ID:
        case OID_AUTHORITY_KEY_ID:
          break;
        default:
          if (critical) unknownCritical.push(oid.dotted());
      }
    }
    if (seen.size === 0) throw malformed('extensions are empty');
  }

  return {
    der: Buffer.from(der.buffer, der.byteOffset, der.byteLength),
    issuer: Buffer.from(buf.buffer, buf.byteOffset + issuer.head, issuer.end - issuer.head),
    subject: Buffer.from(buf.buffer, buf.byteOffset + subject.head, subject.end - subject.head),
    subjectEmpty: subject.end === subject.start,
    notBefore,
    notAfter,
    basicConstraints,
    keyUsage,
    extKeyUsage,
    subjectAltName,
    nameConstraints,
    unknownCritical,
  };
}

const cache = new WeakMap<X509Certificate, CertInfo | X509SvidError>();

/**
 * Returns the parsed DER details of `cert`, cached per object. Throws {@link X509SvidError}
 * `ERR_X509SVID_INVALID` when the certificate's DER is malformed (the failure is cached too).
 */
export function certInfo(cert: X509Certificate): CertInfo {
  let info = cache.get(cert);
  if (info === undefined) {
    try {
      info = parseCertificateDer(cert.raw);
    } catch (err) {
      if (!(err instanceof X509SvidError)) throw err;
      info = err;
    }
    cache.set(cert, info);
  }
  if (info instanceof X509SvidError) throw info;
  return info;
}
