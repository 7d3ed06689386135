import { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BundleError } from '../errors.js';
import { isJsonObject, type JsonValue, parseJson } from '../internal/json.js';
import { TrustDomain } from '../spiffeid/trust-domain.js';
import {
  asObject,
  JwkError,
  jwkToPublicKey,
  KNOWN_KTY,
  parseX5cCert,
  publicKeyToJwk,
  sameKey,
} from './jwk.js';
import type { JwtBundleSource } from './source.js';

/** Options of {@link JwtBundle.parse}. */
export interface JwtBundleParseOptions {
  /**
   * go-spiffe's whole-document rejection: a key with a missing or unknown `kty` fails the whole JWKS instead of
   * being skipped (RFC 7517 §5 / SPIFFE bundle §4 say to skip it, which is the default).
   */
  readonly strict?: boolean;
}

/**
 * The JWT authorities (public keys keyed by key ID) of one trust domain: the keys a JWT-SVID of that trust domain
 * must be signed with. Immutable.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md#5-jwt-svid-bundles
 * @example
 * ```ts
 * const bundle = JwtBundle.parse(td, jwksJson);
 * const key = bundle.findJwtAuthority('kid-1');
 * ```
 */
export class JwtBundle implements JwtBundleSource {
  readonly #td: TrustDomain;
  readonly #keys: ReadonlyMap<string, KeyObject>;

  private constructor(td: TrustDomain, keys: Map<string, KeyObject>) {
    this.#td = td;
    this.#keys = keys;
  }

  /**
   * Builds a bundle from public keys keyed by key ID.
   *
   * @throws {TypeError} when a key is not a public KeyObject or a key ID is empty
   * @example
   * ```ts
   * JwtBundle.fromAuthorities(td, new Map([['kid-1', publicKey]]));
   * ```
   */
  static fromAuthorities(td: TrustDomain, authorities: ReadonlyMap<string, KeyObject>): JwtBundle {
    if (!(td instanceof TrustDomain)) throw new TypeError('jwtbundle: expected a TrustDomain');
    const keys = new Map<string, KeyObject>();
    for (const [kid, key] of authorities) {
      if (typeof kid !== 'string' || kid.length === 0)
        throw new TypeError('jwtbundle: keyID cannot be empty');
      if (!(key instanceof KeyObject) || key.type !== 'public') {
        throw new TypeError(`jwtbundle: authority ${JSON.stringify(kid)} must be a public KeyObject`);
      }
      keys.set(kid, key);
    }
    return new JwtBundle(td, keys);
  }

