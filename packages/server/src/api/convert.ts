/**
 * Conversions between the API's protobuf messages and the datastore's records, with the validation SPIRE's
 * server API performs: every problem is an `InvalidArgument` naming the field, and nothing half-checked reaches
 * the datastore.
 *
 * @module
 */
import { status } from '@grpc/grpc-js';
import {
  type Agent as ApiAgent,
  type Entry as ApiEntry,
  type EntryMask as ApiEntryMask,
  type Selector as ApiSelector,
  GrpcStatusError,
  invalidArgument,
  type SPIFFEID,
  type Status,
} from '@tessera/common/api';
import { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import type { AttestedNode, NewRegistrationEntry, RegistrationEntry, Selector } from '../datastore/types.js';

/** Largest hint, in bytes (SPIRE's limit). */
export const MAX_HINT_BYTES = 1024;
/** Largest SVID TTL accepted in an entry, in seconds (int32). */
export const MAX_TTL_SECONDS = 2 ** 31 - 1;
const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const ENTRY_ID = /^[\x21-\x7e]{1,255}$/;

/** The message of an error, for statuses. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** An OK per-item status. */
export const OK_STATUS: Status = { code: status.OK, message: 'OK' };

/** A per-item status from an error (GrpcStatusError keeps its code; anything else is Internal). */
export function statusOf(err: unknown): Status {
  if (err instanceof GrpcStatusError) return { code: err.code, message: err.details };
  return { code: status.INTERNAL, message: 'internal error' };
}

/** A SPIFFE ID message as a string (`spiffe://td/path`), validated; throws InvalidArgument naming `field`. */
export function parseApiId(field: string, id: SPIFFEID | undefined): SpiffeId {
  if (id === undefined) throw invalidArgument(field, 'request must specify a SPIFFE ID');
  try {
    const td = TrustDomain.fromString(id.trustDomain);
    return SpiffeId.fromPath(td, id.path);
  } catch (err) {
    throw invalidArgument(field, errorMessage(err));
  }
}

/** A SPIFFE ID of `td`; throws InvalidArgument naming `field` otherwise. */
export function parseLocalId(field: string, id: SPIFFEID | undefined, td: TrustDomain): SpiffeId {
  const parsed = parseApiId(field, id);
  if (!parsed.memberOf(td)) {
    throw invalidArgument(field, `"${parsed.toString()}" is not a member of trust domain "${td.name}"`);
  }
  return parsed;
}

/**
 * Refuses a workload SPIFFE ID that is empty or in the reserved `/spire` namespace (the server's and agents' own
 * IDs): no entry, alias or minted SVID may carry them, so no workload can impersonate the server or an agent.
 */
export function checkWorkloadId(field: string, id: SpiffeId): void {
  if (id.path === '' || id.path === '/spire' || id.path.startsWith('/spire/')) {
    throw invalidArgument(field, `"${id.toString()}" is in the reserved "/spire" namespace`);
  }
}

/** A SPIFFE ID string as a message. */
export function idToApi(id: string): SPIFFEID {
  const s = SpiffeId.fromString(id);
  return { trustDomain: s.trustDomain.name, path: s.path };
}

/** Validates selectors (`type` without ':', non-empty value, no duplicates). */
export function parseSelectors(
  field: string,
  selectors: readonly ApiSelector[],
  nonEmpty: boolean,
): Selector[] {
  if (nonEmpty && selectors.length === 0) throw invalidArgument(field, 'at least one selector is required');
  const seen = new Set<string>();
  const out: Selector[] = [];
  for (const s of selectors) {
    if (s.type === '') throw invalidArgument(field, 'selector type is empty');
    if (s.type.includes(':')) throw invalidArgument(field, `selector type "${s.type}" contains ":"`);
    if (s.value === '') throw invalidArgument(field, `selector "${s.type}" has an empty value`);
    if (s.type.length > 255 || s.value.length > 4096) throw invalidArgument(field, 'selector is too long');
    const k = `${s.type}:${s.value}`;
    if (seen.has(k)) throw invalidArgument(field, `duplicate selector "${k}"`);
    seen.add(k);
    out.push({ type: s.type, value: s.value });
  }
  return out;
}

/** Parses `type:value` selector text (CLI and config form). */
export function parseSelectorText(field: string, text: string): Selector {
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1)
    throw invalidArgument(field, `selector "${text}" must be "type:value"`);
  return { type: text.slice(0, i), value: text.slice(i + 1) };
}

