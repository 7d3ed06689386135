/**
 * The serverless listener: one TLS port (its own certificate files, or the server's own SVID renewed at half
 * life) that serves gRPC to clients negotiating `h2` and the HTTP+JSON API to `http/1.1` clients.
 *
 * @module
 */

import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import { RemoteAttestationService } from '@tessera/common/api/gen/tessera/api/serverless/v1/serverless';
import { ConfigError } from '@tessera/spiffe/errors';
import type { CaManager } from '../ca/ca-manager.js';
import { createRemoteAttestationService } from './grpc.js';
import { createHttpHandler } from './http.js';
import { ClientRateLimiter } from './rate-limit.js';
import type { ServerlessService } from './service.js';
import type { ServerlessClock, ServerlessLogger } from './types.js';

/** Where the listener's serving certificate comes from. */
export type ServerlessTls =
  | { readonly certFile: string; readonly keyFile: string }
  | { readonly serverSvid: Pick<CaManager, 'signServerSvid'>; readonly ttlSeconds: number };

/** Configuration of {@link startServerlessEndpoint}. */
export interface ServerlessEndpointConfig {
  readonly service: ServerlessService;
  readonly bindAddress: string;
  /** 0 picks a free port. */
  readonly bindPort: number;
  readonly tls: ServerlessTls;
  /** Requests per second per client address; 0 disables. Default 10. */
  readonly rateLimit?: number;
  /** Largest request body (HTTP) or message (gRPC). Default 64 KiB. */
  readonly maxBodyBytes?: number;
  readonly logger: ServerlessLogger;
  readonly clock?: ServerlessClock;
}

/** A running serverless listener. */
export interface ServerlessEndpoint {
  readonly port: number;
  close(): Promise<void>;
}

/** Default body limit. */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** Default rate limit (requests per second per client address). */
export const DEFAULT_RATE_LIMIT = 10;

async function filePair(certFile: string, keyFile: string): Promise<SecureContextOptions> {
  try {
    const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { cert, key };
  } catch (err) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `serverless: cannot read tls_cert_file/tls_key_file: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/**
 * Starts the serverless listener.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when the certificate files cannot be read
 * @example
 * ```ts
 * const ep = await startServerlessEndpoint({ service, bindAddress: '0.0.0.0', bindPort: 8443,
 *   tls: { certFile: 'tls.crt', keyFile: 'tls.key' }, logger });
 * ```
 */
export async function startServerlessEndpoint(config: ServerlessEndpointConfig): Promise<ServerlessEndpoint> {
  const clock = config.clock ?? { now: () => new Date() };
  const log = config.logger;
  const maxBodyBytes = config.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const limiter = new ClientRateLimiter({ perSecond: config.rateLimit ?? DEFAULT_RATE_LIMIT, clock });

  let renewAt = Number.POSITIVE_INFINITY;
  const tlsConfig = config.tls;
  const issue = async (): Promise<SecureContextOptions> => {
    if ('certFile' in tlsConfig) return filePair(tlsConfig.certFile, tlsConfig.keyFile);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const signed = tlsConfig.serverSvid.signServerSvid({ publicKey, ttlSeconds: tlsConfig.ttlSeconds });
    const issued = clock.now().getTime();
    renewAt = issued + (signed.notAfter.getTime() - issued) / 2;
    return {
      key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      cert: signed.chain.map((d) => new X509Certificate(d).toString()).join(''),
    };
  };

  const grpcServer = new GrpcServer({
    'grpc.max_receive_message_length': maxBodyBytes,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
  });
  grpcServer.addService(
    RemoteAttestationService,
    createRemoteAttestationService({ service: config.service, limiter }),
  );
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
  const httpServer = createHttpServer(
    { requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 16 * 1024 },
    createHttpHandler({ service: config.service, limiter, maxBodyBytes }),
  );
  httpServer.keepAliveTimeout = 5_000;

  const tlsServer = createTlsServer({
    ...(await issue()),
    minVersion: 'TLSv1.2',
    ALPNProtocols: ['h2', 'http/1.1'],
  });
  const sockets = new Set<Socket>();
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (socket.alpnProtocol === 'h2') injector.injectConnection(socket);
    else httpServer.emit('connection', socket);
  });
  tlsServer.on('tlsClientError', (err) => log.warn({ err: err.message }, 'Serverless TLS handshake failed'));
  const timer = setInterval(() => {
    if (clock.now().getTime() < renewAt) return;
    renewAt = Number.POSITIVE_INFINITY;
    issue().then(
      (ctx) => tlsServer.setSecureContext({ ...ctx, minVersion: 'TLSv1.2' }),
      (err: unknown) => log.error({ err }, 'Serverless serving certificate renewal failed'),
    );
  }, 1000);
  timer.unref();

  await once(tlsServer.listen(config.bindPort, config.bindAddress), 'listening');
  const port = (tlsServer.address() as { port: number }).port;
  log.info({ address: `${config.bindAddress}:${port}` }, 'Serverless endpoint started');
  return {
    port,
    async close() {
      clearInterval(timer);
      const closed = new Promise<void>((r) => tlsServer.close(() => r()));
      injector.drain(1000);
      httpServer.closeIdleConnections();
      for (const s of sockets) s.end();
      const t = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, 2000);
      t.unref();
      await closed;
      clearTimeout(t);
      injector.destroy();
    },
  };
}
