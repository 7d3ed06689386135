/**
 * Pretty (human) output of API objects, laid out like SPIRE's CLI (`Entry ID         : …`), and the rendering
 * of gRPC failures.
 *
 * @module
 */
import { status } from '@grpc/grpc-js';
import type { Agent, Entry, FederationRelationship, Status } from '@tessera/common/api';
import { idText } from './values.js';

function row(label: string, value: string): string {
  return `${label.padEnd(17)}: ${value}`;
}

/**
 * Formats a Unix time in seconds as an ISO 8601 UTC string (`0` → `never`).
 *
 * @example
 * ```ts
 * unixTime(0n); // 'never'
 * ```
 */
export function unixTime(seconds: bigint | number): string {
  const n = Number(seconds);
  if (n === 0) return 'never';
  const d = new Date(n * 1000);
  return Number.isNaN(d.getTime()) ? String(seconds) : d.toISOString().replace('.000Z', 'Z');
}

/**
 * Formats a registration entry as SPIRE does, one `Label : value` line per field.
 *
 * @example
 * ```ts
 * ctx.print(formatEntry(entry));
 * ```
 */
export function formatEntry(e: Entry): string {
  const lines = [
    row('Entry ID', e.id === '' ? '(none)' : e.id),
    row('SPIFFE ID', idText(e.spiffeId)),
    row('Parent ID', idText(e.parentId)),
    row('Revision', e.revisionNumber.toString()),
  ];
  if (e.downstream) lines.push(row('Downstream', 'true'));
  lines.push(row('X509-SVID TTL', e.x509SvidTtl === 0 ? 'default' : String(e.x509SvidTtl)));
  lines.push(row('JWT-SVID TTL', e.jwtSvidTtl === 0 ? 'default' : String(e.jwtSvidTtl)));
  if (e.expiresAt !== 0n) lines.push(row('Expiration time', unixTime(e.expiresAt)));
  for (const s of e.selectors) lines.push(row('Selector', `${s.type}:${s.value}`));
  for (const f of e.federatesWith) lines.push(row('FederatesWith', f));
  for (const d of e.dnsNames) lines.push(row('DNS name', d));
  if (e.admin) lines.push(row('Admin', 'true'));
  if (e.storeSvid) lines.push(row('StoreSvid', 'true'));
  if (e.hint !== '') lines.push(row('Hint', e.hint));
  if (e.createdAt !== 0n) lines.push(row('Created at', unixTime(e.createdAt)));
  return lines.join('\n');
}

/**
 * Formats an attested agent as SPIRE does.
 *
 * @example
 * ```ts
 * ctx.print(formatAgent(agent));
 * ```
 */
export function formatAgent(a: Agent): string {
  const lines = [
    row('SPIFFE ID', idText(a.id)),
    row('Attestation type', a.attestationType),
    row('Expiration time', unixTime(a.x509svidExpiresAt)),
    row('Serial number', a.x509svidSerialNumber),
    row('Can re-attest', String(a.canReattest)),
    row('Banned', String(a.banned)),
  ];
  for (const s of a.selectors) lines.push(row('Selector', `${s.type}:${s.value}`));
  return lines.join('\n');
}

/**
 * Formats a federation relationship as SPIRE does.
 *
 * @example
 * ```ts
 * ctx.print(formatFederation(rel));
 * ```
 */
export function formatFederation(r: FederationRelationship): string {
  const lines = [row('Trust domain', r.trustDomain), row('Bundle endpoint URL', r.bundleEndpointUrl)];
  if (r.httpsSpiffe !== undefined) {
    lines.push(row('Bundle endpoint profile', 'https_spiffe'));
    lines.push(row('Endpoint SPIFFE ID', r.httpsSpiffe.endpointSpiffeId));
  } else {
    lines.push(row('Bundle endpoint profile', 'https_web'));
  }
  return lines.join('\n');
}

/**
 * The canonical name of a gRPC status code (`InvalidArgument`), as SPIRE prints it.
 *
 * @example
 * ```ts
 * codeName(3); // 'InvalidArgument'
 * ```
 */
export function codeName(code: number): string {
  const name = status[code];
  if (typeof name !== 'string') return `Code(${code})`;
  return name
    .toLowerCase()
    .split('_')
    .map((w) => (w === 'ok' ? 'OK' : w.charAt(0).toUpperCase() + w.slice(1)))
    .join('');
}

/**
 * Formats a per-item status of a batch response: `(code: InvalidArgument, msg: "…")`.
 *
 * @example
 * ```ts
 * statusText({ code: 3, message: 'invalid hint' });
 * ```
 */
export function statusText(s: Status | undefined): string {
  if (s === undefined) return '(no status)';
  return `(code: ${codeName(s.code)}, msg: ${JSON.stringify(s.message)})`;
}

/** The fields of a grpc-js ServiceError the CLI reads. */
interface GrpcFailure {
  readonly code: number;
  readonly details: string;
}

/**
 * Tells whether an error came from a gRPC call (a grpc-js ServiceError).
 *
 * @example
 * ```ts
 * if (isGrpcFailure(err)) io.stderr(grpcFailureText(err, socket));
 * ```
 */
export function isGrpcFailure(err: unknown): err is Error & GrpcFailure {
  return (
    err instanceof Error &&
    typeof (err as Partial<GrpcFailure>).code === 'number' &&
    typeof (err as Partial<GrpcFailure>).details === 'string'
  );
}

/**
 * Explains a failed call: the status code name and the server's message, or, when the server cannot be
 * reached, which socket was tried.
 *
 * @example
 * ```ts
 * grpcFailureText(err, '/tmp/tessera-server/private/api.sock');
 * ```
 */
export function grpcFailureText(err: GrpcFailure, socketPath: string): string {
  if (err.code === status.UNAVAILABLE) {
    return `cannot reach the server at ${JSON.stringify(socketPath)} (is it running? set --socket): ${err.details}`;
  }
  return `${err.details} (code: ${codeName(err.code)})`;
}
