/**
 * Workload API endpoint addresses (SPIFFE Workload Endpoint §4): parsing and validation of the
 * `unix:` and `tcp:` URIs found in `SPIFFE_ENDPOINT_SOCKET`.
 *
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import { WorkloadApiError } from '../errors.js';

/**
 * Name of the environment variable that holds the Workload API endpoint address.
 *
 * @example
 * ```ts
 * process.env[SPIFFE_ENDPOINT_SOCKET] = 'unix:///run/spire/agent.sock';
 * ```
 */
export const SPIFFE_ENDPOINT_SOCKET = 'SPIFFE_ENDPOINT_SOCKET';

/** A validated Unix domain socket endpoint. */
export interface UnixEndpointAddress {
  /** Transport of the endpoint. */
  readonly network: 'unix';
  /** Absolute filesystem path of the socket (percent-decoded). */
  readonly socketPath: string;
  /** The grpc-js target that dials the endpoint: `unix:///abs/path`. */
  readonly target: string;
}

/** A validated TCP endpoint (IP literal and port). */
export interface TcpEndpointAddress {
  /** Transport of the endpoint. */
  readonly network: 'tcp';
  /** IP address literal, without brackets. */
  readonly host: string;
  /** TCP port, 1 to 65535. */
  readonly port: number;
  /** The grpc-js target that dials the endpoint: `ip:port`, IPv6 bracketed (`[::1]:8000`). */
  readonly target: string;
}

/** A validated Workload API endpoint address. */
export type EndpointAddress = UnixEndpointAddress | TcpEndpointAddress;

const SCHEME_RE = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s;

function fail(message: string, addr: string): never {
  throw new WorkloadApiError(
    'ERR_WORKLOADAPI_ADDRESS_INVALID',
    `workloadapi: ${message}: ${JSON.stringify(redactUserinfo(addr))}`,
  );
}

/** Hides user info (it may hold a password) before an address is quoted in a message. */
function redactUserinfo(addr: string): string {
  return addr.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/s, '$1<redacted>@');
}

/**
 * Parses and validates a Workload API endpoint address.
 *
 * Follows the SPIFFE Workload Endpoint standard where it is stricter than go-spiffe
 * (CONFORMANCE §2.8): a `unix` URI has no authority (`unix://host/path` is rejected) and an
 * absolute path (`unix:///run/agent.sock`, or the equivalent `unix:/run/agent.sock`); a `tcp` URI is
 * exactly an IP literal and a port (`tcp://127.0.0.1:8000`, `tcp://[::1]:8000`), with no host name,
 * user info, path, query or fragment. The scheme is matched case-insensitively (RFC 3986). Percent-
 * encoding in a unix path is decoded.
 *
 * @param addr - The endpoint URI.
 * @returns The validated address and the grpc-js target that dials it.
 * @throws {WorkloadApiError} ERR_WORKLOADAPI_ADDRESS_INVALID when the address is not a valid endpoint URI.
 * @throws {TypeError} when `addr` is not a string.
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_Endpoint.md
 * @example
 * ```ts
 * parseEndpointAddress('unix:///run/spire/agent.sock').target; // 'unix:///run/spire/agent.sock'
 * parseEndpointAddress('tcp://[::1]:8000').target;             // '[::1]:8000'
 * ```
 */
export function parseEndpointAddress(addr: string): EndpointAddress {
  if (typeof addr !== 'string') throw new TypeError('workloadapi: endpoint address must be a string');
  const m = SCHEME_RE.exec(addr);
  if (m === null) fail('workload endpoint socket URI must have a "tcp" or "unix" scheme', addr);
  const scheme = m[1]!.toLowerCase();
  const rest = m[2]!;
  if (scheme === 'unix') return parseUnix(addr, rest);
  if (scheme === 'tcp') return parseTcp(addr, rest);
  return fail('workload endpoint socket URI must have a "tcp" or "unix" scheme', addr);
}

/** Splits `rest` (after `scheme:`) into authority/path/query/fragment per RFC 3986 §3. */
function splitHierPart(rest: string): {
  authority: string | undefined;
  path: string;
  query: string | undefined;
  fragment: string | undefined;
} {
  let fragment: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
  }
  let query: string | undefined;
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let authority: string | undefined;
  if (rest.startsWith('//')) {
    const slash = rest.indexOf('/', 2);
    authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
    rest = slash < 0 ? '' : rest.slice(slash);
  }
  return { authority, path: rest, query, fragment };
}

