import type { KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BundleError } from '../errors.js';
import { isJsonObject, JsonNumber, type JsonObject, type JsonValue, parseJson } from '../internal/json.js';
import { TrustDomain } from '../spiffeid/trust-domain.js';
import {
  asObject,
  hasKeyParams,
  JwkError,
  jwkToPublicKey,
  KNOWN_KTY,
  parseX5cCert,
  publicKeyToJwk,
  sameKey,
} from './jwk.js';
import { checkX5c, JwtBundle, keyMapsEqual } from './jwt-bundle.js';
import type { JwtBundleSource, X509BundleSource } from './source.js';
import { X509Bundle } from './x509-bundle.js';

const MAX_UINT64 = (1n << 64n) - 1n;

/** Options of {@link SpiffeBundle.parse}. */
export interface SpiffeBundleParseOptions {
  /**
   * go-spiffe's whole-document rejection instead of the SPIFFE bundle standard's per-entry leniency: a key with a
   * missing or unknown `kty`, an `x509-svid` entry without exactly one `x5c` certificate, or an `x509-svid` entry
   * without key parameters fails the whole document. Default false (follow the standard: skip such entries,
   * take `x5c[0]`).
   */
  readonly strict?: boolean;
}

/** The parts of a {@link SpiffeBundle}, for {@link SpiffeBundle.fromAuthorities}. */
export interface SpiffeBundleParts {
  /** X.509 authorities (CA certificates). */
  readonly x509Authorities?: Iterable<X509Certificate>;
  /** JWT authorities keyed by key ID. */
  readonly jwtAuthorities?: ReadonlyMap<string, KeyObject>;
  /** `spiffe_sequence`: 0 to 2^64-1. */
  readonly sequenceNumber?: bigint | number;
  /** `spiffe_refresh_hint` in seconds, non-negative; fractions are rounded up. */
  readonly refreshHint?: number;
}

/**
 * A SPIFFE bundle: a trust domain's X.509 and JWT authorities plus the optional `spiffe_sequence` and
 * `spiffe_refresh_hint`, converted to and from the JWK Set document of the SPIFFE Trust Domain and Bundle standard.
 * Immutable; implements both bundle sources for its own trust domain.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Trust_Domain_and_Bundle.md#4-spiffe-bundle-format
 * @example
 * ```ts
 * const bundle = SpiffeBundle.parse(TrustDomain.fromString('example.org'), json);
 * bundle.sequenceNumber; // e.g. 42n
 * ```
 */
export class SpiffeBundle implements X509BundleSource, JwtBundleSource {
  readonly #x509: X509Bundle;
  readonly #jwt: JwtBundle;
  readonly #sequence: bigint | undefined;
  readonly #refreshHint: number | undefined;

  private constructor(
    x509: X509Bundle,
    jwt: JwtBundle,
    sequence: bigint | undefined,
    hint: number | undefined,
  ) {
    this.#x509 = x509;
    this.#jwt = jwt;
    this.#sequence = sequence;
    this.#refreshHint = hint;
  }

  /**
   * Builds a bundle from authorities and optional metadata.
   *
   * @throws {RangeError} when the sequence number is outside 0..2^64-1 or the refresh hint is negative or not finite
   * @example
   * ```ts
   * SpiffeBundle.fromAuthorities(td, { x509Authorities: [root], sequenceNumber: 1n, refreshHint: 300 });
   * ```
   */
  static fromAuthorities(td: TrustDomain, parts: SpiffeBundleParts = {}): SpiffeBundle {
    if (!(td instanceof TrustDomain)) throw new TypeError('spiffebundle: expected a TrustDomain');
    let seq: bigint | undefined;
    if (parts.sequenceNumber !== undefined) {
      const s = parts.sequenceNumber;
      if (typeof s === 'number' && !Number.isSafeInteger(s)) {
        throw new RangeError('spiffebundle: sequence number must be an integer');
      }
      seq = BigInt(s);
      if (seq < 0n || seq > MAX_UINT64)
        throw new RangeError('spiffebundle: sequence number must fit 64 unsigned bits');
    }
    let hint: number | undefined;
    if (parts.refreshHint !== undefined) {
      const h = parts.refreshHint;
      if (typeof h !== 'number' || !Number.isFinite(h) || h < 0) {
        throw new RangeError('spiffebundle: refresh hint must be a non-negative number of seconds');
      }
      hint = Math.ceil(h);
    }
    return new SpiffeBundle(
      X509Bundle.fromAuthorities(td, parts.x509Authorities ?? []),
      JwtBundle.fromAuthorities(td, parts.jwtAuthorities ?? new Map()),
      seq,
      hint,
    );
  }

