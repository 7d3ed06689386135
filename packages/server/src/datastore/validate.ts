/**
 * Checks a record before it is stored, so that every engine stores the same thing (lengths fit MariaDB's
 * columns, IDs are ASCII) and nothing half-formed reaches the database.
 *
 * @module
 */
import { DatastoreError } from '@tessera/spiffe/errors';
import type {
  AttestedNode,
  Bundle,
  CaJournal,
  FederationRelationship,
  NewRegistrationEntry,
  Pagination,
  Selector,
} from './types.js';

/** Largest page a list call returns. */
export const MAX_PAGE_SIZE = 10_000;

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
const MAX_INT32 = 2 ** 31 - 1;

/** Quotes a value for an error message, truncated. */
export function quote(v: unknown): string {
  const s = typeof v === 'string' ? v : String(v);
  return JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}…` : s);
}

/** Throws `ERR_DATASTORE_INVALID` with `datastore: <msg>`. */
export function invalid(msg: string): never {
  throw new DatastoreError('ERR_DATASTORE_INVALID', `datastore: ${msg}`);
}

/** An ASCII key (SPIFFE ID, entry ID, trust domain): printable, no spaces, at most `max` bytes. */
export function checkKey(field: string, v: unknown, max: number): asserts v is string {
  if (typeof v !== 'string' || v === '') invalid(`${field} must be a non-empty string`);
  if (v.length > max) invalid(`${field} is longer than ${max} bytes`);
  if (!PRINTABLE_ASCII.test(v)) invalid(`${field} must be printable ASCII without spaces, got ${quote(v)}`);
}

function checkText(field: string, v: unknown, max: number, allowEmpty: boolean): asserts v is string {
  if (typeof v !== 'string') invalid(`${field} must be a string`);
  if (!allowEmpty && v === '') invalid(`${field} must not be empty`);
  if (v.length > max) invalid(`${field} is longer than ${max} characters`);
}

function checkDate(field: string, v: unknown): asserts v is Date {
  if (!(v instanceof Date) || Number.isNaN(v.getTime())) invalid(`${field} must be a valid Date`);
}

function checkBool(field: string, v: unknown): asserts v is boolean {
  if (typeof v !== 'boolean') invalid(`${field} must be a boolean`);
}

function checkTtl(field: string, v: unknown): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_INT32) {
    invalid(`${field} must be an integer from 0 to ${MAX_INT32}, got ${quote(v)}`);
  }
}

/** Selectors: each `type` 1..255 characters without ':', `value` 1..4096 characters; no duplicates. */
export function checkSelectors(
  field: string,
  v: unknown,
  nonEmpty: boolean,
): asserts v is readonly Selector[] {
  if (!Array.isArray(v)) invalid(`${field} must be an array`);
  if (nonEmpty && v.length === 0) invalid(`${field} must not be empty`);
  const seen = new Set<string>();
  for (const s of v as unknown[]) {
    if (typeof s !== 'object' || s === null) invalid(`${field} must hold {type, value} objects`);
    const { type, value } = s as { type: unknown; value: unknown };
    checkText(`${field}.type`, type, 255, false);
    if (type.includes(':')) invalid(`${field}.type must not contain ":", got ${quote(type)}`);
    checkText(`${field}.value`, value, 4096, false);
    const k = `${type}:${value}`;
    if (seen.has(k)) invalid(`${field} contains ${quote(k)} twice`);
    seen.add(k);
  }
}

function checkTrustDomains(field: string, v: unknown): asserts v is readonly string[] {
  if (!Array.isArray(v)) invalid(`${field} must be an array`);
  const seen = new Set<string>();
  for (const td of v as unknown[]) {
    checkKey(field, td, 255);
    if (seen.has(td)) invalid(`${field} contains ${quote(td)} twice`);
    seen.add(td);
  }
}

/** Checks a registration entry (new or merged for an update). */
export function checkEntry(e: NewRegistrationEntry): void {
  if (typeof e !== 'object' || e === null) invalid('entry must be an object');
  if (e.id !== undefined) checkKey('entry id', e.id, 255);
  checkKey('entry spiffeId', e.spiffeId, 2048);
  checkKey('entry parentId', e.parentId, 2048);
  checkSelectors('entry selectors', e.selectors, true);
  checkTtl('entry x509SvidTtl', e.x509SvidTtl);
  checkTtl('entry jwtSvidTtl', e.jwtSvidTtl);
  if (!Array.isArray(e.dnsNames)) invalid('entry dnsNames must be an array');
  for (const d of e.dnsNames) checkKey('entry dnsNames', d, 255);
  checkTrustDomains('entry federatesWith', e.federatesWith);
  checkBool('entry admin', e.admin);
  checkBool('entry downstream', e.downstream);
  checkBool('entry storeSvid', e.storeSvid);
  if (typeof e.hint !== 'string') invalid('entry hint must be a string');
  if (Buffer.byteLength(e.hint, 'utf8') > 1024) invalid('entry hint is longer than 1024 bytes');
  if (e.expiresAt !== undefined) checkDate('entry expiresAt', e.expiresAt);
}

/** Checks an attested node. */
export function checkNode(n: Omit<AttestedNode, 'selectors'>): void {
  if (typeof n !== 'object' || n === null) invalid('node must be an object');
  checkKey('node spiffeId', n.spiffeId, 2048);
  checkText('node attestationType', n.attestationType, 255, false);
  checkText('node certSerial', n.certSerial, 255, true);
  checkDate('node certNotAfter', n.certNotAfter);
  if (n.newCertSerial !== undefined) checkText('node newCertSerial', n.newCertSerial, 255, true);
  if (n.newCertNotAfter !== undefined) checkDate('node newCertNotAfter', n.newCertNotAfter);
  checkBool('node banned', n.banned);
  checkBool('node canReattest', n.canReattest);
}

/** Checks a join token's secret (never quoted in messages) and expiry. */
export function checkJoinToken(token: unknown, expiresAt?: unknown): asserts token is string {
  if (typeof token !== 'string' || token === '') invalid('join token must be a non-empty string');
  if (token.length > 1024) invalid('join token is longer than 1024 characters');
  if (expiresAt !== undefined) checkDate('join token expiresAt', expiresAt);
}

/** Checks a bundle record. */
export function checkBundle(b: Bundle): void {
  if (typeof b !== 'object' || b === null) invalid('bundle must be an object');
  checkKey('bundle trustDomain', b.trustDomain, 255);
  if (!(b.data instanceof Uint8Array) || b.data.length === 0) invalid('bundle data must be non-empty bytes');
  if (!Number.isSafeInteger(b.sequence) || b.sequence < 0) {
    invalid(`bundle sequence must be a non-negative integer, got ${quote(b.sequence)}`);
  }
}

/** Checks a federation relationship. */
export function checkFederationRelationship(r: FederationRelationship): void {
  if (typeof r !== 'object' || r === null) invalid('federation relationship must be an object');
  checkKey('federation relationship trustDomain', r.trustDomain, 255);
  checkText('federation relationship bundleEndpointUrl', r.bundleEndpointUrl, 4096, false);
  let url: URL;
  try {
    url = new URL(r.bundleEndpointUrl);
  } catch {
    invalid(`federation relationship bundleEndpointUrl is not a URL: ${quote(r.bundleEndpointUrl)}`);
  }
  if (url.protocol !== 'https:') {
    invalid(`federation relationship bundleEndpointUrl must be https, got ${quote(r.bundleEndpointUrl)}`);
  }
  if (r.profile === 'https_spiffe') {
    if (r.endpointSpiffeId === undefined) {
      invalid('federation relationship endpointSpiffeId is required for profile "https_spiffe"');
    }
    checkKey('federation relationship endpointSpiffeId', r.endpointSpiffeId, 2048);
  } else if (r.profile === 'https_web') {
    if (r.endpointSpiffeId !== undefined) {
      invalid('federation relationship endpointSpiffeId must be absent for profile "https_web"');
    }
  } else {
    invalid(`federation relationship profile must be "https_web" or "https_spiffe", got ${quote(r.profile)}`);
  }
}

/** Checks a CA journal (without its ID). */
export function checkCaJournal(j: Omit<CaJournal, 'id'>): void {
  if (typeof j !== 'object' || j === null) invalid('ca journal must be an object');
  checkText('ca journal activeX509AuthorityId', j.activeX509AuthorityId, 255, true);
  if (!PRINTABLE_ASCII.test(j.activeX509AuthorityId) && j.activeX509AuthorityId !== '') {
    invalid('ca journal activeX509AuthorityId must be printable ASCII');
  }
  checkText('ca journal activeJwtAuthorityId', j.activeJwtAuthorityId, 255, true);
  if (!PRINTABLE_ASCII.test(j.activeJwtAuthorityId) && j.activeJwtAuthorityId !== '') {
    invalid('ca journal activeJwtAuthorityId must be printable ASCII');
  }
  if (typeof j.entries !== 'string') invalid('ca journal entries must be a JSON string');
  checkDate('ca journal expiresAt', j.expiresAt);
}

/** Checks a page request; returns the key to start after and the page size. */
export function checkPagination(p: Pagination | undefined): { after: number; size: number } | undefined {
  if (p === undefined) return undefined;
  if (!Number.isInteger(p.pageSize) || p.pageSize < 1 || p.pageSize > MAX_PAGE_SIZE) {
    throw new RangeError(
      `datastore: pagination.pageSize must be an integer from 1 to ${MAX_PAGE_SIZE}, got ${quote(p.pageSize)}`,
    );
  }
  if (p.token === undefined || p.token === '') return { after: 0, size: p.pageSize };
  return { after: decodePageToken(p.token), size: p.pageSize };
}

/** Encodes the key of the last row of a page as an opaque token. */
export function encodePageToken(key: number): string {
  return Buffer.from(`p${key}`, 'utf8').toString('base64url');
}

function decodePageToken(token: unknown): number {
  if (typeof token === 'string' && /^[A-Za-z0-9_-]{1,24}$/.test(token)) {
    const m = /^p([1-9][0-9]{0,15})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
    const n = m?.[1] === undefined ? Number.NaN : Number(m[1]);
    if (Number.isSafeInteger(n) && encodePageToken(n) === token) return n;
  }
  return invalid(`pagination.token is not a valid page token: ${quote(token)}`);
}
