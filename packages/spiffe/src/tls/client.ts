import * as https from 'node:https';
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import type { SpiffeId } from '../spiffeid/index.js';
import { checkExtraOptions } from './server.js';
import { MIN_TLS_VERSION, recordPeerId, verifiedIdOfCheck } from './tls-options.js';

/**
 * Builds fresh client TLS options for one connection, e.g.
 * `() => mtlsClientOptions(source, source, authorizeId(serverId))`. Called once per new connection, so a
 * rotated SVID or bundle is used without restarting anything.
 */
export type ClientOptionsFactory = () => tls.ConnectionOptions;

function requireFactory(v: unknown): asserts v is ClientOptionsFactory {
  if (typeof v !== 'function') throw new TypeError('tls: expected a function returning client TLS options');
}

/**
 * Per-connection options from `factory`, with the peer ID recorded for `peerIdFromSocket` once
 * verified. @internal
 */
export function connectionOptions(factory: ClientOptionsFactory): {
  options: tls.ConnectionOptions;
  verified(): SpiffeId | undefined;
  bind(socket: tls.TLSSocket): void;
} {
  const options = { ...factory() };
  if (options.rejectUnauthorized === false) {
    throw new TypeError('tls: client options must not disable certificate verification');
  }
  options.rejectUnauthorized = true;
  if (
    options.minVersion === undefined ||
    options.minVersion === 'TLSv1' ||
    options.minVersion === 'TLSv1.1'
  ) {
    options.minVersion = MIN_TLS_VERSION;
  }
  let verified: SpiffeId | undefined;
  const check = options.checkServerIdentity;
  if (check !== undefined) {
    options.checkServerIdentity = (host, cert) => {
      const err = check(host, cert);
      if (err === undefined) verified = verifiedIdOfCheck(check);
      return err;
    };
  }
  return {
    options,
    verified: () => verified,
    bind(socket) {
      socket.prependOnceListener('secureConnect', () => {
        if (verified !== undefined) recordPeerId(socket, verified);
      });
    },
  };
}

/**
 * `tls.connect` with options from `factory` (computed now) merged over `connect` (host, port, servername,
 * ALPN, …). `peerIdFromSocket(socket)` returns the server's verified ID after `secureConnect`.
 *
 * @throws {TypeError} when `connect` sets certificates, roots or verification policy
 * @example
 * ```ts
 * const socket = connectSpiffeTls(() => tlsClientOptions(bundles, authorizeId(serverId)), { host, port });
 * ```
 */
export function connectSpiffeTls(
  factory: ClientOptionsFactory,
  connect: tls.ConnectionOptions,
  secureConnectListener?: () => void,
): tls.TLSSocket {
  requireFactory(factory);
  checkExtraOptions(
    { ...connect, ...('checkServerIdentity' in connect ? { ca: 1 } : {}) },
    'connectSpiffeTls',
  );
  const c = connectionOptions(factory);
  const socket = tls.connect({ ...connect, ...c.options });
  c.bind(socket);
  if (secureConnectListener !== undefined) socket.once('secureConnect', secureConnectListener);
  return socket;
}

/**
 * An `https.Agent` whose every new connection uses options from `factory` (SPIFFE verification of the
 * server, and the client SVID current at that moment). TLS session resumption is disabled, so every
 * connection runs the full verification.
 *
 * @throws {TypeError} when `agentOptions` sets certificates, roots or verification policy
 * @example
 * ```ts
 * const agent = createSpiffeHttpsAgent(() => mtlsClientOptions(source, source, authorizeId(serverId)));
 * https.get('https://localhost:8443/', { agent }, (res) => res.pipe(process.stdout));
 * ```
 */
export function createSpiffeHttpsAgent(
  factory: ClientOptionsFactory,
  agentOptions: https.AgentOptions = {},
): https.Agent {
  requireFactory(factory);
  checkExtraOptions(agentOptions, 'createSpiffeHttpsAgent');
  return new SpiffeHttpsAgent(factory, { ...agentOptions, maxCachedSessions: 0 });
}

class SpiffeHttpsAgent extends https.Agent {
  readonly #factory: ClientOptionsFactory;

  constructor(factory: ClientOptionsFactory, options: https.AgentOptions) {
    super(options);
    this.#factory = factory;
  }

  override createConnection(options: tls.ConnectionOptions): Duplex {
    const c = connectionOptions(this.#factory);
    const merged: tls.ConnectionOptions = { ...options, ...c.options };
    // Never resume: resumption would skip checkServerIdentity.
    delete merged.session;
    const socket = tls.connect(merged);
    c.bind(socket);
    // The agent takes the returned socket; errors surface on it.
    return socket;
  }
}
