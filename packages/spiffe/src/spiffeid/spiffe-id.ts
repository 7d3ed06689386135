import {
  idError,
  isSegmentChars,
  MAX_ID_LENGTH,
  MAX_TRUST_DOMAIN_LENGTH,
  MSG_DOT_SEGMENT,
  MSG_EMPTY_SEGMENT,
  MSG_PATH_CHARS,
  SCHEME_PREFIX,
  SCHEME_PREFIX_LENGTH,
  scanId,
  scanPath,
} from './charset.js';
import { newTrustDomainUnchecked, TrustDomain } from './trust-domain.js';

let construct: (id: string, tdEnd: number, td: TrustDomain | undefined) => SpiffeId;

/**
 * A SPIFFE ID: `spiffe://<trust domain><path>`, validated byte by byte as SPIFFE-ID §2 requires, with no URL
 * library and no normalisation (upper-case scheme or trust domain, percent-encoding, dot segments, empty
 * segments, trailing slashes, query, fragment, userinfo and port are all rejected).
 *
 * Instances are immutable and compare by their string form.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md
 * @example
 * ```ts
 * const id = SpiffeId.fromString('spiffe://example.org/ns/prod/sa/payments');
 * id.trustDomain.name; // 'example.org'
 * id.path; // '/ns/prod/sa/payments'
 * ```
 */
export class SpiffeId {
  static {
    construct = (id, tdEnd, td) => new SpiffeId(id, tdEnd, td);
  }

  readonly #id: string;
  readonly #tdEnd: number;
  #td: TrustDomain | undefined;

  private constructor(id: string, tdEnd: number, td: TrustDomain | undefined) {
    this.#id = id;
    this.#tdEnd = tdEnd;
    this.#td = td;
  }

  /**
   * Parses a SPIFFE ID. IDs longer than 2048 bytes are accepted (SPIFFE-ID §2.3 only forbids generating them).
   *
   * @param id the SPIFFE ID, e.g. `spiffe://example.org/workload`
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID with go-spiffe's reason, e.g.
   *   `spiffeid: path cannot contain dot segments: "spiffe://example.org/a/../b"`
   * @example
   * ```ts
   * SpiffeId.fromString('spiffe://example.org/a').path; // '/a'
   * ```
   */
  static fromString(id: string): SpiffeId {
    if (typeof id !== 'string') throw new TypeError('spiffeid: SPIFFE ID must be a string');
    const r = scanId(id);
    if (typeof r === 'string') throw idError(r, id);
    return new SpiffeId(id, r, undefined);
  }

  /**
   * Parses a SPIFFE ID from a WHATWG URL (`fromString(url.href)`). Note that `URL` lowercases the scheme and
   * may percent-encode characters; the result is validated like any other string.
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
   * @example
   * ```ts
   * SpiffeId.fromUri(new URL('spiffe://example.org/a'));
   * ```
   */
  static fromUri(uri: URL): SpiffeId {
    if (!(uri instanceof URL)) throw new TypeError('spiffeid: fromUri expects a URL');
    return SpiffeId.fromString(uri.href);
  }

  /**
   * Builds a SPIFFE ID from a trust domain and a path (empty, or starting with `/`). As a generator it refuses
   * IDs longer than 2048 bytes and trust domains longer than 255 bytes.
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID for a bad path or an over-long result
   * @example
   * ```ts
   * SpiffeId.fromPath(TrustDomain.fromString('example.org'), '/a/b').toString(); // 'spiffe://example.org/a/b'
   * ```
   */
  static fromPath(td: TrustDomain, path: string): SpiffeId {
    if (!(td instanceof TrustDomain)) throw new TypeError('spiffeid: fromPath expects a TrustDomain');
    if (typeof path !== 'string') throw new TypeError('spiffeid: path must be a string');
    validatePath(path);
    return generate(td, path);
  }

  /**
   * Builds a SPIFFE ID from a trust domain and path segments, each validated alone (a `/` inside a segment is
   * rejected). No segments gives the trust domain's own ID. Refuses IDs longer than 2048 bytes.
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
   * @example
   * ```ts
   * SpiffeId.fromSegments(TrustDomain.fromString('example.org'), 'ns', 'prod').path; // '/ns/prod'
   * ```
   */
  static fromSegments(td: TrustDomain, ...segments: string[]): SpiffeId {
    if (!(td instanceof TrustDomain)) throw new TypeError('spiffeid: fromSegments expects a TrustDomain');
    return generate(td, joinPathSegments(...segments));
  }

  /**
   * Parses a SPIFFE ID that is known to be valid (constants, tests). Same as {@link SpiffeId.fromString}.
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
   * @example
   * ```ts
   * const ADMIN = SpiffeId.require('spiffe://example.org/admin');
   * ```
   */
  static require(id: string): SpiffeId {
    return SpiffeId.fromString(id);
  }

  /**
   * Tells whether `id` is a valid SPIFFE ID, without allocating an error.
   *
   * @example
   * ```ts
   * SpiffeId.isValid('spiffe://example.org/a'); // true
   * ```
   */
  static isValid(id: string): boolean {
    return typeof id === 'string' && typeof scanId(id) === 'number';
  }

