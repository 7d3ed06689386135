import { BundleError } from '../errors.js';
import { TrustDomain } from '../spiffeid/trust-domain.js';
import { JwtBundle } from './jwt-bundle.js';
import type { JwtBundleSource, X509BundleSource } from './source.js';
import { SpiffeBundle } from './spiffe-bundle.js';
import { X509Bundle } from './x509-bundle.js';

interface Entry {
  readonly td: TrustDomain;
  x509: X509Bundle | undefined;
  jwt: JwtBundle | undefined;
  spiffe: SpiffeBundle | undefined;
}

/** Any bundle a {@link BundleSet} holds. */
export type AnyBundle = X509Bundle | JwtBundle | SpiffeBundle;

/**
 * Bundles keyed by trust domain (the `<trust domain, bundle>` binding of SPIFFE bundle §5). Each trust domain
 * has an X.509 part and/or a JWT part: adding an {@link X509Bundle} replaces the X.509 part, a {@link JwtBundle}
 * the JWT part, a {@link SpiffeBundle} both. Implements both bundle sources, so a verifier picks the bundle of the
 * SVID's own trust domain and no other. Mutable (add/remove); the bundles in it are immutable.
 *
 * @example
 * ```ts
 * const set = new BundleSet(x509BundleA, jwtBundleA, spiffeBundleB);
 * set.getX509BundleForTrustDomain(TrustDomain.fromString('a.org'));
 * ```
 */
export class BundleSet implements X509BundleSource, JwtBundleSource {
  readonly #entries = new Map<string, Entry>();

  /** Builds a set holding `bundles` (later ones replace earlier parts of the same trust domain). */
  constructor(...bundles: AnyBundle[]) {
    for (const b of bundles) this.add(b);
  }

  /**
   * Adds a bundle, replacing the part(s) of its trust domain that it carries.
   *
   * @throws {TypeError} when `bundle` is not a bundle
   * @example
   * ```ts
   * set.add(X509Bundle.parseDer(td, der));
   * ```
   */
  add(bundle: AnyBundle): this {
    const td = bundle?.trustDomain;
    if (!(td instanceof TrustDomain)) throw new TypeError('bundleset: expected a bundle');
    let e = this.#entries.get(td.name);
    if (e === undefined) {
      e = { td, x509: undefined, jwt: undefined, spiffe: undefined };
      this.#entries.set(td.name, e);
    }
    if (bundle instanceof SpiffeBundle) {
      e.x509 = bundle.x509Bundle();
      e.jwt = bundle.jwtBundle();
      e.spiffe = bundle;
    } else if (bundle instanceof X509Bundle) {
      e.x509 = bundle;
      e.spiffe = undefined;
    } else if (bundle instanceof JwtBundle) {
      e.jwt = bundle;
      e.spiffe = undefined;
    } else {
      throw new TypeError('bundleset: expected a bundle');
    }
    return this;
  }

  /** Removes every part of `td`; tells whether there was one. */
  remove(td: TrustDomain): boolean {
    return this.#entries.delete(td.name);
  }

  /** Tells whether the set has any bundle for `td`. */
  has(td: TrustDomain): boolean {
    return this.#entries.has(td.name);
  }

  /**
   * The bundle of `td` as a {@link SpiffeBundle} (the one added, or one composed of the X.509 and JWT parts,
   * without metadata), or undefined.
   */
  get(td: TrustDomain): SpiffeBundle | undefined {
    const e = this.#entries.get(td.name);
    return e === undefined ? undefined : composed(e);
  }

  /** The X.509 part of `td`, or undefined. */
  getX509Bundle(td: TrustDomain): X509Bundle | undefined {
    return this.#entries.get(td.name)?.x509;
  }

  /** The JWT part of `td`, or undefined. */
  getJwtBundle(td: TrustDomain): JwtBundle | undefined {
    return this.#entries.get(td.name)?.jwt;
  }

  /** Number of trust domains in the set. */
  get size(): number {
    return this.#entries.size;
  }

  /** The trust domains of the set, sorted by name. */
  trustDomains(): TrustDomain[] {
    return this.#sorted().map((e) => e.td);
  }

  /** Every bundle as a {@link SpiffeBundle}, sorted by trust domain. */
  bundles(): SpiffeBundle[] {
    return this.#sorted().map(composed);
  }

  /** The X.509 parts, sorted by trust domain. */
  x509Bundles(): X509Bundle[] {
    const out: X509Bundle[] = [];
    for (const e of this.#sorted()) if (e.x509 !== undefined) out.push(e.x509);
    return out;
  }

  /** The JWT parts, sorted by trust domain. */
  jwtBundles(): JwtBundle[] {
    const out: JwtBundle[] = [];
    for (const e of this.#sorted()) if (e.jwt !== undefined) out.push(e.jwt);
    return out;
  }

  /** Tells whether `other` holds the same trust domains with equal parts. */
  equals(other: BundleSet | null | undefined): boolean {
    if (!(other instanceof BundleSet) || other.#entries.size !== this.#entries.size) return false;
    for (const [name, e] of this.#entries) {
      const o = other.#entries.get(name);
      if (o === undefined) return false;
      if (!optEquals(e.x509, o.x509) || !optEquals(e.jwt, o.jwt)) return false;
      if ((e.spiffe?.sequenceNumber ?? null) !== (o.spiffe?.sequenceNumber ?? null)) return false;
      if ((e.spiffe?.refreshHint ?? null) !== (o.spiffe?.refreshHint ?? null)) return false;
    }
    return true;
  }

  /**
   * The X.509 bundle of `td`.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND `x509bundle: no X.509 bundle for trust domain "<td>"`
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    const b = this.#entries.get(td.name)?.x509;
    if (b === undefined) {
      throw new BundleError(
        'ERR_BUNDLE_NOT_FOUND',
        `x509bundle: no X.509 bundle for trust domain "${td.name}"`,
      );
    }
    return b;
  }

  /**
   * The JWT bundle of `td`.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND `jwtbundle: no JWT bundle for trust domain "<td>"`
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    const b = this.#entries.get(td.name)?.jwt;
    if (b === undefined) {
      throw new BundleError('ERR_BUNDLE_NOT_FOUND', `jwtbundle: no JWT bundle for trust domain "${td.name}"`);
    }
    return b;
  }

  #sorted(): Entry[] {
    return [...this.#entries.values()].sort((a, b) => a.td.compare(b.td));
  }
}

function composed(e: Entry): SpiffeBundle {
  if (e.spiffe !== undefined) return e.spiffe;
  return SpiffeBundle.fromAuthorities(e.td, {
    x509Authorities: e.x509?.x509Authorities() ?? [],
    jwtAuthorities: e.jwt?.jwtAuthorities() ?? new Map(),
  });
}

function optEquals<T extends { equals(o: T): boolean }>(a: T | undefined, b: T | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b);
}
