import { type KeyObject, X509Certificate } from 'node:crypto';
import type { ConnectionOptions, DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls';
import { TlsError, X509SvidError } from '../errors.js';
import { SpiffeId, type TrustDomain } from '../spiffeid/index.js';
import { verifyX509SvidSync } from '../svid/x509-verify.js';
import type { Authorizer } from './authorizer.js';

/** The lowest TLS version any option builder of this module allows. */
export const MIN_TLS_VERSION = 'TLSv1.2';

/**
 * What the TLS helpers need from a bundle source: the X.509 authorities of one trust domain (used to
 * verify a peer against the bundle of the peer's own trust domain only), plus a way to list every
 * bundle it holds (see {@link listX509Authorities}). `X509Bundle`, `SpiffeBundle` and `BundleSet` of
 * `@tessera/spiffe/bundle` and the live `X509Source` of `@tessera/spiffe/workloadapi` all qualify.
 */
export interface TlsBundleSource {
  getX509BundleForTrustDomain(td: TrustDomain): { x509Authorities(): readonly X509Certificate[] };
}

/** What the TLS helpers need from an X509-SVID: `X509Svid` of `@tessera/spiffe/svid` qualifies. */
export interface TlsSvid {
  readonly certificates: readonly X509Certificate[];
  readonly privateKey: KeyObject;
}

/** What the TLS helpers need from an X509-SVID source: `X509Svid` itself and the live `X509Source` qualify. */
export interface TlsSvidSource {
  getX509Svid(): TlsSvid;
}

/** Verification options shared by the option builders. */
export interface TlsVerifyOptions {
  /**
   * Passed to `verifyX509SvidSync`: `true` (the default) enforces the X509-SVID standard fully (critical
   * keyUsage, EKU with both serverAuth and clientAuth when present); `false` relaxes those two checks only.
   */
  readonly strict?: boolean;
}

type UnknownRecord = Record<string, unknown>;

function isRecord(v: unknown): v is UnknownRecord {
  return (typeof v === 'object' || typeof v === 'function') && v !== null;
}

function isIterable(v: unknown): v is Iterable<unknown> {
  return isRecord(v) && typeof (v as { [Symbol.iterator]?: unknown })[Symbol.iterator] === 'function';
}

function authoritiesOfBundle(b: unknown, out: X509Certificate[]): boolean {
  if (!isRecord(b)) return false;
  if (typeof b.x509Authorities === 'function') {
    const certs: unknown = b.x509Authorities();
    if (!isIterable(certs)) return false;
    for (const c of certs) if (c instanceof X509Certificate) out.push(c);
    return true;
  }
  if (typeof b.x509Bundle === 'function') return authoritiesOfBundle(b.x509Bundle(), out);
  return false;
}

function authoritiesOfCollection(col: unknown, out: X509Certificate[]): boolean {
  if (isRecord(col) && typeof col.bundles === 'function') return authoritiesOfCollection(col.bundles(), out);
  if (col instanceof Map) return authoritiesOfCollection(col.values(), out);
  if (!isIterable(col)) return false;
  for (const b of col) {
    if (!authoritiesOfBundle(b, out)) return false;
  }
  return true;
}

/**
 * Lists the X.509 authorities of every trust domain a bundle source holds, deduplicated. The TLS stack
 * (OpenSSL) must be given a root store before it lets a handshake reach SPIFFE verification; this pooled
 * store is only a first gate: every peer is then verified again against its own trust domain's bundle
 * alone (X5-16). Accepts a single bundle (`x509Authorities()` or `x509Bundle()`), a set (`bundles()`),
 * or a live source (`x509Bundles()`).
 *
 * @throws {TypeError} when the source cannot list its bundles
 * @example
 * ```ts
 * const roots = listX509Authorities(bundleSet);
 * ```
 */
export function listX509Authorities(source: TlsBundleSource): X509Certificate[] {
  const out: X509Certificate[] = [];
  let ok = false;
  const s: unknown = source;
  if (isRecord(s)) {
    if (typeof s.x509Bundles === 'function') ok = authoritiesOfCollection(s.x509Bundles(), out);
    else if (typeof s.bundles === 'function') ok = authoritiesOfCollection(s.bundles(), out);
    else ok = authoritiesOfBundle(s, out);
  }
  if (!ok) {
    throw new TypeError(
      'tls: the bundle source cannot list its bundles (expected an X509Bundle, SpiffeBundle, BundleSet or X509Source)',
    );
  }
  const seen = new Set<string>();
  return out.filter((c) => {
    if (seen.has(c.fingerprint256)) return false;
    seen.add(c.fingerprint256);
    return true;
  });
}

function isSelfSigned(c: X509Certificate): boolean {
  try {
    return c.checkIssued(c) && c.verify(c.publicKey);
  } catch {
    return false;
  }
}

/**
 * Rebuilds the certificate chain a TLS peer presented from Node's detailed peer certificate (leaf first).
 * Self-signed certificates after the leaf are dropped: they can only be trust anchors, which verification
 * takes from the bundle of the peer's trust domain, never from the peer.
 *
 * @internal
 */
export function chainFromPeerCertificate(cert: PeerCertificate | DetailedPeerCertificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  let cur: unknown = cert;
  while (isRecord(cur) && Buffer.isBuffer(cur.raw) && cur.raw.length > 0) {
    const x = new X509Certificate(cur.raw);
    if (seen.has(x.fingerprint256)) break;
    seen.add(x.fingerprint256);
    if (chain.length === 0 || !isSelfSigned(x)) chain.push(x);
    cur = cur.issuerCertificate;
  }
  return chain;
}

/**
 * Verifies a peer's chain as an X509-SVID against the bundle of the peer's own trust domain, then runs
 * the authorizer. Returns the peer's SPIFFE ID.
 *
 * @throws {TlsError} ERR_TLS_NO_PEER_CERTIFICATE when the chain is empty
 * @throws {X509SvidError} ERR_X509SVID_VERIFY_FAILED when the chain does not verify (also for a leaf with a
 *   root path: CONFORMANCE §2.8, the TLS path rejects it even where go-spiffe's Verify accepts)
 * @throws {BundleError} ERR_BUNDLE_NOT_FOUND when the source has no bundle for the peer's trust domain
 * @throws {TlsError} ERR_TLS_AUTHORIZATION_FAILED when the authorizer refuses the peer
 * @example
 * ```ts
 * const id = verifyPeer(chain, bundles, authorizeMemberOf(td));
 * ```
 */
export function verifyPeer(
  chain: readonly X509Certificate[],
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: TlsVerifyOptions = {},
): SpiffeId {
  if (chain.length === 0) throw new TlsError('ERR_TLS_NO_PEER_CERTIFICATE', 'tls: no peer certificates');
  const verified = verifyX509SvidSync(
    chain,
    bundleSource,
    opts.strict === undefined ? {} : { strict: opts.strict },
  );
  if (verified.id.path === '') {
    throw new X509SvidError(
      'ERR_X509SVID_VERIFY_FAILED',
      `tls: peer SPIFFE ID "${verified.id.toString()}" must have a non-root path`,
    );
  }
  authorizer(verified.id, verified.chains);
  return verified.id;
}

// A module-private symbol (not Symbol.for): only this module can set it. A property rather than a
// WeakMap entry so that it is also visible through the socket proxies of http2 sessions.
const kPeerId = Symbol('tessera.tls.peerId');

/** Records the SPIFFE ID verified for a connection. @internal */
export function recordPeerId(socket: TLSSocket, id: SpiffeId): void {
  Object.defineProperty(socket, kPeerId, {
    value: id,
    enumerable: false,
    configurable: false,
    writable: false,
  });
}

/**
 * The SPIFFE ID of the peer of a connection that the helpers of this module verified and authorized
 * (server side: `createSpiffe*Server`, `serveGrpcOverSpiffeTls`; client side: `createSpiffeHttpsAgent`,
 * `connectSpiffeTls` and the undici dispatcher). Accepts the socket proxies of http2 sessions
 * (`req.socket`, `session.socket`).
 *
 * @throws {TlsError} ERR_TLS_NO_PEER_CERTIFICATE `tls: no verified peer SPIFFE ID for this connection`
 * @example
 * ```ts
 * createSpiffeHttpsServer(config, {}, (req, res) => res.end(`hello ${peerIdFromSocket(req.socket as TLSSocket)}`));
 * ```
 */
export function peerIdFromSocket(socket: TLSSocket): SpiffeId {
  const id: unknown = isRecord(socket) ? (socket as unknown as Record<symbol, unknown>)[kPeerId] : undefined;
  if (!(id instanceof SpiffeId)) {
    throw new TlsError('ERR_TLS_NO_PEER_CERTIFICATE', 'tls: no verified peer SPIFFE ID for this connection');
  }
  return id;
}

interface PemPair {
  cert: string;
  key: string;
}

const pemCache = new WeakMap<TlsSvid, PemPair>();

/** The PEM certificate chain and PKCS#8 key of an SVID (cached per SVID object). @internal */
export function svidPem(svid: TlsSvid): PemPair {
  let p = pemCache.get(svid);
  if (p === undefined) {
    if (svid.certificates.length === 0) throw new TypeError('tls: the SVID has no certificates');
    p = {
      cert: svid.certificates.map((c) => c.toString()).join(''),
      key: svid.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    };
    pemCache.set(svid, p);
  }
  return p;
}

/** PEM text of a list of certificates. @internal */
export function certsPem(certs: readonly X509Certificate[]): string[] {
  return certs.map((c) => c.toString());
}

function requireSource(v: unknown, method: string, what: string): void {
  if (!isRecord(v) || typeof v[method] !== 'function')
    throw new TypeError(`tls: ${what} must have ${method}()`);
}

/** @internal */
export function requireSvidSource(v: unknown): asserts v is TlsSvidSource {
  requireSource(v, 'getX509Svid', 'the SVID source');
}

/** @internal */
export function requireBundleSource(v: unknown): asserts v is TlsBundleSource {
  requireSource(v, 'getX509BundleForTrustDomain', 'the bundle source');
}

/** @internal */
export function requireAuthorizer(v: unknown): asserts v is Authorizer {
  if (typeof v !== 'function') throw new TypeError('tls: the authorizer must be a function');
}

/**
 * A `checkServerIdentity` that replaces hostname verification with SPIFFE verification: the peer chain
 * is verified against the bundle of the peer's own trust domain, then authorized. Node calls it
 * synchronously once OpenSSL accepted the chain against the pooled roots, before `secureConnect` and
 * before any application data is sent; the error it returns aborts the connection.
 *
 * @internal
 */
export function spiffeCheckServerIdentity(
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: TlsVerifyOptions,
  onVerified?: (id: SpiffeId) => void,
): CheckServerIdentity {
  return (_hostname, cert) => {
    try {
      const id = verifyPeer(chainFromPeerCertificate(cert), bundleSource, authorizer, opts);
      onVerified?.(id);
      return undefined;
    } catch (err) {
      return err instanceof Error ? err : new TlsError('ERR_TLS_AUTHORIZATION_FAILED', 'tls: peer refused');
    }
  };
}

type CheckServerIdentity = (hostname: string, cert: PeerCertificate) => Error | undefined;

const checkResults = new WeakMap<CheckServerIdentity, { id?: SpiffeId }>();

/**
 * The SPIFFE ID that a `checkServerIdentity` built by this module last verified. @internal
 */
export function verifiedIdOfCheck(check: CheckServerIdentity): SpiffeId | undefined {
  return checkResults.get(check)?.id;
}

/**
 * Client options returned by {@link tlsClientOptions} and {@link mtlsClientOptions}: `tls.ConnectionOptions`
 * plus `agent: false`, so that `https.request(url, options)` opens a fresh, fully verified connection
 * instead of reusing a pooled socket or TLS session that Node's agents would share across authorizers.
 */
export type SpiffeClientOptions = ConnectionOptions & { agent: false };

function spiffeClient(
  svidSource: TlsSvidSource | undefined,
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: TlsVerifyOptions,
): SpiffeClientOptions {
  requireBundleSource(bundleSource);
  requireAuthorizer(authorizer);
  const holder: { id?: SpiffeId } = {};
  const check = spiffeCheckServerIdentity(bundleSource, authorizer, opts, (id) => {
    holder.id = id;
  });
  checkResults.set(check, holder);
  const options: SpiffeClientOptions = {
    minVersion: MIN_TLS_VERSION,
    // Always an explicit array: an absent `ca` would make Node trust its built-in web roots.
    ca: certsPem(listX509Authorities(bundleSource)),
    rejectUnauthorized: true,
    checkServerIdentity: check,
    // For https.request/get: never use a pooling agent. Node's agents key their sockets and TLS sessions
    // by ca/cert/key but not by checkServerIdentity, so a kept-alive socket or a resumed session (which
    // skips checkServerIdentity) authorized for one ID would be reused under another authorizer.
    // tls.connect and http2.connect ignore this field. For pooling use createSpiffeHttpsAgent.
    agent: false,
  };
  if (svidSource !== undefined) {
    const pem = svidPem(svidSource.getX509Svid());
    options.cert = pem.cert;
    options.key = pem.key;
  }
  return options;
}

/**
 * Options for `tls.connect`, `https.request` or `http2.connect` that authenticate the server by its
 * X509-SVID (go-spiffe `TLSClientConfig`): hostname verification is replaced by X509-SVID verification
 * against the bundle of the server's trust domain plus `authorizer`; no client certificate is sent.
 * The result is a snapshot of the sources: build it per connection (or use `createSpiffeHttpsAgent`).
 * It carries `agent: false`, so `https.request(url, options)` never reuses a pooled socket or TLS session
 * (either would skip SPIFFE verification); use `createSpiffeHttpsAgent` for keep-alive.
 *
 * Refusals surface as the connection's error: `ERR_X509SVID_VERIFY_FAILED`, `ERR_BUNDLE_NOT_FOUND`,
 * `ERR_TLS_AUTHORIZATION_FAILED`.
 *
 * @throws {TypeError} when an argument is not a source / authorizer, or the bundle source cannot list bundles
 * @example
 * ```ts
 * const socket = tls.connect({ host, port, ...tlsClientOptions(bundles, authorizeId(serverId)) });
 * ```
 */
export function tlsClientOptions(
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: TlsVerifyOptions = {},
): SpiffeClientOptions {
  return spiffeClient(undefined, bundleSource, authorizer, opts);
}

/**
 * Options for `tls.connect`, `https.request` or `http2.connect` for mutual TLS by X509-SVIDs (go-spiffe
 * `MTLSClientConfig`): presents the current SVID of `svidSource` and authenticates the server as
 * {@link tlsClientOptions} does. A snapshot: build it per connection so that rotated SVIDs are used.
 *
 * @throws {TypeError} when an argument is not a source / authorizer, or the bundle source cannot list bundles
 * @example
 * ```ts
 * const session = http2.connect(url, mtlsClientOptions(source, source, authorizeId(serverId)));
 * ```
 */
export function mtlsClientOptions(
  svidSource: TlsSvidSource,
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: TlsVerifyOptions = {},
): SpiffeClientOptions {
  requireSvidSource(svidSource);
  return spiffeClient(svidSource, bundleSource, authorizer, opts);
}

/**
 * Options for a client that presents its X509-SVID to a server authenticated by the web PKI (go-spiffe
 * `MTLSWebClientConfig`): standard chain and hostname verification against `webRoots` (PEM text or
 * certificates), or Node's built-in roots when omitted.
 *
 * @throws {TypeError} when `svidSource` is not an SVID source
 * @example
 * ```ts
 * https.request('https://api.example.com/', mtlsWebClientOptions(source));
 * ```
 */
export function mtlsWebClientOptions(
  svidSource: TlsSvidSource,
  webRoots?: readonly (X509Certificate | string)[],
): ConnectionOptions {
  requireSvidSource(svidSource);
  const pem = svidPem(svidSource.getX509Svid());
  const options: ConnectionOptions = {
    minVersion: MIN_TLS_VERSION,
    rejectUnauthorized: true,
    cert: pem.cert,
    key: pem.key,
  };
  if (webRoots !== undefined) options.ca = webRoots.map((r) => (typeof r === 'string' ? r : r.toString()));
  return options;
}
