/**
 * Byte-level scanner shared by {@link TrustDomain} and {@link SpiffeId} (internal, not exported from the
 * subpath). Implements SPIFFE-ID §2 without any URL library and without normalisation.
 *
 * @module
 */
import { SpiffeIdError } from '../errors.js';

/** The only accepted scheme prefix, lowercase (SPIFFE-ID §2.1). */
export const SCHEME_PREFIX = 'spiffe://';
/** Length of {@link SCHEME_PREFIX}. */
export const SCHEME_PREFIX_LENGTH = 9;
/** The longest SPIFFE ID (whole URI, in bytes) a generator may produce (SPIFFE-ID §2.3). */
export const MAX_ID_LENGTH = 2048;
/** The longest trust domain name (in bytes) a generator or configuration may use (SPIFFE-ID §2.1, DNS). */
export const MAX_TRUST_DOMAIN_LENGTH = 255;

// Lookup tables over the ASCII range; any code unit >= 0x80 is rejected by the bounds check.
const TD_CHARS = new Uint8Array(128);
const PATH_CHARS = new Uint8Array(128);
for (let c = 0x61; c <= 0x7a; c++) {
  TD_CHARS[c] = 1; // a-z
  PATH_CHARS[c] = 1;
  PATH_CHARS[c - 0x20] = 1; // A-Z
}
for (let c = 0x30; c <= 0x39; c++) {
  TD_CHARS[c] = 1; // 0-9
  PATH_CHARS[c] = 1;
}
for (const c of [0x2e, 0x2d, 0x5f]) {
  TD_CHARS[c] = 1; // . - _
  PATH_CHARS[c] = 1;
}

/** A whole valid SPIFFE ID: scheme, trust domain, then segments that are not `.` or `..`. */
export const VALID_ID_RE = /^spiffe:\/\/[a-z0-9._-]+(?:\/(?!\.{1,2}(?:\/|$))[a-zA-Z0-9._-]+)*$/;

const SLASH = 0x2f;
const DOT = 0x2e;

export const MSG_EMPTY = 'cannot be empty';
export const MSG_SCHEME = 'scheme is missing or invalid';
export const MSG_TD_MISSING = 'trust domain is missing';
export const MSG_TD_CHARS =
  'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores';
export const MSG_PATH_CHARS =
  'path segment characters are limited to letters, numbers, dots, dashes, and underscores';
export const MSG_DOT_SEGMENT = 'path cannot contain dot segments';
export const MSG_EMPTY_SEGMENT = 'path cannot contain empty segments';
export const MSG_TRAILING_SLASH = 'path cannot have a trailing slash';
export const MSG_LEADING_SLASH = 'path must have a leading slash';

/** Result codes of the scanners: 0 = valid, otherwise one of the messages above. */
export type ScanResult = string | undefined;

/** Quotes an offending value for an error message, escaped and truncated so messages stay bounded. */
export function quote(value: string): string {
  const max = 256;
  const shown = value.length > max ? `${value.slice(0, max)}...` : value;
  return JSON.stringify(shown);
}

/** Builds the `spiffeid: <reason>: "<value>"` error. */
export function idError(
  reason: string,
  value: string,
  code: 'ERR_SPIFFEID_INVALID' | 'ERR_TRUST_DOMAIN_INVALID' = 'ERR_SPIFFEID_INVALID',
): SpiffeIdError {
  const suffix = value === '' ? '' : `: ${quote(value)}`;
  return new SpiffeIdError(code, `spiffeid: ${reason}${suffix}`);
}

/** Tells whether every code unit of `s[start, end)` is a trust domain character. */
export function isTrustDomainName(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || TD_CHARS[c] === 0) return false;
  }
  return true;
}

/** Tells whether every code unit of `s` is a path segment character (the slash is not one). */
export function isSegmentChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || PATH_CHARS[c] === 0) return false;
  }
  return true;
}

/**
 * Scans the path part `s[start, end)` (empty, or starting with `/`). Returns undefined when valid, else the
 * reason. The first problem found from the left wins, as in go-spiffe.
 */
export function scanPath(s: string, start: number, end: number): ScanResult {
  if (start === end) return undefined;
  if (s.charCodeAt(start) !== SLASH) return MSG_LEADING_SLASH;
  let segStart = start;
  for (let i = start + 1; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c === SLASH) {
      const bad = checkSegment(s, segStart, i);
      if (bad !== undefined) return bad === MSG_TRAILING_SLASH ? MSG_EMPTY_SEGMENT : bad;
      segStart = i;
      continue;
    }
    if (c >= 128 || PATH_CHARS[c] === 0) return MSG_PATH_CHARS;
  }
  return checkSegment(s, segStart, end);
}

/** Checks a completed segment `s[segStart, segEnd)` including its leading slash. */
function checkSegment(s: string, segStart: number, segEnd: number): ScanResult {
  const len = segEnd - segStart;
  if (len === 1) return MSG_TRAILING_SLASH; // "/" alone: trailing slash at the end, empty segment inside
  if (len === 2 && s.charCodeAt(segStart + 1) === DOT) return MSG_DOT_SEGMENT;
  if (len === 3 && s.charCodeAt(segStart + 1) === DOT && s.charCodeAt(segStart + 2) === DOT) {
    return MSG_DOT_SEGMENT;
  }
  return undefined;
}

/**
 * Scans a whole SPIFFE ID. Returns the index where the trust domain ends (the path starts) when valid,
 * else the reason as a string.
 */
export function scanId(s: string): number | string {
  // Fast path for valid IDs: one compiled regex is cheaper in V8 than a charCodeAt loop. It accepts a subset of
  // what the scanner below accepts (checked by a property test); anything it refuses gets the exact diagnosis.
  if (VALID_ID_RE.test(s)) {
    const slash = s.indexOf('/', SCHEME_PREFIX_LENGTH);
    return slash < 0 ? s.length : slash;
  }
  if (s.length === 0) return MSG_EMPTY;
  if (!s.startsWith(SCHEME_PREFIX)) return MSG_SCHEME;
  const n = s.length;
  let i = SCHEME_PREFIX_LENGTH;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c === SLASH) break;
    if (c >= 128 || TD_CHARS[c] === 0) return MSG_TD_CHARS;
  }
  if (i === SCHEME_PREFIX_LENGTH) return MSG_TD_MISSING;
  const bad = scanPath(s, i, n);
  return bad === undefined ? i : bad;
}
