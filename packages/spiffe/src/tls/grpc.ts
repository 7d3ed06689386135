/**
 * SPIFFE-authenticated TLS for `@grpc/grpc-js`.
 *
 * - Client: {@link createSpiffeGrpcChannelCredentials} builds channel credentials on grpc-js's
 *   certificate-provider API (`experimental.createCertificateProviderChannelCredentials`): the client
 *   SVID and the pooled roots are pushed to grpc-js whenever the sources change (checked every
 *   `refreshIntervalMs`), so new connections use them; the server is verified in `checkServerIdentity`
 *   as an X509-SVID against the bundle of its own trust domain, then authorized.
 * - Server: grpc-js exposes no hook between the TLS handshake and its HTTP/2 session, and only the leaf
 *   (not the chain) to interceptors. {@link serveGrpcOverSpiffeTls} therefore terminates TLS in a
 *   SPIFFE server of this module (verification, authorization and rotation as in
 *   `createSpiffeTlsServer`) and hands only accepted connections to the gRPC server through
 *   `Server.createConnectionInjector`.
 *
 * @module
 */

import type * as net from 'node:net';
import type * as tls from 'node:tls';
import { type ChannelCredentials, experimental, type Server, ServerCredentials } from '@grpc/grpc-js';
import type { Authorizer } from './authorizer.js';
import { createSpiffeTlsServer, type SpiffeServerTlsConfig } from './server.js';
import {
  certsPem,
  listX509Authorities,
  requireAuthorizer,
  requireBundleSource,
  requireSvidSource,
  spiffeCheckServerIdentity,
  svidPem,
  type TlsBundleSource,
  type TlsSvidSource,
  type TlsVerifyOptions,
} from './tls-options.js';

/** Options of {@link createSpiffeGrpcChannelCredentials}. */
export interface SpiffeGrpcChannelOptions extends TlsVerifyOptions {
  /** How often the sources are checked for a new SVID or bundle, in milliseconds. Default 1000. */
  readonly refreshIntervalMs?: number;
}

type CaListener = experimental.CaCertificateUpdateListener;
type IdListener = experimental.IdentityCertificateUpdateListener;

class SpiffeCertificateProvider implements experimental.CertificateProvider {
  readonly #svidSource: TlsSvidSource | undefined;
  readonly #bundleSource: TlsBundleSource;
  readonly #intervalMs: number;
  readonly #caListeners = new Set<CaListener>();
  readonly #idListeners = new Set<IdListener>();
  #timer: NodeJS.Timeout | undefined;
  #caKey: string | undefined;
  #ca: experimental.CaCertificateUpdate | null = null;
  #idKey: string | undefined;
  #id: experimental.IdentityCertificateUpdate | null = null;

  constructor(svidSource: TlsSvidSource | undefined, bundleSource: TlsBundleSource, intervalMs: number) {
    this.#svidSource = svidSource;
    this.#bundleSource = bundleSource;
    this.#intervalMs = intervalMs;
  }

  #refresh(): void {
    try {
      const roots = listX509Authorities(this.#bundleSource);
      const caKey = roots.map((r) => r.fingerprint256).join(',');
      if (caKey !== this.#caKey) {
        this.#caKey = caKey;
        this.#ca = { caCertificate: Buffer.from(certsPem(roots).join('')) };
        for (const l of this.#caListeners) l(this.#ca);
      }
    } catch {
      // Keep the last good roots; verification of each server still uses the live bundle.
    }
    if (this.#svidSource === undefined) return;
    try {
      const svid = this.#svidSource.getX509Svid();
      const idKey = svid.certificates[0]?.fingerprint256 ?? '';
      if (idKey !== this.#idKey) {
        this.#idKey = idKey;
        const pem = svidPem(svid);
        this.#id = { certificate: Buffer.from(pem.cert), privateKey: Buffer.from(pem.key) };
        for (const l of this.#idListeners) l(this.#id);
      }
    } catch {
      // Keep the last good SVID until the source recovers.
    }
  }

  #updateTimer(): void {
    const active = this.#caListeners.size + this.#idListeners.size > 0;
    if (active && this.#timer === undefined) {
      this.#timer = setInterval(() => this.#refresh(), this.#intervalMs);
      this.#timer.unref();
    } else if (!active && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }

  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    this.#refresh();
    listener(this.#ca);
    this.#updateTimer();
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
    this.#updateTimer();
  }

  addIdentityCertificateListener(listener: IdListener): void {
    this.#idListeners.add(listener);
    this.#refresh();
    listener(this.#id);
    this.#updateTimer();
  }

  removeIdentityCertificateListener(listener: IdListener): void {
    this.#idListeners.delete(listener);
    this.#updateTimer();
  }
}

/**
 * grpc-js channel credentials that authenticate the server by its X509-SVID (verified against the bundle
 * of the server's trust domain, then `authorizer`) and, when `svidSource` is given, present the client's
 * current X509-SVID (mTLS). Hostname verification is replaced by SPIFFE verification.
 *
 * @throws {TypeError} when an argument is not a source / authorizer
 * @throws {RangeError} when `refreshIntervalMs` is not a positive number
 * @example
 * ```ts
 * const creds = createSpiffeGrpcChannelCredentials(source, source, authorizeId(serverId));
 * const client = new grpc.Client(`localhost:${port}`, creds);
 * ```
 */
export function createSpiffeGrpcChannelCredentials(
  svidSource: TlsSvidSource | undefined,
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: SpiffeGrpcChannelOptions = {},
): ChannelCredentials {
  if (svidSource !== undefined) requireSvidSource(svidSource);
  requireBundleSource(bundleSource);
  requireAuthorizer(authorizer);
  const interval = opts.refreshIntervalMs ?? 1000;
  if (!(typeof interval === 'number' && interval > 0 && Number.isFinite(interval))) {
    throw new RangeError(`tls: refreshIntervalMs must be a positive number, got ${String(interval)}`);
  }
  const provider = new SpiffeCertificateProvider(svidSource, bundleSource, interval);
  const verify = opts.strict === undefined ? {} : { strict: opts.strict };
  return experimental.createCertificateProviderChannelCredentials(
    provider,
    svidSource === undefined ? null : provider,
    {
      checkServerIdentity: spiffeCheckServerIdentity(bundleSource, authorizer, verify),
      rejectUnauthorized: true,
    },
  );
}

/**
 * Serves a grpc-js `Server` over SPIFFE TLS: returns a `tls.Server` (not yet listening: call `listen`)
 * that terminates TLS with `config` and injects each accepted (verified, authorized) connection into
 * `grpcServer`. Handlers never see a refused client. Closing the returned server stops new connections.
 *
 * @throws {TypeError} when `config` is not a SPIFFE server configuration
 * @example
 * ```ts
 * const grpcServer = new grpc.Server();
 * grpcServer.addService(service, impl);
 * serveGrpcOverSpiffeTls(grpcServer, mtlsServerOptions(source, source, authorizeAny())).listen(50051);
 * ```
 */
export function serveGrpcOverSpiffeTls(
  grpcServer: Server,
  config: SpiffeServerTlsConfig,
  options: Omit<tls.TlsOptions, 'ALPNProtocols'> = {},
): tls.Server {
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
  const server = createSpiffeTlsServer(config, { ...options, ALPNProtocols: ['h2'] }, (socket) => {
    injector.injectConnection(socket as net.Socket);
  });
  server.on('close', () => injector.destroy());
  return server;
}