function parseUnix(addr: string, rest: string): UnixEndpointAddress {
  const { authority, path, query, fragment } = splitHierPart(rest);
  if (authority === undefined && path !== '' && !path.startsWith('/')) {
    fail('workload endpoint unix socket URI must not be opaque', addr);
  }
  if (query !== undefined) fail('workload endpoint unix socket URI must not include query values', addr);
  if (fragment !== undefined) fail('workload endpoint unix socket URI must not include a fragment', addr);
  if (authority?.includes('@')) {
    fail('workload endpoint unix socket URI must not include user info', addr);
  }
  if (authority !== undefined && authority !== '') {
    fail('workload endpoint unix socket URI must not include an authority', addr);
  }
  if (path === '' || path === '/') fail('workload endpoint unix socket URI must include a path', addr);
  let socketPath: string;
  try {
    socketPath = decodeURIComponent(path);
  } catch {
    return fail('workload endpoint unix socket URI path has invalid percent-encoding', addr);
  }
  if (socketPath.includes('\0')) fail('workload endpoint unix socket URI path must not contain NUL', addr);
  return { network: 'unix', socketPath, target: `unix://${socketPath}` };
}

function parseTcp(addr: string, rest: string): TcpEndpointAddress {
  const { authority, path, query, fragment } = splitHierPart(rest);
  if (authority === undefined) {
    if (path === '' || path.startsWith('/'))
      fail('workload endpoint tcp socket URI must include a host', addr);
    fail('workload endpoint tcp socket URI must not be opaque', addr);
  }
  if (query !== undefined) fail('workload endpoint tcp socket URI must not include query values', addr);
  if (fragment !== undefined) fail('workload endpoint tcp socket URI must not include a fragment', addr);
  if (authority.includes('@')) fail('workload endpoint tcp socket URI must not include user info', addr);
  if (path !== '') fail('workload endpoint tcp socket URI must not include a path', addr);
  if (authority === '') fail('workload endpoint tcp socket URI must include a host', addr);

  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    if (end < 0) fail('workload endpoint tcp socket URI host component must be an IP:port', addr);
    host = authority.slice(1, end);
    const after = authority.slice(end + 1);
    if (after !== '' && !after.startsWith(':')) {
      fail('workload endpoint tcp socket URI host component must be an IP:port', addr);
    }
    portText = after === '' ? undefined : after.slice(1);
    if (!isIPv6(host) || host.includes('%')) {
      fail('workload endpoint tcp socket URI host component must be an IP:port', addr);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    host = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (!isIPv4(host)) fail('workload endpoint tcp socket URI host component must be an IP:port', addr);
  }
  if (portText === undefined || portText === '') {
    fail('workload endpoint tcp socket URI host component must include a port', addr);
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    fail('workload endpoint tcp socket URI port must be a number from 1 to 65535', addr);
  }
  const port = Number(portText);
  const target = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return { network: 'tcp', host, port, target };
}

/**
 * Resolves the endpoint address to use: the explicit one if given, else `SPIFFE_ENDPOINT_SOCKET`.
 *
 * @param addr - Explicit address; when `undefined` the environment variable is read.
 * @param env - Environment to read (defaults to `process.env`).
 * @returns The validated address.
 * @throws {WorkloadApiError} ERR_WORKLOADAPI_ADDRESS_INVALID when no address is configured
 *   (`workload endpoint socket address is not configured`) or the address is invalid.
 * @example
 * ```ts
 * const { target } = resolveEndpointAddress(undefined); // from SPIFFE_ENDPOINT_SOCKET
 * ```
 */
export function resolveEndpointAddress(
  addr: string | undefined,
  env: Readonly<Record<string, string | undefined>> = process.env,
): EndpointAddress {
  if (addr !== undefined) return parseEndpointAddress(addr);
  const fromEnv = env[SPIFFE_ENDPOINT_SOCKET];
  if (fromEnv === undefined || fromEnv === '') {
    throw new WorkloadApiError(
      'ERR_WORKLOADAPI_ADDRESS_INVALID',
      'workloadapi: workload endpoint socket address is not configured',
    );
  }
  return parseEndpointAddress(fromEnv);
}
