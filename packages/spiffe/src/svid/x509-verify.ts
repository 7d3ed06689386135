/**
 * X509-SVID verification: RFC 5280-style path validation of a presented chain to the X.509 bundle of
 * the leaf's trust domain, plus the SPIFFE X509-SVID profile checks.
 *
 * @module
 */
import { type KeyObject, X509Certificate } from 'node:crypto';
import { isSpiffeError, SpiffeError, X509SvidError } from '../errors.js';
import { type CertInfo, certInfo, Eku, KeyUsage, type NameConstraintsInfo } from '../internal/der.js';
import type { TrustDomain } from '../spiffeid/index.js';
import { SpiffeId } from '../spiffeid/index.js';

/**
 * What verification needs from a bundle source: the X.509 authorities of one trust domain. Any
 * `X509BundleSource` from `@tessera/spiffe/bundle` (an `X509Bundle`, a `BundleSet`, a live
 * `X509Source`) satisfies it.
 */
export interface X509AuthoritySource {
  getX509BundleForTrustDomain(td: TrustDomain): { x509Authorities(): readonly X509Certificate[] };
}

/** Options of {@link verifyX509Svid} and {@link verifyX509SvidSync}. */
export interface VerifyX509SvidOptions {
  /** The time at which every certificate must be valid. Defaults to the current time. */
  readonly now?: Date;
  /**
   * `true` (the default) enforces the X509-SVID standard fully. `false` relaxes exactly two checks, for
   * compatibility with go-spiffe and SVIDs issued by older tooling: the leaf's keyUsage extension may be
   * non-critical (X5-11), and an extended key usage extension need not list both `serverAuth` and
   * `clientAuth` (X5-14). Every other check still applies.
   */
  readonly strict?: boolean;
}

/** The result of a successful X509-SVID verification. */
export interface VerifiedX509Svid {
  /** The SPIFFE ID of the leaf certificate. */
  readonly id: SpiffeId;
  /** Every verified chain, each ordered leaf first, ending with an authority of the bundle. */
  readonly chains: X509Certificate[][];
}

/** Maximum number of intermediates in a path, and signature checks per verification. */
const MAX_INTERMEDIATES = 8;
const MAX_SIGNATURE_CHECKS = 64;