  /**
   * Builds a bundle holding the authorities of `bundle` (an X509Bundle or a JwtBundle), without metadata.
   *
   * @example
   * ```ts
   * SpiffeBundle.fromBundle(x509Bundle);
   * ```
   */
  static fromBundle(bundle: X509Bundle | JwtBundle): SpiffeBundle {
    if (bundle instanceof X509Bundle) {
      return SpiffeBundle.fromAuthorities(bundle.trustDomain, { x509Authorities: bundle.x509Authorities() });
    }
    return SpiffeBundle.fromAuthorities(bundle.trustDomain, { jwtAuthorities: bundle.jwtAuthorities() });
  }

  /**
   * Parses a SPIFFE bundle document (a JWK Set). Follows the standard by default: entries with a missing or
   * unknown `use` or `kty`, and `x509-svid` entries without `x5c`, are skipped; only `x5c[0]` is used. `keys` must
   * be present (`{"keys":[]}` is a valid empty bundle). `spiffe_sequence` must be an integer 0..2^64-1 (read
   * losslessly), `spiffe_refresh_hint` a non-negative integer of seconds. Always errors: malformed JSON, duplicate
   * JSON keys, a `jwt-svid` entry without `kid`, private key material, bad key parameters or certificates, and an
   * `x5c` certificate whose key differs from the JWK's key parameters.
   *
   * @throws {BundleError} ERR_BUNDLE_INVALID, e.g. `spiffebundle: no authorities found`
   * @example
   * ```ts
   * SpiffeBundle.parse(td, '{"keys":[],"spiffe_sequence":1}');
   * SpiffeBundle.parse(td, json, { strict: true }); // go-spiffe behaviour
   * ```
   */
  static parse(
    td: TrustDomain,
    json: string | Uint8Array,
    options: SpiffeBundleParseOptions = {},
  ): SpiffeBundle {
    if (!(td instanceof TrustDomain)) throw new TypeError('spiffebundle: expected a TrustDomain');
    let doc: JsonValue;
    try {
      doc = parseJson(json);
    } catch (err) {
      throw invalid(`unable to parse JWKS: ${(err as Error).message}`, err);
    }
    return SpiffeBundle.fromJson(td, doc, options);
  }

  /**
   * Reads a SPIFFE bundle file.
   *
   * @throws {BundleError} ERR_BUNDLE_INVALID when the file cannot be read or parsed
   * @example
   * ```ts
   * SpiffeBundle.load(td, '/etc/tessera/federated/example.org.json');
   * ```
   */
  static load(td: TrustDomain, path: string, options: SpiffeBundleParseOptions = {}): SpiffeBundle {
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (err) {
      throw invalid(`unable to read SPIFFE bundle ${JSON.stringify(path)}: ${(err as Error).message}`, err);
    }
    return SpiffeBundle.parse(td, data, options);
  }

  /**
   * Builds a bundle from an already-parsed document (used by the bundle map parser).
   * @internal
   */
  static fromJson(td: TrustDomain, doc: JsonValue, options: SpiffeBundleParseOptions = {}): SpiffeBundle {
    if (!isJsonObject(doc)) throw invalid('unable to parse JWKS: document is not a JSON object');
    const entries = doc.keys;
    if (entries === undefined || entries === null) throw invalid('no authorities found');
    if (!Array.isArray(entries)) throw invalid('unable to parse JWKS: "keys" is not an array');
    const sequence = readUint(doc, 'spiffe_sequence', MAX_UINT64);
    const hintBig = readUint(doc, 'spiffe_refresh_hint', BigInt(Number.MAX_SAFE_INTEGER));
    const certs: X509Certificate[] = [];
    const keys = new Map<string, KeyObject>();
    const strict = options.strict === true;
    entries.forEach((entry, i) => {
      try {
        readEntry(asObject(entry, `entry ${i}`), i, strict, certs, keys);
      } catch (err) {
        if (!(err instanceof JwkError)) throw err;
        throw invalid(err.message, err);
      }
    });
    return new SpiffeBundle(
      X509Bundle.fromAuthorities(td, certs),
      JwtBundle.fromAuthorities(td, keys),
      sequence,
      hintBig === undefined ? undefined : Number(hintBig),
    );
  }

  /** The trust domain of the bundle. */
  get trustDomain(): TrustDomain {
    return this.#x509.trustDomain;
  }

  /** `spiffe_sequence`, when set. */
  get sequenceNumber(): bigint | undefined {
    return this.#sequence;
  }

