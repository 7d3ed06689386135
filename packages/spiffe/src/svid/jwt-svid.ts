/**
 * JWT-SVIDs: parsing and validation of JWS compact tokens whose `sub` is a SPIFFE ID.
 *
 * Implements the SPIFFE JWT-SVID standard (https://github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md)
 * with go-spiffe's `svid/jwtsvid` check order and messages. Signatures are verified with `node:crypto`
 * directly (no JOSE library on the verification path).
 *
 * @module
 */
import { constants, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { JwtBundle, JwtBundleSource } from '../bundle/index.js';
import { BundleError, JwtSvidError, SpiffeIdError } from '../errors.js';
import { isJsonObject, type JsonValue, parseJson } from '../internal/json.js';
import { SpiffeId } from '../spiffeid/index.js';

/** Leeway applied to `exp`, `nbf` and `iat`, as go-spiffe (go-jose's default): 60 seconds. */
const LEEWAY_MS = 60_000;

type HashName = 'sha256' | 'sha384' | 'sha512';

interface AlgSpec {
  readonly name: string;
  readonly kind: 'rsa' | 'pss' | 'ec';
  readonly hash: HashName;
  readonly hashLength: number;
  /** EC only: node's name of the curve the key must be on. */
  readonly curve?: string;
  /** EC only: the curve's display name, for messages. */
  readonly curveName?: string;
  /** EC only: byte length of an IEEE P1363 (r || s) signature. */
  readonly signatureLength?: number;
}

/** The 9 algorithms JWT-SVID allows (JWT-SVID §3, JWT-02). Anything else is rejected before any key work. */
const ALGORITHMS: ReadonlyMap<string, AlgSpec> = new Map<string, AlgSpec>([
  ['RS256', { name: 'RS256', kind: 'rsa', hash: 'sha256', hashLength: 32 }],
  ['RS384', { name: 'RS384', kind: 'rsa', hash: 'sha384', hashLength: 48 }],
  ['RS512', { name: 'RS512', kind: 'rsa', hash: 'sha512', hashLength: 64 }],
  ['PS256', { name: 'PS256', kind: 'pss', hash: 'sha256', hashLength: 32 }],
  ['PS384', { name: 'PS384', kind: 'pss', hash: 'sha384', hashLength: 48 }],
  ['PS512', { name: 'PS512', kind: 'pss', hash: 'sha512', hashLength: 64 }],
  [
    'ES256',
    {
      name: 'ES256',
      kind: 'ec',
      hash: 'sha256',
      hashLength: 32,
      curve: 'prime256v1',
      curveName: 'P-256',
      signatureLength: 64,
    },
  ],
  [
    'ES384',
    {
      name: 'ES384',
      kind: 'ec',
      hash: 'sha384',
      hashLength: 48,
      curve: 'secp384r1',
      curveName: 'P-384',
      signatureLength: 96,
    },
  ],
  [
    'ES512',
    {
      name: 'ES512',
      kind: 'ec',
      hash: 'sha512',
      hashLength: 64,
      curve: 'secp521r1',
      curveName: 'P-521',
      signatureLength: 132,
    },
  ],
]);

/**
 * The algorithms a JWT-SVID may be signed with (JWT-SVID §3): RS256/384/512, ES256/384/512, PS256/384/512.
 *
 * @example
 * ```ts
 * JWT_SVID_ALGORITHMS.includes('ES256'); // true
 * ```
 */
export const JWT_SVID_ALGORITHMS: readonly string[] = Object.freeze([...ALGORITHMS.keys()]);

/**
 * Header parameters that are refused outright (JWT-03: a JWT-SVID header holds only `alg`, `kid` and `typ`).
 * `crit` would oblige us to understand extensions; `jku`, `x5u`, `jwk`, `x5c` name keys that must never be
 * trusted (keys come from the bundle only); `enc`/`zip` belong to JWE; `b64` (RFC 7797) changes the
 * signing input when honoured.
 */
const FORBIDDEN_HEADERS: readonly string[] = ['crit', 'jku', 'x5u', 'jwk', 'x5c', 'enc', 'zip', 'b64'];

/** Minimum RSA modulus accepted for RS and PS algorithms. */
const MIN_RSA_BITS = 2048;

/**
 * Options of {@link JwtSvid.parseAndValidate} and {@link JwtSvid.parseInsecure}.
 *
 * @example
 * ```ts
 * JwtSvid.parseInsecure(token, ['spiffe://example.org/api'], { now: new Date(), hint: 'internal' });
 * ```
 */
export interface JwtSvidParseOptions {
  /** The time to validate `exp`, `nbf` and `iat` against. Defaults to the current time. */
  readonly now?: Date;
  /** Operator hint to attach (from the Workload API `JWTSVID.hint`). Defaults to `''`. */
  readonly hint?: string;
}

/**
 * Parameters of {@link JwtSvidSource.fetchJwtSvid} (the Workload API `JWTSVIDRequest`).
 *
 * @example
 * ```ts
 * const params: JwtSvidParams = { audience: 'spiffe://example.org/api', extraAudiences: ['legacy'] };
 * ```
 */
export interface JwtSvidParams {
  /** The audience the JWT-SVID is requested for. */
  readonly audience: string;
  /** Further audiences to include in `aud`. */
  readonly extraAudiences?: readonly string[];
  /** The SPIFFE ID to request; defaults to the source's default identity. */
  readonly subject?: SpiffeId;
}

/**
 * A source of JWT-SVIDs, such as the Workload API's `JwtSource`.
 *
 * @example
 * ```ts
 * const svid = await source.fetchJwtSvid({ audience: 'spiffe://example.org/api' });
 * headers.authorization = `Bearer ${svid.marshal()}`;
 * ```
 */
export interface JwtSvidSource {
  /**
   * Fetches a JWT-SVID for the given audience.
   *
   * @throws {SpiffeError} when no JWT-SVID can be obtained (codes depend on the source).
   */
  fetchJwtSvid(params: JwtSvidParams): Promise<JwtSvid>;
}

/**
 * A JWT-SVID: a JWS-signed JWT whose `sub` is the SPIFFE ID of a workload
 * ([JWT-SVID standard](https://github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md)).
 *
 * Instances are immutable. The token itself is held privately and only returned by {@link JwtSvid.marshal};
 * it never appears in `toString()`, inspection or error messages.
 *
 * Choices where the standard and go-spiffe differ (CONFORMANCE §2.8):
 * - `kid` is required when validating against bundles (`token header missing key id`);
 * - the expected audience list must be non-empty: an empty list is a programmer error and throws `RangeError`
 *   (go-spiffe skips the audience check instead);
 * - a `sub` naming a trust domain root (`spiffe://example.org`) is refused: a JWT-SVID names a workload;
 * - headers `crit`, `jku`, `x5u`, `jwk`, `x5c`, `enc`, `zip` and `b64` are refused (go-spiffe ignores extras).
 *
 * @example
 * ```ts
 * const svid = await JwtSvid.parseAndValidate(token, bundleSet, ['spiffe://example.org/api']);
 * console.log(svid.id.toString(), svid.expiry.toISOString());
 * ```
 */
export class JwtSvid {
  readonly #id: SpiffeId;
  readonly #audience: readonly string[];
  readonly #expiryMs: number;
  readonly #claims: Readonly<Record<string, unknown>>;
  readonly #hint: string;
  readonly #token: string;

  private constructor(
    id: SpiffeId,
    audience: readonly string[],
    expiryMs: number,
    claims: Readonly<Record<string, unknown>>,
    hint: string,
    token: string,
  ) {
    this.#id = id;
    this.#audience = audience;
    this.#expiryMs = expiryMs;
    this.#claims = claims;
    this.#hint = hint;
    this.#token = token;
  }

  /**
   * Parses a JWT-SVID, verifies its signature with the JWT authority named by `kid` in the bundle of the
   * subject's trust domain, and validates `exp`, `aud`, `nbf` and `iat` (60 s leeway).
   *
   * @param token - the JWS compact serialization.
   * @param bundleSource - where to find the JWT bundle of the subject's trust domain.
   * @param audience - the expected audiences; the token must contain at least one of them. Must be non-empty.
   * @param options - `now` to validate against (defaults to the current time) and a `hint` to attach.
   * @returns the validated JWT-SVID.
   * @throws {JwtSvidError} ERR_JWTSVID_INVALID for a malformed token, a disallowed algorithm or header, a bad
   *   subject, a missing `kid`, no bundle or authority for it, a bad signature, or `nbf`/`iat` in the future;
   *   ERR_JWTSVID_EXPIRED when `exp` has passed; ERR_JWTSVID_AUDIENCE when no expected audience is in `aud`.
   * @throws {TypeError} if the arguments have the wrong types. {@link RangeError} if `audience` is empty.
   * @example
   * ```ts
   * const svid = await JwtSvid.parseAndValidate(token, bundle, ['spiffe://example.org/api'], { now });
   * ```
   */
  static async parseAndValidate(
    token: string,
    bundleSource: JwtBundleSource,
    audience: readonly string[],
    options: JwtSvidParseOptions = {},
  ): Promise<JwtSvid> {
    return JwtSvid.parseAndValidateSync(token, bundleSource, audience, options);
  }

  /**
   * Synchronous form of {@link JwtSvid.parseAndValidate}, for callbacks that cannot await.
   *
   * @throws {JwtSvidError} ERR_JWTSVID_INVALID, ERR_JWTSVID_EXPIRED, ERR_JWTSVID_AUDIENCE (see parseAndValidate).
   * @throws {TypeError} if the arguments have the wrong types. {@link RangeError} if `audience` is empty.
   * @example
   * ```ts
   * const svid = JwtSvid.parseAndValidateSync(token, bundle, ['spiffe://example.org/api'], { now });
   * ```
   */
  static parseAndValidateSync(
    token: string,
    bundleSource: JwtBundleSource,
    audience: readonly string[],
    options: JwtSvidParseOptions = {},
  ): JwtSvid {
    checkArguments(token, audience, options);
    if (
      bundleSource === null ||
      typeof bundleSource !== 'object' ||
      typeof bundleSource.getJwtBundleForTrustDomain !== 'function'
    ) {
      throw new TypeError('jwtsvid: bundleSource must implement getJwtBundleForTrustDomain()');
    }
    const parsed = parseToken(token);
    verifySignature(parsed, bundleSource);
    return JwtSvid.#finish(parsed, token, audience, options);
  }

  /**
   * Parses a JWT-SVID and validates its claims (`sub`, `exp`, `aud`, `nbf`, `iat`) WITHOUT verifying the
   * signature. Use only for tokens from a trusted channel, such as a Workload API response.
   *
   * @param token - the JWS compact serialization.
   * @param audience - the expected audiences; the token must contain at least one of them. Must be non-empty.
   * @param options - `now` to validate against (defaults to the current time) and a `hint` to attach.
   * @throws {JwtSvidError} ERR_JWTSVID_INVALID, ERR_JWTSVID_EXPIRED, ERR_JWTSVID_AUDIENCE as parseAndValidate,
   *   minus the `kid`, bundle and signature checks.
   * @throws {TypeError} if the arguments have the wrong types. {@link RangeError} if `audience` is empty.
   * @example
   * ```ts
   * const svid = JwtSvid.parseInsecure(response.svid, ['spiffe://example.org/api']);
   * ```
   */
  static parseInsecure(
    token: string,
    audience: readonly string[],
    options: JwtSvidParseOptions = {},
  ): JwtSvid {
    checkArguments(token, audience, options);
    const parsed = parseToken(token);
    return JwtSvid.#finish(parsed, token, audience, options);
  }

  static #finish(
    parsed: ParsedToken,
    token: string,
    audience: readonly string[],
    options: JwtSvidParseOptions,
  ): JwtSvid {
    const nowMs = options.now === undefined ? Date.now() : options.now.getTime();
    validateTimesAndAudience(parsed, audience, nowMs);
    return new JwtSvid(
      parsed.id,
      Object.freeze([...parsed.audience]),
      parsed.expMs,
      parsed.claims,
      options.hint ?? '',
      token,
    );
  }

  /** The SPIFFE ID in `sub`. */
  get id(): SpiffeId {
    return this.#id;
  }

  /** The audiences in `aud`, always as an array (a string `aud` becomes a one-element array). */
  get audience(): readonly string[] {
    return this.#audience;
  }

  /** The expiry (`exp`) as a new `Date` on each access. */
  get expiry(): Date {
    return new Date(this.#expiryMs);
  }

  /** The full decoded claims, deeply frozen. */
  get claims(): Readonly<Record<string, unknown>> {
    return this.#claims;
  }

  /** The operator hint given when parsing (`''` when none). */
  get hint(): string {
    return this.#hint;
  }

  /**
   * Returns the token exactly as it was parsed.
   *
   * @example
   * ```ts
   * fetch(url, { headers: { authorization: `Bearer ${svid.marshal()}` } });
   * ```
   */
  marshal(): string {
    return this.#token;
  }

  /** Describes the JWT-SVID without the token: `JwtSvid(spiffe://td/x, aud=["a"], exp=...)`. */
  toString(): string {
    return `JwtSvid(${this.#id.toString()}, aud=${formatList(this.#audience)}, exp=${new Date(this.#expiryMs).toISOString()})`;
  }
}

interface ParsedToken {
  readonly alg: AlgSpec;
  readonly kid: string | undefined;
  readonly signingInput: string;
  readonly signature: Buffer;
  readonly claims: Readonly<Record<string, unknown>>;
  readonly id: SpiffeId;
  readonly audience: readonly string[];
  readonly expMs: number;
  readonly nbfMs: number | undefined;
  readonly iatMs: number | undefined;
}

function invalid(message: string, cause?: unknown): JwtSvidError {
  return new JwtSvidError(
    'ERR_JWTSVID_INVALID',
    `jwtsvid: ${message}`,
    cause === undefined ? undefined : { cause },
  );
}

function checkArguments(token: unknown, audience: unknown, options: unknown): void {
  if (typeof token !== 'string') throw new TypeError('jwtsvid: token must be a string');
  if (!Array.isArray(audience)) throw new TypeError('jwtsvid: audience must be an array of strings');
  if (audience.length === 0) {
    throw new RangeError('jwtsvid: expected audience must not be empty');
  }
  for (const a of audience) {
    if (typeof a !== 'string') throw new TypeError('jwtsvid: audience must be an array of strings');
    if (a.length === 0) throw new RangeError('jwtsvid: expected audience must not contain an empty string');
  }
  if (options === null || typeof options !== 'object') {
    throw new TypeError('jwtsvid: options must be an object');
  }
  const { now, hint } = options as { now?: unknown; hint?: unknown };
  if (now !== undefined && !(now instanceof Date && !Number.isNaN(now.getTime()))) {
    throw new TypeError('jwtsvid: options.now must be a valid Date');
  }
  if (hint !== undefined && typeof hint !== 'string') {
    throw new TypeError('jwtsvid: options.hint must be a string');
  }
}

/** Quotes an untrusted value for a message, bounded in length. */
function quote(value: string): string {
  const max = 128;
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

/** Formats a list Go-style (`["a" "b"]`), bounded in length. */
function formatList(values: readonly string[]): string {
  const max = 8;
  const shown = values.slice(0, max).map(quote);
  if (values.length > max) shown.push(`…(${values.length - max} more)`);
  return `[${shown.join(' ')}]`;
}

// base64url alphabet values; -1 for characters outside it.
const B64URL = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) {
  B64URL['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.charCodeAt(i)] = i;
}

/**
 * Decodes unpadded base64url strictly: only the url-safe alphabet, no padding, no whitespace, and the
 * unused low bits of the last character must be zero (so that each byte string has exactly one encoding).
 */
function decodeBase64Url(segment: string, what: string): Buffer {
  const n = segment.length;
  if (n % 4 === 1) throw invalid(`unable to parse JWT token: ${what} is not valid base64url`);
  for (let i = 0; i < n; i++) {
    const c = segment.charCodeAt(i);
    if (c >= 128 || (B64URL[c] as number) < 0) {
      throw invalid(`unable to parse JWT token: ${what} is not valid base64url`);
    }
  }
  if (n > 0) {
    const last = B64URL[segment.charCodeAt(n - 1)] as number;
    if ((n % 4 === 2 && (last & 0x0f) !== 0) || (n % 4 === 3 && (last & 0x03) !== 0)) {
      throw invalid(`unable to parse JWT token: ${what} is not canonical base64url`);
    }
  }
  return Buffer.from(segment, 'base64url');
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes a header or payload: strict UTF-8 and strict JSON (RFC 8259) with no duplicate keys at any level and
 * bounded nesting, so that no other JWT parser can read the token differently. The header is returned as the
 * strict parser's prototype-less object; the payload is re-read with `JSON.parse` into plain JS values.
 * Returns a reason string on failure (never token content beyond a key name).
 */
function decodeJsonObject(bytes: Buffer, plain: boolean): Record<string, unknown> | string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return 'not valid UTF-8';
  }
  let strict: JsonValue;
  try {
    strict = parseJson(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : 'invalid';
    return `not valid JSON (${detail.length > 96 ? `${detail.slice(0, 96)}…` : detail})`;
  }
  if (!isJsonObject(strict)) return 'not a JSON object';
  if (!plain) return strict;
  return JSON.parse(text) as Record<string, unknown>;
}

/** Freezes a JSON value and everything in it, iteratively (no recursion on attacker-chosen depth). */
function deepFreeze<T>(root: T): T {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const child of Object.values(v)) stack.push(child);
    }
  }
  return root;
}