function checkDnsName(field: string, name: string): void {
  const labels = (name.startsWith('*.') ? name.slice(2) : name).split('.');
  if (name.length === 0 || name.length > 253 || !labels.every((l) => DNS_LABEL.test(l))) {
    throw invalidArgument(field, `"${name}" is not a valid DNS name`);
  }
}

/** A trust domain name from `example.org` or `spiffe://example.org`. */
export function parseTrustDomainName(field: string, value: string): string {
  try {
    return TrustDomain.fromString(value).name;
  } catch (err) {
    throw invalidArgument(field, errorMessage(err));
  }
}

function checkTtl(field: string, ttl: number): number {
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL_SECONDS) {
    throw invalidArgument(field, `must be from 0 to ${MAX_TTL_SECONDS} seconds, got ${ttl}`);
  }
  return ttl;
}

/**
 * Validates an entry message into a record to create, as SPIRE: IDs of the trust domain (the SPIFFE ID outside
 * the reserved `/spire/` namespace), selectors, TTLs, DNS names, federated trust domains, hint size.
 */
export function parseEntry(e: ApiEntry, td: TrustDomain): NewRegistrationEntry {
  const parentId = parseLocalId('parent_id', e.parentId, td);
  const spiffeId = parseLocalId('spiffe_id', e.spiffeId, td);
  checkWorkloadId('spiffe_id', spiffeId);
  if (e.id !== '' && !ENTRY_ID.test(e.id)) {
    throw invalidArgument('id', 'must be 1 to 255 printable ASCII characters without spaces');
  }
  const selectors = parseSelectors('selectors', e.selectors, true);
  for (const d of e.dnsNames) checkDnsName('dns_names', d);
  const federatesWith = e.federatesWith.map((f) => {
    const name = parseTrustDomainName('federates_with', f);
    if (name === td.name)
      throw invalidArgument('federates_with', 'cannot federate with the own trust domain');
    return name;
  });
  if (Buffer.byteLength(e.hint) > MAX_HINT_BYTES) {
    throw invalidArgument('hint', `must be at most ${MAX_HINT_BYTES} bytes`);
  }
  if (e.expiresAt < 0n) throw invalidArgument('expires_at', 'must not be negative');
  if (e.expiresAt > 253402300799n) throw invalidArgument('expires_at', 'is too far in the future');
  const entry: NewRegistrationEntry = {
    spiffeId: spiffeId.toString(),
    parentId: parentId.toString(),
    selectors,
    x509SvidTtl: checkTtl('x509_svid_ttl', e.x509SvidTtl),
    jwtSvidTtl: checkTtl('jwt_svid_ttl', e.jwtSvidTtl),
    dnsNames: [...new Set(e.dnsNames)],
    federatesWith: [...new Set(federatesWith)],
    admin: e.admin,
    downstream: e.downstream,
    storeSvid: e.storeSvid,
    hint: e.hint,
    expiresAt: e.expiresAt === 0n ? undefined : new Date(Number(e.expiresAt) * 1000),
  };
  return e.id === '' ? entry : { ...entry, id: e.id };
}

/** Every field of an entry mask set. */
export const FULL_ENTRY_MASK: ApiEntryMask = {
  spiffeId: true,
  parentId: true,
  selectors: true,
  x509SvidTtl: true,
  federatesWith: true,
  admin: true,
  downstream: true,
  expiresAt: true,
  dnsNames: true,
  revisionNumber: true,
  storeSvid: true,
  jwtSvidTtl: true,
  hint: true,
  createdAt: true,
};