  /**
   * Parses a JWKS document. Every key is taken whatever its `use`; each needs a `kid` (a later duplicate `kid`
   * replaces an earlier one). Keys with a missing or unknown `kty` are skipped unless `strict`. `keys` must be
   * present; duplicate JSON keys, private key material, invalid key parameters and an `x5c` whose certificate
   * does not hold the JWK's key are errors.
   *
   * @throws {BundleError} ERR_BUNDLE_INVALID, e.g.
   *   `jwtbundle: error adding authority 0 of JWKS: keyID cannot be empty`
   * @example
   * ```ts
   * JwtBundle.parse(td, '{"keys":[{"kty":"EC","kid":"k1","crv":"P-256","x":"…","y":"…"}]}');
   * ```
   */
  static parse(td: TrustDomain, jwks: string | Uint8Array, options: JwtBundleParseOptions = {}): JwtBundle {
    if (!(td instanceof TrustDomain)) throw new TypeError('jwtbundle: expected a TrustDomain');
    let doc: JsonValue;
    try {
      doc = parseJson(jwks);
    } catch (err) {
      throw new BundleError(
        'ERR_BUNDLE_INVALID',
        `jwtbundle: unable to parse JWKS: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (!isJsonObject(doc)) throw invalid('unable to parse JWKS: document is not a JSON object');
    const entries = doc.keys;
    if (entries === undefined) throw invalid('unable to parse JWKS: "keys" is missing');
    if (!Array.isArray(entries)) throw invalid('unable to parse JWKS: "keys" is not an array');
    const keys = new Map<string, KeyObject>();
    entries.forEach((entry, i) => {
      try {
        const jwk = asObject(entry, 'entry');
        const kty = jwk.kty;
        if (typeof kty !== 'string' || !KNOWN_KTY.has(kty)) {
          if (options.strict) throw new JwkError(`unknown json web key type ${JSON.stringify(kty ?? null)}`);
          return;
        }
        const kid = jwk.kid;
        if (kid === undefined || kid === '') throw new JwkError('keyID cannot be empty');
        if (typeof kid !== 'string') throw new JwkError('keyID must be a string');
        const key = jwkToPublicKey(jwk, kty);
        checkX5c(jwk.x5c, key);
        keys.set(kid, key);
      } catch (err) {
        if (!(err instanceof JwkError)) throw err;
        throw invalid(`error adding authority ${i} of JWKS: ${err.message}`, err);
      }
    });
    return new JwtBundle(td, keys);
  }

  /**
   * Reads a JWKS file.
   *
   * @throws {BundleError} ERR_BUNDLE_INVALID when the file cannot be read or parsed
   * @example
   * ```ts
   * JwtBundle.load(td, '/run/spiffe/jwks.json');
   * ```
   */
  static load(td: TrustDomain, path: string, options: JwtBundleParseOptions = {}): JwtBundle {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw invalid(`unable to read JWT bundle ${JSON.stringify(path)}: ${(err as Error).message}`, err);
    }
    return JwtBundle.parse(td, data, options);
  }

  /** The trust domain of the bundle. */
  get trustDomain(): TrustDomain {
    return this.#td;
  }

  /** The authorities keyed by key ID. */
  jwtAuthorities(): ReadonlyMap<string, KeyObject> {
    return new Map(this.#keys);
  }

  /** The authority with key ID `kid`, or undefined. */
  findJwtAuthority(kid: string): KeyObject | undefined {
    return this.#keys.get(kid);
  }

  /** Tells whether the bundle has an authority with key ID `kid`. */
  hasJwtAuthority(kid: string): boolean {
    return this.#keys.has(kid);
  }

  /** Tells whether the bundle has no authority (all JWT-SVIDs of the trust domain are then untrusted). */
  isEmpty(): boolean {
    return this.#keys.size === 0;
  }

  /**
   * Serialises the bundle as a JWKS document: `{"keys":[{kty, kid, key params…}]}` (no `use`, as go-spiffe).
   */
  marshal(): string {
    const keys = [...this.#keys].map(([kid, key]) => ({ ...publicKeyToJwk(key), kid }));
    return JSON.stringify({ keys });
  }

  /** Tells whether `other` has the same trust domain and the same key IDs bound to the same keys. */
  equals(other: JwtBundle | null | undefined): boolean {
    if (!(other instanceof JwtBundle)) return false;
    return this.#td.equals(other.#td) && keyMapsEqual(this.#keys, other.#keys);
  }

  /**
   * Returns this bundle when `td` is its trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND `jwtbundle: no JWT bundle found for trust domain "<td>"`
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    if (!this.#td.equals(td)) {
      throw new BundleError(
        'ERR_BUNDLE_NOT_FOUND',
        `jwtbundle: no JWT bundle found for trust domain "${td.name}"`,
      );
    }
    return this;
  }
}

/** Checks that the first `x5c` certificate, when present, holds `key`. */
export function checkX5c(x5c: JsonValue | undefined, key: KeyObject): void {
  if (x5c === undefined) return;
  if (!Array.isArray(x5c)) throw new JwkError('x5c is not an array');
  if (x5c.length === 0) return;
  const cert = parseX5cCert(x5c[0]);
  if (!sameKey(cert.publicKey, key)) throw new JwkError('x5c certificate does not match the JWK key');
}

/** Compares two kid → key maps. */
export function keyMapsEqual(a: ReadonlyMap<string, KeyObject>, b: ReadonlyMap<string, KeyObject>): boolean {
  if (a.size !== b.size) return false;
  for (const [kid, k] of a) {
    const o = b.get(kid);
    if (o === undefined || !k.equals(o)) return false;
  }
  return true;
}

function invalid(message: string, cause?: unknown): BundleError {
  return new BundleError('ERR_BUNDLE_INVALID', `jwtbundle: ${message}`, cause === undefined ? {} : { cause });
}