  /** `spiffe_refresh_hint` in seconds, when set. */
  get refreshHint(): number | undefined {
    return this.#refreshHint;
  }

  /** The X.509 authorities as an {@link X509Bundle}. */
  x509Bundle(): X509Bundle {
    return this.#x509;
  }

  /** The JWT authorities as a {@link JwtBundle}. */
  jwtBundle(): JwtBundle {
    return this.#jwt;
  }

  /** The X.509 authorities. */
  x509Authorities(): readonly X509Certificate[] {
    return this.#x509.x509Authorities();
  }

  /** The JWT authorities keyed by key ID. */
  jwtAuthorities(): ReadonlyMap<string, KeyObject> {
    return this.#jwt.jwtAuthorities();
  }

  /** The JWT authority with key ID `kid`, or undefined. */
  findJwtAuthority(kid: string): KeyObject | undefined {
    return this.#jwt.findJwtAuthority(kid);
  }

  /** Returns a copy with other metadata (pass `undefined` to unset a field). */
  withMetadata(meta: {
    sequenceNumber?: bigint | number | undefined;
    refreshHint?: number | undefined;
  }): SpiffeBundle {
    const parts: { sequenceNumber?: bigint | number; refreshHint?: number } = {};
    if (meta.sequenceNumber !== undefined) parts.sequenceNumber = meta.sequenceNumber;
    if (meta.refreshHint !== undefined) parts.refreshHint = meta.refreshHint;
    return SpiffeBundle.fromAuthorities(this.trustDomain, {
      x509Authorities: this.x509Authorities(),
      jwtAuthorities: this.jwtAuthorities(),
      ...parts,
    });
  }

