import {
  idError,
  isTrustDomainName,
  MAX_TRUST_DOMAIN_LENGTH,
  MSG_TD_CHARS,
  MSG_TD_MISSING,
  SCHEME_PREFIX,
  SCHEME_PREFIX_LENGTH,
  scanId,
} from './charset.js';
import { newSpiffeIdUnchecked, type SpiffeId } from './spiffe-id.js';

let construct: (name: string) => TrustDomain;

/**
 * A SPIFFE trust domain: the validated, lowercase name of an identity namespace (`example.org`).
 *
 * Instances are immutable and compare by name. Build one with {@link TrustDomain.fromString}.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#21-trust-domain
 * @example
 * ```ts
 * const td = TrustDomain.fromString('example.org');
 * td.idString(); // 'spiffe://example.org'
 * ```
 */
export class TrustDomain {
  static {
    construct = (name) => new TrustDomain(name);
  }

  readonly #name: string;

  private constructor(name: string) {
    this.#name = name;
  }

  /**
   * Parses a trust domain from a bare name (`example.org`) or from a SPIFFE ID (`spiffe://example.org/x`,
   * whose trust domain is returned). Input containing `:/` is parsed as a SPIFFE ID. No normalisation is done:
   * upper case is rejected. Names longer than 255 bytes are refused (SPIFFE-ID §2.1: they cannot be DNS names).
   *
   * @param nameOrId a trust domain name or a SPIFFE ID
   * @throws {SpiffeIdError} ERR_TRUST_DOMAIN_INVALID for a bad bare name; ERR_SPIFFEID_INVALID for a bad SPIFFE ID
   * @example
   * ```ts
   * TrustDomain.fromString('spiffe://example.org/workload').name; // 'example.org'
   * ```
   */
  static fromString(nameOrId: string): TrustDomain {
    if (typeof nameOrId !== 'string') throw new TypeError('spiffeid: trust domain must be a string');
    if (nameOrId.length === 0) throw idError(MSG_TD_MISSING, '', 'ERR_TRUST_DOMAIN_INVALID');
    if (nameOrId.includes(':/')) {
      const r = scanId(nameOrId);
      if (typeof r === 'string') throw idError(r, nameOrId);
      const name = nameOrId.slice(SCHEME_PREFIX_LENGTH, r);
      checkLength(name, 'ERR_SPIFFEID_INVALID');
      return new TrustDomain(name);
    }
    if (!isTrustDomainName(nameOrId, 0, nameOrId.length)) {
      throw idError(MSG_TD_CHARS, nameOrId, 'ERR_TRUST_DOMAIN_INVALID');
    }
    checkLength(nameOrId, 'ERR_TRUST_DOMAIN_INVALID');
    return new TrustDomain(nameOrId);
  }

  /** The trust domain name, e.g. `example.org`. */
  get name(): string {
    return this.#name;
  }

  /**
   * The SPIFFE ID of the trust domain itself (`spiffe://<name>`, no path).
   *
   * @example
   * ```ts
   * TrustDomain.fromString('example.org').id().toString(); // 'spiffe://example.org'
   * ```
   */
  id(): SpiffeId {
    return newSpiffeIdUnchecked(SCHEME_PREFIX + this.#name, this);
  }

  /** The SPIFFE ID of the trust domain as a string: `spiffe://<name>`. */
  idString(): string {
    return SCHEME_PREFIX + this.#name;
  }

  /** Tells whether `other` is the same trust domain (exact, case-sensitive name equality). */
  equals(other: TrustDomain | null | undefined): boolean {
    return other instanceof TrustDomain && other.#name === this.#name;
  }

  /** Orders trust domains lexicographically by name (code unit order): negative, zero or positive. */
  compare(other: TrustDomain): number {
    const a = this.#name;
    const b = other.#name;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  /** The trust domain name. */
  toString(): string {
    return this.#name;
  }

  /** The trust domain name, so that JSON.stringify emits a string. */
  toJSON(): string {
    return this.#name;
  }
}

function checkLength(name: string, code: 'ERR_SPIFFEID_INVALID' | 'ERR_TRUST_DOMAIN_INVALID'): void {
  if (name.length > MAX_TRUST_DOMAIN_LENGTH) {
    throw idError(`trust domain cannot be longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`, name, code);
  }
}

/**
 * Builds a TrustDomain from a name the caller has already validated (internal; not exported from the subpath).
 * No length check: a trust domain read from a peer's SPIFFE ID may be longer than we would generate.
 */
export function newTrustDomainUnchecked(name: string): TrustDomain {
  return construct(name);
}