  /** The trust domain of the ID. */
  get trustDomain(): TrustDomain {
    let td = this.#td;
    if (td === undefined) {
      td = newTrustDomainUnchecked(this.#id.slice(SCHEME_PREFIX_LENGTH, this.#tdEnd));
      this.#td = td;
    }
    return td;
  }

  /** The path: empty for a trust domain's own ID, otherwise starting with `/` (case-sensitive). */
  get path(): string {
    return this.#id.slice(this.#tdEnd);
  }

  /** Tells whether the ID belongs to trust domain `td` (plain equality of trust domain names). */
  memberOf(td: TrustDomain): boolean {
    const name = td.name;
    return (
      this.#tdEnd - SCHEME_PREFIX_LENGTH === name.length && this.#id.startsWith(name, SCHEME_PREFIX_LENGTH)
    );
  }

  /** Tells whether `other` is the same SPIFFE ID (exact string equality). */
  equals(other: SpiffeId | null | undefined): boolean {
    return other instanceof SpiffeId && other.#id === this.#id;
  }

  /** Orders SPIFFE IDs by their string form (code unit order). */
  compare(other: SpiffeId): number {
    const a = this.#id;
    const b = other.#id;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  /**
   * Returns a new ID with `path` (empty or starting with `/`) appended to this ID's path.
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
   */
  appendPath(path: string): SpiffeId {
    validatePath(path);
    return generate(this.trustDomain, this.path + path);
  }

  /**
   * Returns a new ID with `segments` appended to this ID's path.
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
   */
  appendSegments(...segments: string[]): SpiffeId {
    return generate(this.trustDomain, this.path + joinPathSegments(...segments));
  }

  /**
   * Returns a new ID in the same trust domain with path `path` (empty or starting with `/`).
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
   */
  replacePath(path: string): SpiffeId {
    return SpiffeId.fromPath(this.trustDomain, path);
  }

  /**
   * Returns a new ID in the same trust domain with path made of `segments`.
   *
   * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
   */
  replaceSegments(...segments: string[]): SpiffeId {
    return SpiffeId.fromSegments(this.trustDomain, ...segments);
  }

  /** The SPIFFE ID as a string, exactly as parsed. */
  toString(): string {
    return this.#id;
  }

  /** The SPIFFE ID as a string, so that JSON.stringify emits a string. */
  toJSON(): string {
    return this.#id;
  }

  /** The SPIFFE ID as a WHATWG URL. */
  toUrl(): URL {
    return new URL(this.#id);
  }
}

function generate(td: TrustDomain, path: string): SpiffeId {
  const name = td.name;
  const id = SCHEME_PREFIX + name + path;
  if (name.length > MAX_TRUST_DOMAIN_LENGTH) {
    throw idError(`trust domain cannot be longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`, name);
  }
  if (id.length > MAX_ID_LENGTH) {
    throw idError(`SPIFFE ID cannot be longer than ${MAX_ID_LENGTH} bytes (got ${id.length})`, id);
  }
  return construct(id, SCHEME_PREFIX_LENGTH + name.length, td);
}

/**
 * Builds a SpiffeId from an already-validated string (internal; not exported from the subpath).
 */
export function newSpiffeIdUnchecked(id: string, td: TrustDomain): SpiffeId {
  return construct(id, SCHEME_PREFIX_LENGTH + td.name.length, td);
}

/**
 * Validates a SPIFFE ID path: empty (the trust domain's own ID) or `/seg(/seg)*` where each segment is
 * non-empty, not `.` or `..`, and made of `[a-zA-Z0-9._-]`.
 *
 * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID, e.g. `spiffeid: path must have a leading slash: "a"`
 * @example
 * ```ts
 * validatePath('/ns/prod'); // ok
 * validatePath('/a/'); // throws: path cannot have a trailing slash
 * ```
 */
export function validatePath(path: string): void {
  if (typeof path !== 'string') throw new TypeError('spiffeid: path must be a string');
  const bad = scanPath(path, 0, path.length);
  if (bad !== undefined) throw idError(bad, path);
}

/**
 * Validates one path segment (without slashes): non-empty, not `.` or `..`, made of `[a-zA-Z0-9._-]`.
 *
 * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID
 * @example
 * ```ts
 * validatePathSegment('payments'); // ok
 * ```
 */
export function validatePathSegment(segment: string): void {
  if (typeof segment !== 'string') throw new TypeError('spiffeid: path segment must be a string');
  if (segment.length === 0) throw idError(MSG_EMPTY_SEGMENT, segment);
  if (segment === '.' || segment === '..') throw idError(MSG_DOT_SEGMENT, segment);
  if (!isSegmentChars(segment)) throw idError(MSG_PATH_CHARS, segment);
}

/**
 * Joins validated segments into a path: `joinPathSegments('a', 'b')` is `/a/b`; no segments gives `''`.
 *
 * @throws {SpiffeIdError} ERR_SPIFFEID_INVALID when a segment is invalid
 * @example
 * ```ts
 * joinPathSegments('ns', 'prod'); // '/ns/prod'
 * ```
 */
export function joinPathSegments(...segments: string[]): string {
  let path = '';
  for (const s of segments) {
    validatePathSegment(s);
    path += `/${s}`;
  }
  return path;
}
