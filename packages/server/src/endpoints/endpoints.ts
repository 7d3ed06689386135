/**
 * The server's listeners: the admin API on a Unix socket (directory 0700, socket 0600; every caller is admin),
 * the agent API over TLS on TCP (the server presents its own SVID, rotated before expiry; client certificates
 * are requested, not required, and verified by the auth interceptor), and the HTTP health/metrics listener.
 * TLS is terminated here and connections are injected into one grpc-js server, each registered so calls map
 * back to their connection.
 *
 * @module
 */

import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { chmod, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { type Server as GrpcServer, ServerCredentials } from '@grpc/grpc-js';
import { preparePrivateSocketDir, removeStaleSocket } from '@tessera/common/socket';
import type { ConnectionRegistry } from '../api/middleware/auth.js';
import type { CaManager } from '../ca/ca-manager.js';

/** The logging the endpoints do. */
export interface EndpointsLogger {
  info(fields: object, msg: string): void;
  warn(fields: object, msg: string): void;
  error(fields: object, msg: string): void;
}

/** Configuration of {@link startEndpoints}. */
export interface EndpointsConfig {
  readonly grpcServer: GrpcServer;
  readonly registry: ConnectionRegistry;
  readonly ca: CaManager;
  /** Admin socket path. */
  readonly socketPath: string;
  /** Agent API address and port (port 0 picks a free port). */
  readonly bindAddress: string;
  readonly bindPort: number;
  /** Lifetime of the server's own SVID in seconds; it is renewed at half of its life. */
  readonly serverSvidTtl: number;
  readonly now?: () => Date;
  readonly logger: EndpointsLogger;
}

/** Running listeners. */
export interface Endpoints {
  /** The agent API's bound port. */
  readonly tcpPort: number;
  /** The current server SVID chain (leaf first). */
  serverSvid(): readonly X509Certificate[];
  /** Renews the server SVID now (also done by a timer and on CA bundle changes). */
  rotateServerSvid(): void;
  close(): Promise<void>;
}

/**
 * Prepares the admin socket's directory and removes a stale socket. A directory the server creates is 0700. An
 * existing one keeps its mode (the server never chmods a directory it did not create, such as `/run`), but a
 * directory others may write to (`/tmp`) is refused: another user could put their own socket in its place.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID when the directory is shared or is not a directory.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await preparePrivateSocketDir(path, 'endpoints');
  await removeStaleSocket(path, 'endpoints');
}

function peerChainOf(socket: TLSSocket): X509Certificate[] {
  const out: X509Certificate[] = [];
  const seen = new Set<string>();
  let c = socket.getPeerCertificate(true);
  while (c && c.raw !== undefined && out.length < 10) {
    const fp = c.fingerprint256;
    if (seen.has(fp)) break;
    seen.add(fp);
    try {
      out.push(new X509Certificate(c.raw));
    } catch {
      break;
    }
    const next = c.issuerCertificate;
    if (next === undefined || next === c) break;
    c = next;
  }
  return out;
}

/** Starts the admin socket and the agent TLS listener, injecting their connections into `grpcServer`. */
export async function startEndpoints(config: EndpointsConfig): Promise<Endpoints> {
  const { grpcServer, registry, ca, logger } = config;
  const now = config.now ?? (() => new Date());
  // First, so a refused socket directory leaves nothing listening.
  await prepareSocketPath(config.socketPath);
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };

  // Server SVID, renewed at half of its life and whenever the CA's bundle changes.
  let chain: X509Certificate[] = [];
  let renewAtMs = 0;
  const issue = (): { key: string; cert: string; minVersion: 'TLSv1.2' } => {
    const { privateKey, publicKey }: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync(
      'ec',
      {
        namedCurve: 'P-256',
      },
    );
    const signed = ca.signServerSvid({ publicKey, ttlSeconds: config.serverSvidTtl });
    chain = signed.chain.map((d) => new X509Certificate(d));
    const issuedMs = now().getTime();
    renewAtMs = issuedMs + (signed.notAfter.getTime() - issuedMs) / 2;
    return {
      key: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      cert: chain.map((c) => c.toString()).join(''),
      minVersion: 'TLSv1.2',
    };
  };

  const tlsServer = createTlsServer({
    ...issue(),
    requestCert: true,
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
  });
  const rotateAndApply = () => {
    try {
      tlsServer.setSecureContext(issue());
      logger.info({ expires_at: chain[0]?.validTo }, 'Server SVID rotated');
    } catch (err) {
      logger.error({ err }, 'Server SVID rotation failed');
    }
  };
  const timer = setInterval(() => {
    if (now().getTime() >= renewAtMs) rotateAndApply();
  }, 1000);
  timer.unref();
  const offBundle = ca.onBundleChange(() => rotateAndApply());

  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    const address = socket.remoteAddress ?? 'unknown';
    if (socket.alpnProtocol !== 'h2') {
      socket.destroy();
      return;
    }
    registry.register(socket, { transport: 'tls', address, peerChain: peerChainOf(socket) });
    track(socket);
    injector.injectConnection(socket);
  });
  tlsServer.on('tlsClientError', (err) => logger.warn({ err: err.message }, 'TLS handshake failed'));
  await once(tlsServer.listen(config.bindPort, config.bindAddress), 'listening');
  const tcpPort = (tlsServer.address() as { port: number }).port;

  const unixServer: NetServer = createNetServer((socket) => {
    registry.register(socket, { transport: 'unix', address: 'local', peerChain: [] });
    track(socket);
    injector.injectConnection(socket);
  });
  await once(unixServer.listen(config.socketPath), 'listening');
  await chmod(config.socketPath, 0o600);
  logger.info(
    { socket_path: config.socketPath, address: `${config.bindAddress}:${tcpPort}` },
    'Endpoints started',
  );

  return {
    tcpPort,
    serverSvid: () => chain,
    rotateServerSvid: rotateAndApply,
    async close() {
      clearInterval(timer);
      offBundle();
      const closed = Promise.all([
        new Promise<void>((r) => tlsServer.close(() => r())),
        new Promise<void>((r) => unixServer.close(() => r())),
      ]);
      injector.drain(1000);
      for (const s of sockets) s.end();
      const t = setTimeout(() => {
        for (const s of sockets) s.destroy();
      }, 2000);
      t.unref();
      await closed;
      clearTimeout(t);
      injector.destroy();
      await unlink(config.socketPath).catch(() => {});
    },
  };
}

/** Configuration of {@link startHealthServer}. */
export interface HealthServerConfig {
  readonly bindAddress: string;
  readonly bindPort: number;
  readonly livePath?: string;
  readonly readyPath?: string;
  readonly ready: () => boolean;
  /** Prometheus text; `/metrics` is served when given. */
  readonly metrics?: () => string;
}

/** Serves `/live`, `/ready` (and `/metrics`) over HTTP. */
export async function startHealthServer(
  config: HealthServerConfig,
): Promise<{ port: number; close(): Promise<void> }> {
  const live = config.livePath ?? '/live';
  const ready = config.readyPath ?? '/ready';
  const server: HttpServer = createHttpServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    if (path === live) {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"live":true}\n');
    } else if (path === ready) {
      const ok = config.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`{"ready":${ok}}\n`);
    } else if (path === '/metrics' && config.metrics !== undefined) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(config.metrics());
    } else {
      res.writeHead(404).end();
    }
  });
  await once(server.listen(config.bindPort, config.bindAddress), 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