/** A record as an entry message, with only the fields of `mask` (the ID always). */
export function entryToApi(e: RegistrationEntry, mask: ApiEntryMask | undefined = FULL_ENTRY_MASK): ApiEntry {
  const m = mask ?? FULL_ENTRY_MASK;
  return {
    id: e.id,
    spiffeId: m.spiffeId ? idToApi(e.spiffeId) : undefined,
    parentId: m.parentId ? idToApi(e.parentId) : undefined,
    selectors: m.selectors ? e.selectors.map((s) => ({ type: s.type, value: s.value })) : [],
    x509SvidTtl: m.x509SvidTtl ? e.x509SvidTtl : 0,
    federatesWith: m.federatesWith ? [...e.federatesWith] : [],
    admin: m.admin ? e.admin : false,
    downstream: m.downstream ? e.downstream : false,
    expiresAt:
      m.expiresAt && e.expiresAt !== undefined ? BigInt(Math.floor(e.expiresAt.getTime() / 1000)) : 0n,
    dnsNames: m.dnsNames ? [...e.dnsNames] : [],
    revisionNumber: m.revisionNumber ? BigInt(e.revision) : 0n,
    storeSvid: m.storeSvid ? e.storeSvid : false,
    jwtSvidTtl: m.jwtSvidTtl ? e.jwtSvidTtl : 0,
    hint: m.hint ? e.hint : '',
    createdAt: m.createdAt ? BigInt(Math.floor(e.createdAt.getTime() / 1000)) : 0n,
  };
}

/** A node record as an agent message. */
export function agentToApi(n: AttestedNode): ApiAgent {
  return {
    id: idToApi(n.spiffeId),
    attestationType: n.attestationType,
    x509svidSerialNumber: n.certSerial,
    x509svidExpiresAt: BigInt(Math.floor(n.certNotAfter.getTime() / 1000)),
    selectors: n.selectors.map((s) => ({ type: s.type, value: s.value })),
    banned: n.banned,
    canReattest: n.canReattest,
  };
}

/**
 * Maps a datastore or CA failure to a gRPC status: not found → NotFound, conflict → AlreadyExists, invalid →
 * InvalidArgument, anything else → Internal (detail kept as the cause, never sent).
 */
export function mapError(err: unknown, what: string): GrpcStatusError {
  if (err instanceof GrpcStatusError) return err;
  if (err instanceof SpiffeError) {
    switch (err.code) {
      case 'ERR_DATASTORE_NOT_FOUND':
        return new GrpcStatusError(status.NOT_FOUND, `${what} not found`, { cause: err });
      case 'ERR_DATASTORE_CONFLICT':
        return new GrpcStatusError(status.ALREADY_EXISTS, `${what} already exists`, { cause: err });
      case 'ERR_DATASTORE_INVALID':
      case 'ERR_CA_INVALID':
        return new GrpcStatusError(status.INVALID_ARGUMENT, err.message, { cause: err });
      case 'ERR_CA_PRECONDITION':
        return new GrpcStatusError(status.FAILED_PRECONDITION, err.message, { cause: err });
      default:
        break;
    }
  }
  return new GrpcStatusError(status.INTERNAL, `failed to process ${what}`, { cause: err });
}

/** Whether a stored serial (decimal, as the CA reports it) equals a certificate's serial (hex, as node:crypto). */
export function serialMatches(storedDecimal: string | undefined, certHex: string): boolean {
  if (storedDecimal === undefined || !/^[0-9]+$/.test(storedDecimal) || !/^[0-9A-Fa-f]+$/.test(certHex))
    return false;
  return BigInt(storedDecimal) === BigInt(`0x${certHex}`);
}