/** Reads an optional NumericDate claim as milliseconds; throws for a non-number or out-of-range value. */
function numericDate(claims: Record<string, unknown>, name: string): number | undefined {
  if (!Object.hasOwn(claims, name)) return undefined;
  const v = claims[name];
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw invalid(`unable to get claims from token: ${name} claim is not a number`);
  }
  const ms = v * 1000;
  if (Math.abs(ms) > 8.64e15) {
    throw invalid(`unable to get claims from token: ${name} claim is out of range`);
  }
  return ms;
}

function optionalString(claims: Record<string, unknown>, name: string): string | undefined {
  if (!Object.hasOwn(claims, name)) return undefined;
  const v = claims[name];
  if (typeof v !== 'string') throw invalid(`unable to get claims from token: ${name} claim is not a string`);
  return v;
}

/**
 * Parses the compact serialization, the header (alg allow-list, typ, forbidden parameters) and the claims
 * (types, sub, exp). Follows go-spiffe's check order. Does no key work.
 */
function parseToken(token: string): ParsedToken {
  // JWT-01: compact serialization only. A JWS JSON object fails the base64url alphabet; a JWE has 5 parts.
  const first = token.indexOf('.');
  const second = first < 0 ? -1 : token.indexOf('.', first + 1);
  if (second < 0 || token.indexOf('.', second + 1) >= 0) {
    const parts = token.split('.').length;
    throw invalid(`unable to parse JWT token: expected 3 dot-separated parts, got ${parts}`);
  }
  const headerB64 = token.slice(0, first);
  const payloadB64 = token.slice(first + 1, second);
  const signatureB64 = token.slice(second + 1);
  const headerBytes = decodeBase64Url(headerB64, 'header');
  const payloadBytes = decodeBase64Url(payloadB64, 'payload');
  const signature = decodeBase64Url(signatureB64, 'signature');

  const header = decodeJsonObject(headerBytes, false);
  if (typeof header === 'string') throw invalid(`unable to parse JWT token: header is ${header}`);

  // JWT-02: allow-list before anything else looks at keys.
  const algValue = Object.hasOwn(header, 'alg') ? header.alg : undefined;
  if (typeof algValue !== 'string') {
    throw invalid('unable to parse JWT token: header "alg" is missing or not a string');
  }
  const alg = ALGORITHMS.get(algValue);
  if (alg === undefined) {
    throw invalid(`unable to parse JWT token: unsupported signing algorithm ${quote(algValue)}`);
  }
  for (const name of FORBIDDEN_HEADERS) {
    if (Object.hasOwn(header, name)) {
      throw invalid(`unable to parse JWT token: header parameter ${quote(name)} is not allowed`);
    }
  }
  let kid: string | undefined;
  if (Object.hasOwn(header, 'kid')) {
    if (typeof header.kid !== 'string')
      throw invalid('unable to parse JWT token: header "kid" is not a string');
    kid = header.kid;
  }
  if (signature.length === 0) throw invalid('unable to parse JWT token: signature is empty');

  // JWT-05: typ absent or exactly JWT / JOSE.
  if (Object.hasOwn(header, 'typ') && header.typ !== 'JWT' && header.typ !== 'JOSE') {
    throw invalid('token header type not equal to either JWT or JOSE');
  }

  const decoded = decodeJsonObject(payloadBytes, true);
  if (typeof decoded === 'string') throw invalid(`unable to get claims from token: payload is ${decoded}`);
  const claims = deepFreeze(decoded);

  const sub = optionalString(claims, 'sub');
  optionalString(claims, 'iss');
  optionalString(claims, 'jti');
  const expMs = numericDate(claims, 'exp');
  const nbfMs = numericDate(claims, 'nbf');
  const iatMs = numericDate(claims, 'iat');
  let audience: readonly string[] = [];
  if (Object.hasOwn(claims, 'aud')) {
    const aud = claims.aud;
    if (typeof aud === 'string') {
      audience = [aud];
    } else if (Array.isArray(aud) && aud.every((a) => typeof a === 'string')) {
      audience = aud as string[];
    } else {
      throw invalid('unable to get claims from token: aud claim is neither a string nor an array of strings');
    }
  }

  if (sub === undefined || sub === '') throw invalid('token missing subject claim');
  if (expMs === undefined) throw invalid('token missing exp claim');

  let id: SpiffeId;
  try {
    id = SpiffeId.fromString(sub);
  } catch (err) {
    if (err instanceof SpiffeIdError)
      throw invalid(`token has an invalid subject claim: ${err.message}`, err);
    throw err;
  }
  // JWT-06: the subject is the SPIFFE ID of a workload, never a bare trust domain.
  if (id.path === '') {
    throw invalid(
      `token has an invalid subject claim: ${quote(sub)} is a trust domain ID, not a workload ID`,
    );
  }

  return {
    alg,
    kid,
    signingInput: token.slice(0, second),
    signature,
    claims,
    id,
    audience,
    expMs,
    nbfMs,
    iatMs,
  };
}

