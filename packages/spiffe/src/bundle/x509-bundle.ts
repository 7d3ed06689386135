import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BundleError } from '../errors.js';
import { decodePem, EncodingError, encodePem, splitConcatenatedDer } from '../internal/pem.js';
import { TrustDomain } from '../spiffeid/trust-domain.js';
import type { X509BundleSource } from './source.js';

/**
 * The X.509 authorities (CA certificates) of one trust domain: the roots an X509-SVID of that trust domain must
 * chain to. Immutable; duplicate authorities are kept once, in first-seen order.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md#6-spiffe-bundles
 * @example
 * ```ts
 * const bundle = X509Bundle.load(TrustDomain.fromString('example.org'), '/etc/spiffe/bundle.pem');
 * bundle.x509Authorities().length;
 * ```
 */
export class X509Bundle implements X509BundleSource {
  readonly #td: TrustDomain;
  readonly #certs: readonly X509Certificate[];
  readonly #keys: ReadonlySet<string>;

  private constructor(td: TrustDomain, certs: Iterable<X509Certificate>) {
    if (!(td instanceof TrustDomain)) throw new TypeError('x509bundle: expected a TrustDomain');
    const list: X509Certificate[] = [];
    const keys = new Set<string>();
    for (const c of certs) {
      if (!(c instanceof X509Certificate))
        throw new TypeError('x509bundle: authorities must be X509Certificate');
      const k = certKey(c);
      if (keys.has(k)) continue;
      keys.add(k);
      list.push(c);
    }
    this.#td = td;
    this.#certs = Object.freeze(list);
    this.#keys = keys;
  }

  /**
   * Builds a bundle from certificates (duplicates are dropped).
   *
   * @example
   * ```ts
   * X509Bundle.fromAuthorities(td, [rootCert]);
   * ```
   */
  static fromAuthorities(td: TrustDomain, certs: Iterable<X509Certificate>): X509Bundle {
    return new X509Bundle(td, certs);
  }

  /**
   * Parses PEM `CERTIFICATE` blocks. Empty (or blank) input gives an empty bundle; text between blocks is
   * ignored; any other block type, a malformed block, or non-empty text without any block is an error.
   *
   * @throws {BundleError} ERR_BUNDLE_INVALID `x509bundle: cannot parse certificate: …`
   * @example
   * ```ts
   * X509Bundle.parse(td, fs.readFileSync('bundle.pem', 'utf8'));
   * ```
   */
  static parse(td: TrustDomain, pem: string | Uint8Array): X509Bundle {
    const text =
      typeof pem === 'string'
        ? pem
        : Buffer.from(pem.buffer, pem.byteOffset, pem.byteLength).toString('latin1');
    if (text.trim().length === 0) return new X509Bundle(td, []);
    let blocks: ReturnType<typeof decodePem>;
    try {
      blocks = decodePem(text);
    } catch (err) {
      throw invalid(err);
    }
    if (blocks.length === 0) throw invalid(new EncodingError('no PEM blocks found'));
    const certs: X509Certificate[] = [];
    for (const b of blocks) {
      if (b.label !== 'CERTIFICATE') {
        throw invalid(new EncodingError(`expected block type "CERTIFICATE"; got ${JSON.stringify(b.label)}`));
      }
      certs.push(parseCert(b.der));
    }
    return new X509Bundle(td, certs);
  }

  /**
   * Parses concatenated DER certificates (the Workload API's bundle encoding). Empty input gives an empty bundle.
   *
   * @throws {BundleError} ERR_BUNDLE_INVALID `x509bundle: cannot parse certificate: …`
   * @example
   * ```ts
   * X509Bundle.parseDer(td, response.bundle);
   * ```
   */
  static parseDer(td: TrustDomain, der: Uint8Array): X509Bundle {
    let parts: Buffer[];
    try {
      parts = splitConcatenatedDer(der);
    } catch (err) {
      throw invalid(err);
    }
    return new X509Bundle(td, parts.map(parseCert));
  }

  /**
   * Reads a PEM bundle file.
   *
   * @throws {BundleError} ERR_BUNDLE_INVALID when the file cannot be read or parsed
   * @example
   * ```ts
   * X509Bundle.load(td, '/run/spiffe/bundle.pem');
   * ```
   */
  static load(td: TrustDomain, path: string): X509Bundle {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw new BundleError(
        'ERR_BUNDLE_INVALID',
        `x509bundle: unable to load X.509 bundle file ${JSON.stringify(path)}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return X509Bundle.parse(td, data);
  }

  /** The trust domain of the bundle. */
  get trustDomain(): TrustDomain {
    return this.#td;
  }

  /** The authorities, in first-seen order (a frozen array). */
  x509Authorities(): readonly X509Certificate[] {
    return this.#certs;
  }

  /** Tells whether the bundle has no authority (all X509-SVIDs of the trust domain are then untrusted). */
  isEmpty(): boolean {
    return this.#certs.length === 0;
  }

  /** Tells whether `cert` (compared by DER bytes) is an authority of the bundle. */
  hasX509Authority(cert: X509Certificate): boolean {
    return this.#keys.has(certKey(cert));
  }

  /** Returns a new bundle with `certs` added. */
  withX509Authorities(...certs: X509Certificate[]): X509Bundle {
    return new X509Bundle(this.#td, [...this.#certs, ...certs]);
  }

  /** The authorities as concatenated PEM `CERTIFICATE` blocks (empty string when empty). */
  marshal(): string {
    return this.#certs.map((c) => encodePem('CERTIFICATE', c.raw)).join('');
  }

  /** The authorities as concatenated DER. */
  marshalDer(): Buffer {
    return Buffer.concat(this.#certs.map((c) => c.raw));
  }

  /** Tells whether `other` has the same trust domain and the same set of authorities. */
  equals(other: X509Bundle | null | undefined): boolean {
    if (!(other instanceof X509Bundle)) return false;
    if (!this.#td.equals(other.#td) || this.#certs.length !== other.#certs.length) return false;
    for (const k of this.#keys) if (!other.#keys.has(k)) return false;
    return true;
  }

  /**
   * Returns this bundle when `td` is its trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND `x509bundle: no X.509 bundle found for trust domain: "<td>"`
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    if (!this.#td.equals(td)) {
      throw new BundleError(
        'ERR_BUNDLE_NOT_FOUND',
        `x509bundle: no X.509 bundle found for trust domain: "${td.name}"`,
      );
    }
    return this;
  }
}

function certKey(c: X509Certificate): string {
  return c.raw.toString('base64');
}

function parseCert(der: Buffer): X509Certificate {
  try {
    const cert = new X509Certificate(der);
    void cert.publicKey; // parsed lazily by node: fail here, not during verification, on a broken key
    return cert;
  } catch (err) {
    throw invalid(err);
  }
}

function invalid(err: unknown): BundleError {
  const msg = err instanceof Error ? err.message : String(err);
  return new BundleError('ERR_BUNDLE_INVALID', `x509bundle: cannot parse certificate: ${msg}`, {
    cause: err,
  });
}