function verifyFailed(message: string, cause?: unknown): X509SvidError {
  return new X509SvidError(
    'ERR_X509SVID_VERIFY_FAILED',
    `x509svid: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Extracts the SPIFFE ID of a certificate: its single URI SAN. Returns a reason string on failure
 * (go-spiffe's wording, without prefix).
 *
 * @internal
 */
export function idFromCertInfo(info: CertInfo): SpiffeId | string {
  const uris = info.subjectAltName.uris;
  if (uris.length === 0) return 'certificate contains no URI SAN';
  if (uris.length > 1) return 'certificate contains more than one URI SAN';
  try {
    return SpiffeId.fromString(uris[0]!);
  } catch (err) {
    if (isSpiffeError(err)) return err.message;
    throw err;
  }
}

/**
 * Reads the SPIFFE ID from an X.509 certificate: the certificate must carry exactly one URI SAN, and it
 * must be a valid SPIFFE ID. The rest of the certificate is not checked.
 *
 * @param cert the certificate, usually an X509-SVID leaf
 * @throws {X509SvidError} ERR_X509SVID_INVALID, e.g. `x509svid: certificate contains no URI SAN`
 * @example
 * ```ts
 * const id = idFromCert(svid.certificates[0]);
 * ```
 */
export function idFromCert(cert: X509Certificate): SpiffeId {
  if (!(cert instanceof X509Certificate))
    throw new TypeError('x509svid: idFromCert expects an X509Certificate');
  const r = idFromCertInfo(certInfo(cert));
  if (typeof r === 'string') throw new X509SvidError('ERR_X509SVID_INVALID', `x509svid: ${r}`);
  return r;
}

const publicKeys = new WeakMap<X509Certificate, KeyObject | null>();

function publicKeyOf(cert: X509Certificate): KeyObject | null {
  let key = publicKeys.get(cert);
  if (key === undefined) {
    try {
      key = cert.publicKey;
    } catch {
      key = null;
    }
    publicKeys.set(cert, key);
  }
  return key;
}

function infoOrFail(cert: X509Certificate): CertInfo {
  try {
    return certInfo(cert);
  } catch (err) {
    if (err instanceof SpiffeError) throw verifyFailed(err.message.replace(/^x509svid: /, ''), err);
    throw err;
  }
}

function describe(cert: X509Certificate): string {
  return JSON.stringify(cert.subject.replace(/\n/g, ', '));
}

function timeError(info: CertInfo, now: number): string | undefined {
  if (now < info.notBefore) {
    return `certificate has expired or is not yet valid: current time ${iso(now)} is before ${iso(info.notBefore)}`;
  }
  if (now > info.notAfter) {
    return `certificate has expired or is not yet valid: current time ${iso(now)} is after ${iso(info.notAfter)}`;
  }
  return undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

/** Checks the leaf against the X509-SVID profile; returns its SPIFFE ID. */
function checkLeaf(leaf: CertInfo, strict: boolean): SpiffeId {
  const id = idFromCertInfo(leaf);
  if (typeof id === 'string') throw verifyFailed(`could not get leaf SPIFFE ID: ${id}`);
  const bc = leaf.basicConstraints;
  const ku = leaf.keyUsage;
  if (bc.cA) throw verifyFailed('leaf certificate with CA flag set to true');
  if (ku.bits & KeyUsage.keyCertSign) throw verifyFailed('leaf certificate with KeyCertSign key usage');
  if (ku.bits & KeyUsage.cRLSign) throw verifyFailed('leaf certificate with KeyCrlSign key usage');
  if (id.path === '') {
    throw verifyFailed(`leaf certificate SPIFFE ID must have a non-root path: "${id.toString()}"`);
  }
  if (!ku.present) throw verifyFailed('leaf certificate without key usage extension');
  if (!(ku.bits & KeyUsage.digitalSignature))
    throw verifyFailed('leaf certificate without DigitalSignature key usage');
  if (strict && !ku.critical) throw verifyFailed('leaf certificate key usage extension is not critical');
  if (strict && leaf.extKeyUsage.present) {
    const missing = [Eku.serverAuth, Eku.clientAuth].filter((o) => !leaf.extKeyUsage.oids.includes(o));
    if (missing.length > 0) {
      const names = missing.map((o) => (o === Eku.serverAuth ? 'serverAuth' : 'clientAuth')).join(' and ');
      throw verifyFailed(`leaf certificate extended key usage lacks ${names}`);
    }
  }
  if (leaf.subjectEmpty && !leaf.subjectAltName.critical) {
    throw verifyFailed(
      'leaf certificate with empty subject must have a critical subject alternative name extension',
    );
  }
  if (leaf.unknownCritical.length > 0) {
    throw verifyFailed(`leaf certificate has unhandled critical extension ${leaf.unknownCritical[0]}`);
  }
  return id;
}

function uriHost(uri: string): string | undefined {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(uri);
  if (m === null) return undefined;
  let host = m[1]!;
  const at = host.lastIndexOf('@');
  if (at >= 0) host = host.slice(at + 1);
  if (host.startsWith('[')) return undefined; // IP literal: URI constraints are host names
  const colon = host.indexOf(':');
  if (colon >= 0) host = host.slice(0, colon);
  return host === '' ? undefined : host.toLowerCase();
}

function matchesUriConstraint(host: string, constraint: string): boolean {
  const c = constraint.toLowerCase();
  if (c.startsWith('.')) return host.length > c.length && host.endsWith(c);
  return host === c;
}

function matchesDnsConstraint(name: string, constraint: string): boolean {
  const n = name.toLowerCase();
  const c = constraint.toLowerCase();
  if (c === '') return true;
  if (c.startsWith('.')) return n.length > c.length && n.endsWith(c);
  return n === c || n.endsWith(`.${c}`);
}

function matchesIpConstraint(ip: Buffer, address: Buffer, mask: Buffer): boolean {
  if (ip.length !== address.length) return false;
  for (let i = 0; i < ip.length; i++) if ((ip[i]! & mask[i]!) !== (address[i]! & mask[i]!)) return false;
  return true;
}

/** Checks one certificate's names against a CA's name constraints; returns the violation, if any. */
function nameConstraintError(nc: NameConstraintsInfo, info: CertInfo): string | undefined {
  if (nc.unsupported.length > 0) {
    return `name constraints of kind ${nc.unsupported[0]} cannot be evaluated`;
  }
  const san = info.subjectAltName;
  const uriConstrained = nc.permittedUris.length > 0 || nc.excludedUris.length > 0;
  for (const uri of san.uris) {
    if (!uriConstrained) break;
    const host = uriHost(uri);
    if (host === undefined) return `URI SAN "${uri}" has no host to check against name constraints`;
    if (nc.excludedUris.some((c) => matchesUriConstraint(host, c))) {
      return `URI SAN "${uri}" is excluded by name constraints`;
    }
    if (nc.permittedUris.length > 0 && !nc.permittedUris.some((c) => matchesUriConstraint(host, c))) {
      return `URI SAN "${uri}" is not permitted by name constraints`;
    }
  }
  for (const name of san.dns) {
    if (nc.excludedDns.some((c) => matchesDnsConstraint(name, c))) {
      return `DNS SAN "${name}" is excluded by name constraints`;
    }
    if (nc.permittedDns.length > 0 && !nc.permittedDns.some((c) => matchesDnsConstraint(name, c))) {
      return `DNS SAN "${name}" is not permitted by name constraints`;
    }
  }
  for (const ip of san.ips) {
    if (nc.excludedIps.some((c) => matchesIpConstraint(ip, c.address, c.mask))) {
      return `IP SAN ${ipString(ip)} is excluded by name constraints`;
    }
    const sameFamily = nc.permittedIps.filter((c) => c.address.length === ip.length);
    if (nc.permittedIps.length > 0 && !sameFamily.some((c) => matchesIpConstraint(ip, c.address, c.mask))) {
      return `IP SAN ${ipString(ip)} is not permitted by name constraints`;
    }
  }
  return undefined;
}

function ipString(ip: Buffer): string {
  if (ip.length === 4) return Array.from(ip).join('.');
  const parts: string[] = [];
  for (let i = 0; i < 16; i += 2) parts.push(ip.readUInt16BE(i).toString(16));
  return parts.join(':');
}

interface Node {
  readonly cert: X509Certificate;
  readonly info: CertInfo;
}

class PathBuilder {
  readonly chains: X509Certificate[][] = [];
  firstError: string | undefined;
  #signatureChecks = 0;

  constructor(
    private readonly roots: readonly Node[],
    private readonly intermediates: readonly Node[],
    private readonly now: number,
  ) {}

  #record(message: string): void {
    this.firstError ??= message;
  }

  /** Checks whether `parent` may issue the last certificate of `path`; returns a failure reason or undefined. */
  #checkParent(path: readonly Node[], parent: Node): string | undefined {
    const child = path[path.length - 1]!;
    const p = parent.info;
    if (path.some((n) => n.info.der.equals(p.der))) return 'certificate appears twice in the path';
    const t = timeError(p, this.now);
    if (t !== undefined) return t;
    if (!p.basicConstraints.cA)
      return `signing certificate ${describe(parent.cert)} must have CA flag set to true`;
    if (!(p.keyUsage.bits & KeyUsage.keyCertSign)) {
      return `signing certificate ${describe(parent.cert)} must have 'keyCertSign' set as key usage`;
    }
    const below = path.length - 1; // intermediates between `parent` and the leaf
    if (p.basicConstraints.pathLen !== undefined && below > p.basicConstraints.pathLen) {
      return `signing certificate ${describe(parent.cert)} path length constraint ${p.basicConstraints.pathLen} exceeded`;
    }
    if (p.unknownCritical.length > 0) {
      return `signing certificate ${describe(parent.cert)} has unhandled critical extension ${p.unknownCritical[0]}`;
    }
    if (p.nameConstraints !== undefined) {
      for (const n of path) {
        const e = nameConstraintError(p.nameConstraints, n.info);
        if (e !== undefined) return e;
      }
    }
    if (++this.#signatureChecks > MAX_SIGNATURE_CHECKS) return 'too many signature checks';
    const key = publicKeyOf(parent.cert);
    let ok = false;
    if (key !== null) {
      try {
        ok = child.cert.verify(key);
      } catch {
        ok = false;
      }
    }
    if (!ok) {
      return `certificate signed by unknown authority (signature check failed against candidate authority ${describe(parent.cert)})`;
    }
    return undefined;
  }

  build(path: Node[]): void {
    const issuer = path[path.length - 1]!.info.issuer;
    for (const root of this.roots) {
      if (!root.info.subject.equals(issuer)) continue;
      const e = this.#checkParent(path, root);
      if (e === undefined) this.chains.push([...path.map((n) => n.cert), root.cert]);
      else this.#record(e);
    }
    if (path.length > MAX_INTERMEDIATES) return;
    for (const inter of this.intermediates) {
      if (!inter.info.subject.equals(issuer)) continue;
      const e = this.#checkParent(path, inter);
      if (e !== undefined) {
        this.#record(e);
        continue;
      }
      path.push(inter);
      this.build(path);
      path.pop();
    }
  }
}

function checkArgs(chain: unknown, bundleSource: unknown, opts: unknown): void {
  if (!Array.isArray(chain) || !chain.every((c) => c instanceof X509Certificate)) {
    throw new TypeError('x509svid: chain must be an array of X509Certificate');
  }
  if (
    typeof bundleSource !== 'object' ||
    bundleSource === null ||
    typeof (bundleSource as { getX509BundleForTrustDomain?: unknown }).getX509BundleForTrustDomain !==
      'function'
  ) {
    throw new TypeError('x509svid: bundleSource is required');
  }
  if (typeof opts !== 'object' || opts === null) throw new TypeError('x509svid: options must be an object');
  const { now, strict } = opts as { now?: unknown; strict?: unknown };
  if (now !== undefined && !(now instanceof Date && !Number.isNaN(now.getTime()))) {
    throw new TypeError('x509svid: options.now must be a valid Date');
  }
  if (strict !== undefined && typeof strict !== 'boolean')
    throw new TypeError('x509svid: options.strict must be a boolean');
}

/**
 * Verifies an X509-SVID chain synchronously (for TLS callbacks): same checks as {@link verifyX509Svid}.
 *
 * @param chain the presented certificates, leaf first, then intermediates in any order
 * @param bundleSource where the X.509 bundle of the leaf's trust domain comes from
 * @param opts `now` (default: current time) and `strict` (default: true)
 * @returns the leaf's SPIFFE ID and every verified chain (leaf → authority)
 * @throws {X509SvidError} ERR_X509SVID_VERIFY_FAILED when the chain is not a valid X509-SVID for the bundle
 * @example
 * ```ts
 * const { id } = verifyX509SvidSync(peerChain, bundleSet, { now: new Date() });
 * ```
 */
export function verifyX509SvidSync(
  chain: readonly X509Certificate[],
  bundleSource: X509AuthoritySource,
  opts: VerifyX509SvidOptions = {},
): VerifiedX509Svid {
  checkArgs(chain, bundleSource, opts);
  const strict = opts.strict ?? true;
  const now = (opts.now ?? new Date()).getTime();
  const leafCert = chain[0];
  if (leafCert === undefined) throw verifyFailed('empty certificates chain');
  const leaf: Node = { cert: leafCert, info: infoOrFail(leafCert) };
  const id = checkLeaf(leaf.info, strict);

  let authorities: readonly X509Certificate[];
  try {
    authorities = bundleSource.getX509BundleForTrustDomain(id.trustDomain).x509Authorities();
  } catch (err) {
    if (err instanceof SpiffeError) throw verifyFailed(`could not get X509 bundle: ${err.message}`, err);
    throw err;
  }

  const leafTime = timeError(leaf.info, now);
  if (leafTime !== undefined) throw verifyFailed(`could not verify leaf certificate: ${leafTime}`);

  const intermediates: Node[] = [];
  for (let i = 1; i < chain.length; i++) {
    const cert = chain[i]!;
    intermediates.push({ cert, info: infoOrFail(cert) });
  }
  const roots: Node[] = [];
  for (const cert of authorities) {
    try {
      roots.push({ cert, info: certInfo(cert) });
    } catch {
      // An authority we cannot read can anchor nothing.
    }
  }

  const builder = new PathBuilder(roots, intermediates, now);
  builder.build([leaf]);
  if (builder.chains.length === 0) {
    throw verifyFailed(
      `could not verify leaf certificate: ${builder.firstError ?? 'certificate signed by unknown authority'}`,
    );
  }
  return { id, chains: builder.chains };
}

/**
 * Verifies an X509-SVID chain against the X.509 bundle of the leaf's trust domain (X509-SVID §4,
 * RFC 5280 §6). Only that trust domain's authorities are used as roots, never a pool of all bundles.
 *
 * Checks, in order: the leaf has exactly one URI SAN holding a SPIFFE ID with a non-root path; the leaf
 * is not a CA and has neither keyCertSign nor cRLSign; the leaf has a keyUsage extension with
 * digitalSignature, marked critical (strict); an extended key usage, when present, lists serverAuth and
 * clientAuth (strict); an empty subject comes with a critical SAN extension; then a path is built from
 * the leaf through the given intermediates to a bundle authority, where every certificate is within its
 * validity at `now`, every signing certificate is a CA with keyCertSign whose pathLenConstraint and name
 * constraints (URI, DNS, IP; any other constraint kind fails closed) hold, every signature verifies and
 * no certificate carries an unhandled critical extension.
 *
 * Divergences from go-spiffe (CONFORMANCE §2.8): a root-path leaf ID is rejected, and keyUsage
 * criticality and EKU contents are enforced unless `strict: false`.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md
 * @param chain the presented certificates, leaf first, then intermediates in any order
 * @param bundleSource where the X.509 bundle of the leaf's trust domain comes from
 * @param opts `now` (default: current time) and `strict` (default: true)
 * @returns the leaf's SPIFFE ID and every verified chain (leaf → authority)
 * @throws {X509SvidError} ERR_X509SVID_VERIFY_FAILED, e.g.
 *   `x509svid: could not verify leaf certificate: certificate signed by unknown authority`
 * @example
 * ```ts
 * const { id, chains } = await verifyX509Svid(svid.certificates, bundle, { now: new Date() });
 * ```
 */
export async function verifyX509Svid(
  chain: readonly X509Certificate[],
  bundleSource: X509AuthoritySource,
  opts: VerifyX509SvidOptions = {},
): Promise<VerifiedX509Svid> {
  return verifyX509SvidSync(chain, bundleSource, opts);
}
