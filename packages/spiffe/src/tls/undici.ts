/**
 * SPIFFE-authenticated TLS for undici (`fetch`, `request`): a dispatcher whose every new connection
 * verifies the server's X509-SVID and presents the current client SVID. Imports `undici` (an optional
 * peer dependency), which the rest of the library never loads.
 *
 * @module
 */
import { type TLSSocket, TLSSocket as TlsSocketClass } from 'node:tls';
import { Agent, buildConnector } from 'undici';
import { type ClientOptionsFactory, connectionOptions } from './client.js';
import { checkExtraOptions } from './server.js';
import { recordPeerId } from './tls-options.js';

/** Options of {@link createSpiffeUndiciAgent}: undici `Agent` options except `connect`. */
export type SpiffeUndiciAgentOptions = Omit<Agent.Options, 'connect'>;

/**
 * An undici `Agent` whose connections use fresh options from `factory` (so rotated SVIDs and bundles
 * are picked up by new connections). TLS session resumption is disabled: every connection runs the
 * full SPIFFE verification. A refused server makes the request fail with the SPIFFE error as `cause`.
 *
 * @throws {TypeError} when `factory` is not a function or `options` has `connect`
 * @example
 * ```ts
 * import { fetch } from 'undici';
 * const dispatcher = createSpiffeUndiciAgent(() => mtlsClientOptions(source, source, authorizeId(serverId)));
 * const res = await fetch('https://localhost:8443/', { dispatcher });
 * ```
 */
export function createSpiffeUndiciAgent(
  factory: ClientOptionsFactory,
  options: SpiffeUndiciAgentOptions = {},
): Agent {
  if (typeof factory !== 'function')
    throw new TypeError('tls: expected a function returning client TLS options');
  if ('connect' in options)
    throw new TypeError('tls: createSpiffeUndiciAgent: option "connect" is set by SPIFFE');
  checkExtraOptions(options, 'createSpiffeUndiciAgent');
  const connect: buildConnector.connector = (opts, callback) => {
    let c: ReturnType<typeof connectionOptions>;
    try {
      c = connectionOptions(factory);
    } catch (err) {
      callback(err instanceof Error ? err : new Error(String(err)), null);
      return;
    }
    const { timeout: _timeout, ...tlsOptions } = c.options;
    const connector = buildConnector({
      ...(tlsOptions as buildConnector.BuildOptions),
      maxCachedSessions: 0,
    });
    connector(opts, (err, socket) => {
      if (err === null && socket instanceof TlsSocketClass) {
        const id = c.verified();
        if (id !== undefined) recordPeerId(socket as TLSSocket, id);
      }
      if (err === null) callback(null, socket);
      else callback(err, null);
    });
  };
  return new Agent({ ...options, connect });
}
