import type { IncomingMessage, ServerResponse } from 'node:http';
import { SpiffeBundle } from '../bundle/spiffe-bundle.js';
import { TrustDomain } from '../spiffeid/index.js';

/** Supplies the SPIFFE bundle a bundle endpoint serves (go-spiffe `spiffebundle.Source`). */
export interface SpiffeBundleSource {
  /** The current bundle of `td`; throws when there is none. */
  getBundleForTrustDomain(td: TrustDomain): SpiffeBundle;
}

/** A `node:http` / `node:https` request listener. */
export type BundleHandler = (req: IncomingMessage, res: ServerResponse) => void;

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...(status === 405 ? { allow: 'GET' } : {}),
  });
  res.end(body);
}

/**
 * A request listener serving the current bundle of `td` from `source` as a SPIFFE bundle endpoint
 * (go-spiffe `federation.NewHandler`): `GET` only (`405 method is not allowed` otherwise), the bundle
 * document with `Content-Type: application/json`, and `500 unable to serve bundle for "<td>"` when the source
 * fails or returns a bundle of another trust domain. It does not look at the path: mount it where you like.
 * A `SpiffeBundle` can be passed as the source of its own trust domain.
 *
 * @throws {TypeError} when `td` is not a TrustDomain or `source` is not a bundle source
 * @example
 * ```ts
 * const server = createSpiffeHttpsServer(tlsServerOptions(svidSource), {}, createBundleHandler(td, {
 *   getBundleForTrustDomain: () => currentBundle,
 * }));
 * server.listen(8443);
 * ```
 */
export function createBundleHandler(
  td: TrustDomain,
  source: SpiffeBundleSource | SpiffeBundle,
): BundleHandler {
  if (!(td instanceof TrustDomain)) throw new TypeError('federation: expected a TrustDomain');
  const get: (t: TrustDomain) => SpiffeBundle =
    source instanceof SpiffeBundle
      ? () => source
      : typeof source === 'object' &&
          source !== null &&
          typeof (source as { getBundleForTrustDomain?: unknown }).getBundleForTrustDomain === 'function'
        ? (t) => source.getBundleForTrustDomain(t)
        : (() => {
            throw new TypeError('federation: the source must have getBundleForTrustDomain()');
          })();
  return (req, res) => {
    if (req.method !== 'GET') {
      send(res, 405, 'text/plain; charset=utf-8', 'method is not allowed');
      return;
    }
    let body: string;
    try {
      const bundle = get(td);
      if (!(bundle instanceof SpiffeBundle) || !bundle.trustDomain.equals(td)) {
        throw new Error('wrong bundle');
      }
      body = bundle.marshal();
    } catch {
      send(res, 500, 'text/plain; charset=utf-8', `unable to serve bundle for "${td.name}"`);
      return;
    }
    send(res, 200, 'application/json', body);
  };
}