/** Finds the JWT authority for the token (JWT-10: only in the bundle of `sub`'s trust domain) and verifies. */
function verifySignature(parsed: ParsedToken, bundleSource: JwtBundleSource): void {
  const kid = parsed.kid;
  if (kid === undefined || kid === '') throw invalid('token header missing key id');

  const td = parsed.id.trustDomain;
  let bundle: JwtBundle;
  try {
    bundle = bundleSource.getJwtBundleForTrustDomain(td);
  } catch (err) {
    if (err instanceof BundleError && err.code === 'ERR_BUNDLE_NOT_FOUND') {
      throw invalid(`no bundle found for trust domain ${quote(td.name)}`, err);
    }
    throw err;
  }
  // A source must answer for the trust domain asked; fail closed if it does not.
  if (!bundle.trustDomain.equals(td)) throw invalid(`no bundle found for trust domain ${quote(td.name)}`);

  const key = bundle.findJwtAuthority(kid);
  if (key === undefined) {
    throw invalid(`no JWT authority ${quote(kid)} found for trust domain ${quote(td.name)}`);
  }
  checkKeyFitsAlgorithm(key, kid, parsed.alg);

  const { alg, signature } = parsed;
  let ok = false;
  try {
    const data = Buffer.from(parsed.signingInput, 'latin1');
    if (alg.kind === 'ec') {
      ok =
        signature.length === alg.signatureLength &&
        cryptoVerify(alg.hash, data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    } else if (alg.kind === 'pss') {
      ok = cryptoVerify(
        alg.hash,
        data,
        { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.hashLength },
        signature,
      );
    } else {
      ok = cryptoVerify(alg.hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
  } catch {
    ok = false;
  }
  if (!ok) throw invalid('unable to get claims from token: error in cryptographic primitive');
}

/** Refuses a key that cannot honestly verify `alg` (ES256 ⇔ P-256 etc., RS/PS ⇔ RSA ≥ 2048 bits). */
function checkKeyFitsAlgorithm(key: KeyObject, kid: string, alg: AlgSpec): void {
  const misfit = (what: string): JwtSvidError =>
    invalid(
      `unable to get claims from token: error in cryptographic primitive: JWT authority ${quote(kid)} ${what}`,
    );
  if (key.type === 'secret') throw misfit(`is a secret key and cannot verify ${alg.name}`);
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (alg.kind === 'ec') {
    if (type !== 'ec' || details.namedCurve !== alg.curve) {
      const what =
        type === 'ec' ? `an EC key on ${details.namedCurve ?? 'an unknown curve'}` : `a ${type} key`;
      throw misfit(`is ${what} and cannot verify ${alg.name} (needs ${alg.curveName})`);
    }
    return;
  }
  const rsaOk = type === 'rsa' || (alg.kind === 'pss' && type === 'rsa-pss');
  if (!rsaOk) throw misfit(`is a ${type} key and cannot verify ${alg.name}`);
  const bits = details.modulusLength ?? 0;
  if (bits < MIN_RSA_BITS) {
    throw misfit(`is a ${bits}-bit RSA key; ${alg.name} needs at least ${MIN_RSA_BITS} bits`);
  }
  if (type === 'rsa-pss') {
    // A restricted RSA-PSS key must be restricted to this algorithm's hash.
    const h = details.hashAlgorithm;
    const m = details.mgf1HashAlgorithm;
    if ((h !== undefined && h !== alg.hash) || (m !== undefined && m !== alg.hash)) {
      throw misfit(`is restricted to ${h ?? m} and cannot verify ${alg.name}`);
    }
  }
}

/** exp (ERR_JWTSVID_EXPIRED), audience any-of (ERR_JWTSVID_AUDIENCE), then nbf and iat, each with 60 s leeway. */
function validateTimesAndAudience(parsed: ParsedToken, expected: readonly string[], nowMs: number): void {
  if (nowMs - LEEWAY_MS > parsed.expMs) {
    throw new JwtSvidError('ERR_JWTSVID_EXPIRED', 'jwtsvid: token has expired');
  }
  if (!parsed.audience.some((a) => expected.includes(a))) {
    throw new JwtSvidError(
      'ERR_JWTSVID_AUDIENCE',
      `jwtsvid: expected audience in ${formatList(expected)} (audience=${formatList(parsed.audience)})`,
    );
  }
  if (parsed.nbfMs !== undefined && nowMs + LEEWAY_MS < parsed.nbfMs) {
    throw invalid('token not valid yet (nbf)');
  }
  if (parsed.iatMs !== undefined && nowMs + LEEWAY_MS < parsed.iatMs) {
    throw invalid('token issued in the future (iat)');
  }
}