  /**
   * Serialises the bundle as a SPIFFE bundle document: X.509 entries carry `use: "x509-svid"`, the key parameters
   * and `x5c` (one standard-base64 DER certificate) and no `kid`; JWT entries carry `use: "jwt-svid"`, `kid` and
   * the key parameters. `spiffe_sequence` and `spiffe_refresh_hint` are emitted only when set.
   *
   * @example
   * ```ts
   * fs.writeFileSync('bundle.json', bundle.marshal());
   * ```
   */
  marshal(options: { omitRefreshHint?: boolean } = {}): string {
    const keys: string[] = [];
    for (const cert of this.x509Authorities()) {
      const jwk = { ...publicKeyToJwk(cert.publicKey), use: 'x509-svid', x5c: [cert.raw.toString('base64')] };
      keys.push(JSON.stringify(orderJwk(jwk)));
    }
    for (const [kid, key] of this.jwtAuthorities()) {
      keys.push(JSON.stringify(orderJwk({ ...publicKeyToJwk(key), use: 'jwt-svid', kid })));
    }
    let out = `{"keys":[${keys.join(',')}]`;
    if (this.#sequence !== undefined) out += `,"spiffe_sequence":${this.#sequence.toString()}`;
    if (this.#refreshHint !== undefined && !options.omitRefreshHint) {
      out += `,"spiffe_refresh_hint":${this.#refreshHint}`;
    }
    return `${out}}`;
  }

  /** Tells whether `other` has the same trust domain, authorities, sequence number and refresh hint. */
  equals(other: SpiffeBundle | null | undefined): boolean {
    if (!(other instanceof SpiffeBundle)) return false;
    return (
      this.#sequence === other.#sequence &&
      this.#refreshHint === other.#refreshHint &&
      this.#x509.equals(other.#x509) &&
      keyMapsEqual(this.#jwt.jwtAuthorities(), other.#jwt.jwtAuthorities())
    );
  }

  /**
   * Returns the X.509 part when `td` is the bundle's trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND `spiffebundle: no X.509 bundle for trust domain "<td>"`
   */
  getX509BundleForTrustDomain(td: TrustDomain): X509Bundle {
    if (!this.trustDomain.equals(td)) {
      throw new BundleError(
        'ERR_BUNDLE_NOT_FOUND',
        `spiffebundle: no X.509 bundle for trust domain "${td.name}"`,
      );
    }
    return this.#x509;
  }

  /**
   * Returns the JWT part when `td` is the bundle's trust domain.
   *
   * @throws {BundleError} ERR_BUNDLE_NOT_FOUND `spiffebundle: no JWT bundle for trust domain "<td>"`
   */
  getJwtBundleForTrustDomain(td: TrustDomain): JwtBundle {
    if (!this.trustDomain.equals(td)) {
      throw new BundleError(
        'ERR_BUNDLE_NOT_FOUND',
        `spiffebundle: no JWT bundle for trust domain "${td.name}"`,
      );
    }
    return this.#jwt;
  }
}

function readEntry(
  jwk: JsonObject,
  i: number,
  strict: boolean,
  certs: X509Certificate[],
  keys: Map<string, KeyObject>,
): void {
  const use = jwk.use;
  const kty = jwk.kty;
  const knownKty = typeof kty === 'string' && KNOWN_KTY.has(kty);
  if (strict && !knownKty) {
    throw new JwkError(
      `unable to parse JWKS: unknown json web key type ${JSON.stringify(kty ?? null)} in entry ${i}`,
    );
  }
  if (use === 'x509-svid') {
    const x5c = jwk.x5c;
    const n = Array.isArray(x5c) ? x5c.length : 0;
    if (x5c !== undefined && !Array.isArray(x5c)) {
      throw new JwkError(`unable to parse JWKS: x5c of entry ${i} is not an array`);
    }
    if (strict && n !== 1)
      throw new JwkError(`expected a single certificate in x509-svid entry ${i}; got ${n}`);
    if (!knownKty || n === 0 || !Array.isArray(x5c)) return; // BND-05/06, X5-19: ignore this entry only
    let cert: X509Certificate;
    try {
      cert = parseX5cCert(x5c[0]);
    } catch (err) {
      throw new JwkError(`invalid x509-svid entry ${i}: ${(err as Error).message}`);
    }
    if (hasKeyParams(jwk, kty)) {
      let key: KeyObject;
      try {
        key = jwkToPublicKey(jwk, kty);
      } catch (err) {
        throw new JwkError(`invalid x509-svid entry ${i}: ${(err as Error).message}`);
      }
      if (!sameKey(key, cert.publicKey)) {
        throw new JwkError(`invalid x509-svid entry ${i}: x5c certificate does not match the JWK key`);
      }
    } else if (strict) {
      throw new JwkError(`invalid x509-svid entry ${i}: missing key parameters`);
    } else if (jwk.d !== undefined) {
      throw new JwkError(`invalid x509-svid entry ${i}: contains private key material`);
    }
    if (!keyTypeMatches(kty, cert)) {
      throw new JwkError(
        `invalid x509-svid entry ${i}: kty ${JSON.stringify(kty)} does not match the certificate key`,
      );
    }
    certs.push(cert);
    return;
  }
  if (use === 'jwt-svid') {
    if (!knownKty) return; // BND-05/06: ignore this entry only
    const kid = jwk.kid;
    if (kid === undefined || kid === '') {
      throw new JwkError(`error adding authority ${i} of JWKS: keyID cannot be empty`);
    }
    if (typeof kid !== 'string')
      throw new JwkError(`error adding authority ${i} of JWKS: keyID must be a string`);
    let key: KeyObject;
    try {
      key = jwkToPublicKey(jwk, kty);
      checkX5c(jwk.x5c, key);
    } catch (err) {
      throw new JwkError(`error adding authority ${i} of JWKS: ${(err as Error).message}`);
    }
    keys.set(kid, key);
  }
  // Any other `use` (including a missing one, or wit-svid which this library does not support): ignored (BND-05).
}

function keyTypeMatches(kty: string, cert: X509Certificate): boolean {
  const t = cert.publicKey.asymmetricKeyType;
  if (kty === 'EC') return t === 'ec';
  if (kty === 'RSA') return t === 'rsa' || t === 'rsa-pss';
  return t === 'ed25519' || t === 'ed448' || t === 'x25519' || t === 'x448';
}

function readUint(doc: JsonObject, name: string, max: bigint): bigint | undefined {
  const v = doc[name];
  if (v === undefined || v === null) return undefined;
  if (!(v instanceof JsonNumber) || !v.isInteger()) {
    throw invalid(`unable to parse JWKS: "${name}" must be an integer`);
  }
  const n = v.toBigInt();
  if (n < 0n || n > max) throw invalid(`unable to parse JWKS: "${name}" is out of range: ${v.text}`);
  return n;
}

const JWK_ORDER = ['use', 'kty', 'kid', 'crv', 'x', 'y', 'n', 'e', 'x5c'];
function orderJwk(jwk: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of JWK_ORDER) if (jwk[k] !== undefined) out[k] = jwk[k];
  return out;
}

function invalid(message: string, cause?: unknown): BundleError {
  return new BundleError(
    'ERR_BUNDLE_INVALID',
    `spiffebundle: ${message}`,
    cause === undefined ? {} : { cause },
  );
}
