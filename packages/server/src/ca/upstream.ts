/**
 * The upstream authority interface: an external CA that signs the server's X.509 CA (which is then an
 * intermediate), and optionally learns about the server's JWT signing keys.
 *
 * @module
 */
import type { KeyObject, X509Certificate } from 'node:crypto';

/** What the server asks an upstream authority to sign. */
export interface MintX509CaRequest {
  /** A PKCS#10 CSR (DER) for the new CA key, with the trust domain ID as its only URI SAN. */
  readonly csr: Uint8Array;
  /** The lifetime the server would like; the upstream may shorten it. */
  readonly ttlSeconds: number;
  /** The server clock's current time. */
  readonly now: Date;
}

/** What an upstream authority returns. */
export interface MintX509CaResult {
  /** The signed CA certificate first, then any upstream intermediates, up to but not including a root. */
  readonly chain: readonly X509Certificate[];
  /** The upstream roots: they go into the trust bundle. */
  readonly upstreamRoots: readonly X509Certificate[];
}

/** A JWT signing key the server publishes to an upstream authority. */
export interface PublishedJwtKey {
  readonly kid: string;
  readonly publicKey: KeyObject;
  readonly notAfter: Date;
}

/**
 * An upstream authority. Implementations: `disk` ({@link createDiskUpstreamAuthority}); the interface is
 * shaped for others (a remote CA, a cloud PCA, another SPIFFE server).
 *
 * @example
 * const upstream = createDiskUpstreamAuthority({ trustDomain, certFilePath, keyFilePath });
 * const { chain, upstreamRoots } = await upstream.mintX509Ca({ csr, ttlSeconds: 86400, now: new Date() });
 */
export interface UpstreamAuthority {
  /** The plugin name (`disk`). */
  readonly name: string;
  /**
   * Signs a CA certificate for the CSR's key.
   *
   * @throws {SpiffeError} ERR_CA_UPSTREAM_FAILED when the upstream cannot sign.
   */
  mintX509Ca(request: MintX509CaRequest): Promise<MintX509CaResult>;
  /** Publishes a JWT signing key upstream, when the upstream supports it. */
  publishJwtKey?(key: PublishedJwtKey): Promise<void>;
  /** Releases resources. */
  close?(): Promise<void>;
}
