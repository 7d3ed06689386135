// Test-only builder of X.509 certificates, hand-encoded in DER and signed with node:crypto, so that the
// X509-SVID tests control every field (dates, extensions, criticality, defects) without wall-clock time.
import { createHash, generateKeyPairSync, type KeyObject, sign, X509Certificate } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
export const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  const first = arcs[0]! * 40n + arcs[1]!;
  const out: number[] = [];
  for (const arc of [first, ...arcs.slice(2)]) {
    const b: number[] = [];
    let v = arc;
    do {
      b.unshift(Number(v & 0x7fn) | (b.length ? 0x80 : 0));
      v >>= 7n;
    } while (v > 0n);
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
}

function uint(n: number | bigint): Buffer {
  let hex = BigInt(n).toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let b = Buffer.from(hex, 'hex');
  if (b[0]! & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer): Buffer => tlv(0x04, b);

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const y = d.getUTCFullYear();
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${iso.slice(2)}Z`, 'latin1'));
  return tlv(0x18, Buffer.from(`${iso}Z`, 'latin1'));
}

function bitString(bits: number[]): Buffer {
  // bits: indexes of set bits (0 = MSB of first byte); DER: minimal, with unused-bit count.
  if (bits.length === 0) return tlv(0x03, Buffer.from([0]));
  const max = Math.max(...bits);
  const nbytes = Math.floor(max / 8) + 1;
  const bytes = Buffer.alloc(nbytes);
  for (const b of bits) bytes[Math.floor(b / 8)]! |= 0x80 >> (b % 8);
  const unused = 7 - (max % 8);
  return tlv(0x03, Buffer.from([unused]), bytes);
}

export function name(cn: string | null): Buffer {
  if (cn === null) return seq();
  return seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
}

export const KU = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const;
export type KuName = keyof typeof KU;

export const EKU_SERVER = '1.3.6.1.5.5.7.3.1';
export const EKU_CLIENT = '1.3.6.1.5.5.7.3.2';

export interface Extension {
  readonly oid: string;
  readonly critical?: boolean;
  readonly value: Buffer;
}

export interface NameConstraintsSpec {
  readonly permittedUris?: string[];
  readonly excludedUris?: string[];
  readonly permittedDns?: string[];
  readonly excludedDns?: string[];
  /** address/prefix, e.g. 10.0.0.0/8 (IPv4 only) */
  readonly permittedIps?: string[];
  /** Adds a directoryName subtree (a kind the verifier does not evaluate). */
  readonly permittedDirectoryName?: string;
  readonly critical?: boolean;
}

export interface CertSpec {
  /** Subject CN; null = empty subject. */
  readonly subject?: string | null;
  readonly key?: KeyPair;
  /** Signer; omitted = self-signed. */
  readonly issuer?: Issued;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** undefined = omitted; otherwise the extension. */
  readonly basicConstraints?: { cA: boolean; pathLen?: number; critical?: boolean } | undefined;
  readonly keyUsage?: { bits: KuName[]; critical?: boolean } | undefined;
  readonly eku?: string[] | undefined;
  readonly san?: { uris?: string[]; dns?: string[]; ips?: string[]; critical?: boolean } | undefined;
  readonly nameConstraints?: NameConstraintsSpec | undefined;
  readonly extra?: Extension[];
  readonly corruptSignature?: boolean;
  readonly serial?: number;
}

export interface KeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

export interface Issued {
  readonly cert: X509Certificate;
  readonly der: Buffer;
  readonly key: KeyPair;
  readonly subject: Buffer;
}

export type KeyKind = 'ec' | 'rsa' | 'ed25519';

export function newKey(kind: KeyKind = 'ec'): KeyPair {
  if (kind === 'rsa') return generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (kind === 'ed25519') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

function sigAlg(key: KeyObject): { alg: Buffer; hash: string | null } {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return { alg: seq(oid('1.2.840.10045.4.3.2')), hash: 'sha256' };
    case 'rsa':
      return { alg: seq(oid('1.2.840.113549.1.1.11'), tlv(0x05)), hash: 'sha256' };
    case 'ed25519':
      return { alg: seq(oid('1.3.101.112')), hash: null };
    default:
      throw new Error(`unsupported key ${key.asymmetricKeyType}`);
  }
}

function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map((x) => Number(x)));
}

function generalSubtrees(tag: number, bases: Buffer[]): Buffer {
  return tlv(tag, ...bases.map((b) => seq(b)));
}

function ext(o: string, critical: boolean | undefined, value: Buffer): Buffer {
  return critical ? seq(oid(o), bool(true), octets(value)) : seq(oid(o), octets(value));
}

export const T0 = new Date('2024-01-01T00:00:00Z');
export const T1 = new Date('2034-01-01T00:00:00Z');
export const NOW = new Date('2025-06-01T00:00:00Z');

let serialCounter = 1;

/** Builds and signs one certificate. */
export function makeCert(spec: CertSpec): Issued {
  const key = spec.key ?? newKey();
  const subject = name(spec.subject === undefined ? 'test' : spec.subject);
  const signer = spec.issuer?.key ?? key;
  const issuerName = spec.issuer?.subject ?? subject;
  const { alg, hash } = sigAlg(signer.privateKey);
  const exts: Buffer[] = [];
  if (spec.basicConstraints) {
    const bc = spec.basicConstraints;
    const inner: Buffer[] = [];
    if (bc.cA) inner.push(bool(true));
    if (bc.pathLen !== undefined) inner.push(uint(bc.pathLen));
    exts.push(ext('2.5.29.19', bc.critical ?? true, seq(...inner)));
  }
  if (spec.keyUsage) {
    exts.push(
      ext('2.5.29.15', spec.keyUsage.critical ?? true, bitString(spec.keyUsage.bits.map((b) => KU[b]))),
    );
  }
  if (spec.eku) exts.push(ext('2.5.29.37', false, seq(...spec.eku.map(oid))));
  if (spec.san) {
    const names = [
      ...(spec.san.uris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'latin1'))),
      ...(spec.san.dns ?? []).map((d) => tlv(0x82, Buffer.from(d, 'latin1'))),
      ...(spec.san.ips ?? []).map((i) => tlv(0x87, ipBytes(i))),
    ];
    exts.push(ext('2.5.29.17', spec.san.critical ?? false, seq(...names)));
  }
  if (spec.nameConstraints) {
    const nc = spec.nameConstraints;
    const permitted: Buffer[] = [
      ...(nc.permittedUris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'latin1'))),
      ...(nc.permittedDns ?? []).map((d) => tlv(0x82, Buffer.from(d, 'latin1'))),
      ...(nc.permittedIps ?? []).map((cidr) => {
        const [ip, prefix] = cidr.split('/');
        const mask = Buffer.alloc(4);
        for (let i = 0; i < Number(prefix); i++) mask[Math.floor(i / 8)]! |= 0x80 >> (i % 8);
        return tlv(0x87, ipBytes(ip!), mask);
      }),
    ];
    if (nc.permittedDirectoryName !== undefined) permitted.push(tlv(0xa4, name(nc.permittedDirectoryName)));
    const excluded: Buffer[] = [
      ...(nc.excludedUris ?? []).map((u) => tlv(0x86, Buffer.from(u, 'latin1'))),
      ...(nc.excludedDns ?? []).map((d) => tlv(0x82, Buffer.from(d, 'latin1'))),
    ];
    const parts: Buffer[] = [];
    if (permitted.length) parts.push(generalSubtrees(0xa0, permitted));
    if (excluded.length) parts.push(generalSubtrees(0xa1, excluded));
    exts.push(ext('2.5.29.30', nc.critical ?? true, seq(...parts)));
  }
  // Subject key identifier, as real issuers add it (non-critical, ignored by the verifier).
  const spki = key.publicKey.export({ type: 'spki', format: 'der' });
  exts.push(ext('2.5.29.14', false, octets(createHash('sha1').update(spki).digest())));
  for (const e of spec.extra ?? []) exts.push(ext(e.oid, e.critical, e.value));

  const tbs = seq(
    tlv(0xa0, uint(2)),
    uint(spec.serial ?? serialCounter++),
    alg,
    issuerName,
    seq(time(spec.notBefore ?? T0), time(spec.notAfter ?? T1)),
    subject,
    spki,
    tlv(0xa3, seq(...exts)),
  );
  const signature = sign(hash, tbs, signer.privateKey);
  if (spec.corruptSignature) signature[signature.length - 5]! ^= 0x01;
  const der = seq(tbs, alg, tlv(0x03, Buffer.from([0]), signature));
  return { cert: new X509Certificate(der), der, key, subject };
}

export const CA_KU: { bits: KuName[] } = { bits: ['keyCertSign', 'cRLSign'] };
export const LEAF_KU: { bits: KuName[] } = { bits: ['digitalSignature', 'keyEncipherment', 'keyAgreement'] };

/** A root CA with SPIRE's CA profile. */
export function makeRoot(cn: string, over: Partial<CertSpec> = {}): Issued {
  return makeCert({
    subject: cn,
    basicConstraints: { cA: true },
    keyUsage: CA_KU,
    san: { uris: [`spiffe://${cn}`] },
    ...over,
  });
}

/** An intermediate CA with SPIRE's CA profile. */
export function makeIntermediate(issuer: Issued, cn: string, over: Partial<CertSpec> = {}): Issued {
  return makeCert({ subject: cn, issuer, basicConstraints: { cA: true }, keyUsage: CA_KU, ...over });
}

/** A leaf X509-SVID with SPIRE's leaf profile. */
export function makeLeaf(issuer: Issued, id: string, over: Partial<CertSpec> = {}): Issued {
  return makeCert({
    subject: 'workload',
    issuer,
    basicConstraints: { cA: false },
    keyUsage: LEAF_KU,
    eku: [EKU_SERVER, EKU_CLIENT],
    san: { uris: [id] },
    ...over,
  });
}

export function pem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

export function keyPem(k: KeyPair): string {
  return k.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

export function keyDer(k: KeyPair): Buffer {
  return k.privateKey.export({ format: 'der', type: 'pkcs8' });
}
