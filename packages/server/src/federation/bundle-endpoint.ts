/**
 * The server's SPIFFE bundle endpoint (`federation.bundle_endpoint`), profile `https_spiffe`: an HTTPS listener
 * presenting the server's own X509-SVID (`spiffe://<td>/spire/server`, renewed at half of its life and whenever
 * the CA's bundle changes) and serving the trust domain's current bundle on `GET /` (SPIRE: only `GET`, else
 * 405; only `/`, else 404; no client certificate).
 *
 * @module
 */

import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { SpiffeBundle } from '@tessera/spiffe/bundle';
import { createBundleHandler } from '@tessera/spiffe/federation';
import type { TrustDomain } from '@tessera/spiffe/spiffeid';
import { createSpiffeHttpsServer, type TlsSvid, tlsServerOptions } from '@tessera/spiffe/tls';
import type { CaManager } from '../ca/ca-manager.js';

/** The logging the federation components do. */
export interface FederationLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** Configuration of {@link startBundleEndpoint}. */
export interface BundleEndpointConfig {
  readonly trustDomain: TrustDomain;
  readonly ca: Pick<CaManager, 'bundle' | 'signServerSvid' | 'onBundleChange'>;
  /** Listen address and port (0 picks a free port). */
  readonly address: string;
  readonly port: number;
  /** `spiffe_refresh_hint` published in the bundle; default: the CA bundle's own hint. */
  readonly refreshHintSeconds?: number;
  /** Lifetime of the endpoint's SVID in seconds; it is renewed at half of its life. */
  readonly svidTtlSeconds: number;
  readonly now?: () => Date;
  readonly logger: FederationLogger;
}

/** A running bundle endpoint. */
export interface BundleEndpoint {
  /** The bound port. */
  readonly port: number;
  /** The SVID currently presented (leaf first). */
  svid(): readonly X509Certificate[];
  close(): Promise<void>;
}

/**
 * Starts the bundle endpoint.
 *
 * @throws {Error} when the listener cannot bind
 * @example
 * ```ts
 * const ep = await startBundleEndpoint({ trustDomain, ca, address: '0.0.0.0', port: 8443, svidTtlSeconds: 3600, logger });
 * ```
 */
export async function startBundleEndpoint(config: BundleEndpointConfig): Promise<BundleEndpoint> {
  const { ca, logger, trustDomain } = config;
  const now = config.now ?? (() => new Date());
  let current: TlsSvid;
  let renewAtMs = 0;
  const issue = (): void => {
    const { privateKey, publicKey }: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync(
      'ec',
      {
        namedCurve: 'P-256',
      },
    );
    const signed = ca.signServerSvid({ publicKey, ttlSeconds: config.svidTtlSeconds });
    current = { certificates: signed.chain.map((d) => new X509Certificate(d)), privateKey };
    const issuedMs = now().getTime();
    renewAtMs = issuedMs + (signed.notAfter.getTime() - issuedMs) / 2;
  };
  const renew = (why: string): void => {
    try {
      issue();
      logger.info({ reason: why }, 'Bundle endpoint SVID renewed');
    } catch (err) {
      logger.error({ err }, 'Bundle endpoint SVID renewal failed');
    }
  };
  issue();
  const svidSource = {
    getX509Svid: (): TlsSvid => {
      // Checked per connection: the SPIFFE server reads the SVID for every new connection.
      if (now().getTime() >= renewAtMs) renew('half of its lifetime passed');
      return current;
    },
  };
  const offBundle = ca.onBundleChange(() => renew('the CA bundle changed'));

  const served = (): SpiffeBundle => {
    const b = ca.bundle();
    return config.refreshHintSeconds === undefined
      ? b
      : b.withMetadata({ sequenceNumber: b.sequenceNumber, refreshHint: config.refreshHintSeconds });
  };
  const handler = createBundleHandler(trustDomain, { getBundleForTrustDomain: served });
  const server: Server = createSpiffeHttpsServer(tlsServerOptions(svidSource), {}, (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found');
      return;
    }
    handler(req, res);
  });
  server.on('tlsClientError', (err: Error) =>
    logger.warn({ err: err.message }, 'Bundle endpoint TLS handshake failed'),
  );
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  try {
    await once(server.listen(config.port, config.address), 'listening');
  } catch (err) {
    offBundle();
    throw err;
  }
  const port = (server.address() as { port: number }).port;
  logger.info(
    { address: `${config.address}:${port}`, trust_domain: trustDomain.name },
    'Bundle endpoint started',
  );
  return {
    port,
    svid: () => current.certificates,
    async close() {
      offBundle();
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
