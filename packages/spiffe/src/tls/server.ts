import type { X509Certificate } from 'node:crypto';
import type { RequestListener } from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { SpiffeId } from '../spiffeid/index.js';
import type { Authorizer } from './authorizer.js';
import {
  certsPem,
  chainFromPeerCertificate,
  listX509Authorities,
  MIN_TLS_VERSION,
  recordPeerId,
  requireAuthorizer,
  requireBundleSource,
  requireSvidSource,
  svidPem,
  type TlsBundleSource,
  type TlsSvid,
  type TlsSvidSource,
  type TlsVerifyOptions,
  verifyPeer,
} from './tls-options.js';

/** A web PKI certificate chain and key in PEM (for {@link mtlsWebServerOptions}). */
export interface WebCertificate {
  /** PEM certificate chain, leaf first. */
  readonly cert: string | Buffer;
  /** PEM private key. */
  readonly key: string | Buffer;
}

interface ClientVerification {
  readonly bundleSource: TlsBundleSource;
  readonly authorizer: Authorizer;
  readonly opts: TlsVerifyOptions;
}

/**
 * The TLS configuration of a SPIFFE server, built by {@link tlsServerOptions}, {@link mtlsServerOptions}
 * or {@link mtlsWebServerOptions}. It is deliberately not a plain `tls.TlsOptions` object: client
 * verification and rotation need hooks on the server itself, so it is consumed by
 * {@link createSpiffeTlsServer}, {@link createSpiffeHttpsServer}, {@link createSpiffeHttp2SecureServer}
 * and `serveGrpcOverSpiffeTls` (which install them), never passed to `https.createServer` directly.
 */
export class SpiffeServerTlsConfig {
  readonly #svidSource: TlsSvidSource | undefined;
  readonly #webCert: WebCertificate | undefined;
  readonly #client: ClientVerification | undefined;

  /** @internal */
  constructor(
    svidSource: TlsSvidSource | undefined,
    webCert: WebCertificate | undefined,
    client: ClientVerification | undefined,
  ) {
    this.#svidSource = svidSource;
    this.#webCert = webCert;
    this.#client = client;
  }

  /** Whether clients must present an X509-SVID. */
  get requiresClientSvid(): boolean {
    return this.#client !== undefined;
  }

  /**
   * A snapshot of the secure-context options (certificate, key, client roots) and a key that changes
   * whenever one of them changes.
   *
   * @internal
   */
  snapshot(): { key: string; options: tls.SecureContextOptions } {
    let cert: string | Buffer;
    let key: string | Buffer;
    let svid: TlsSvid | undefined;
    if (this.#svidSource !== undefined) {
      svid = this.#svidSource.getX509Svid();
      const pem = svidPem(svid);
      cert = pem.cert;
      key = pem.key;
    } else if (this.#webCert !== undefined) {
      cert = this.#webCert.cert;
      key = this.#webCert.key;
    } else {
      throw new TypeError('tls: the server has no certificate');
    }
    const options: tls.SecureContextOptions = { cert, key, minVersion: MIN_TLS_VERSION };
    let caKey = '';
    if (this.#client !== undefined) {
      const roots: X509Certificate[] = listX509Authorities(this.#client.bundleSource);
      // Always an explicit array: an absent `ca` would make Node trust its built-in web roots.
      options.ca = certsPem(roots);
      caKey = roots.map((r) => r.fingerprint256).join(',');
    }
    const leafKey = svid?.certificates[0]?.fingerprint256 ?? 'web';
    return { key: `${leafKey}|${caKey}`, options };
  }

  /**
   * Options for the server constructor: the current snapshot plus client-certificate policy.
   *
   * @internal
   */
  serverOptions(): { key: string; options: tls.TlsOptions } {
    const snap = this.snapshot();
    const options: tls.TlsOptions = {
      ...snap.options,
      requestCert: this.#client !== undefined,
      rejectUnauthorized: this.#client !== undefined,
    };
    return { key: snap.key, options };
  }

  /**
   * Verifies and authorizes the client of a connection whose handshake completed; records its ID.
   *
   * @internal
   */
  verifyClient(socket: tls.TLSSocket): SpiffeId | undefined {
    const c = this.#client;
    if (c === undefined) return undefined;
    const id = verifyPeer(
      chainFromPeerCertificate(socket.getPeerCertificate(true)),
      c.bundleSource,
      c.authorizer,
      c.opts,
    );
    recordPeerId(socket, id);
    return id;
  }
}

/**
 * Server TLS configuration that authenticates the server by its X509-SVID and requests no client
 * certificate (go-spiffe `TLSServerConfig`). New connections use the SVID current at their arrival.
 *
 * @throws {TypeError} when `svidSource` is not an SVID source
 * @example
 * ```ts
 * const server = createSpiffeHttpsServer(tlsServerOptions(source), {}, handler);
 * ```
 */
export function tlsServerOptions(svidSource: TlsSvidSource): SpiffeServerTlsConfig {
  requireSvidSource(svidSource);
  return new SpiffeServerTlsConfig(svidSource, undefined, undefined);
}

/**
 * Server TLS configuration for mutual TLS by X509-SVIDs (go-spiffe `MTLSServerConfig`): the server
 * presents its current SVID; every client must present an X509-SVID, which is verified against the
 * bundle of the client's own trust domain and authorized before the connection reaches any handler.
 *
 * @throws {TypeError} when an argument is not a source / authorizer
 * @example
 * ```ts
 * const config = mtlsServerOptions(source, source, authorizeMemberOf(td));
 * ```
 */
export function mtlsServerOptions(
  svidSource: TlsSvidSource,
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: TlsVerifyOptions = {},
): SpiffeServerTlsConfig {
  requireSvidSource(svidSource);
  requireBundleSource(bundleSource);
  requireAuthorizer(authorizer);
  return new SpiffeServerTlsConfig(svidSource, undefined, { bundleSource, authorizer, opts });
}

/**
 * Server TLS configuration with a web PKI certificate that requires clients to present an X509-SVID
 * (go-spiffe `MTLSWebServerConfig`), verified and authorized as in {@link mtlsServerOptions}.
 *
 * @throws {TypeError} when the certificate is missing or an argument is not a source / authorizer
 * @example
 * ```ts
 * const config = mtlsWebServerOptions({ cert, key }, bundles, authorizeAny());
 * ```
 */
export function mtlsWebServerOptions(
  certificate: WebCertificate,
  bundleSource: TlsBundleSource,
  authorizer: Authorizer,
  opts: TlsVerifyOptions = {},
): SpiffeServerTlsConfig {
  if (typeof certificate !== 'object' || certificate === null || !certificate.cert || !certificate.key) {
    throw new TypeError('tls: mtlsWebServerOptions expects { cert, key }');
  }
  requireBundleSource(bundleSource);
  requireAuthorizer(authorizer);
  return new SpiffeServerTlsConfig(
    undefined,
    { cert: certificate.cert, key: certificate.key },
    {
      bundleSource,
      authorizer,
      opts,
    },
  );
}

const RESERVED_OPTIONS = [
  'ca',
  'cert',
  'key',
  'pfx',
  'passphrase',
  'requestCert',
  'rejectUnauthorized',
  'secureContext',
  'SNICallback',
  'secureProtocol',
  'maxVersion',
] as const;

/**
 * Rejects options that would weaken or contradict the SPIFFE configuration.
 *
 * @internal
 */
export function checkExtraOptions(options: object, where: string): void {
  for (const k of RESERVED_OPTIONS) {
    if (k in options) throw new TypeError(`tls: ${where}: option "${k}" is set by the SPIFFE configuration`);
  }
  const min = (options as { minVersion?: unknown }).minVersion;
  if (min !== undefined && min !== 'TLSv1.2' && min !== 'TLSv1.3') {
    throw new RangeError(
      `tls: ${where}: minVersion must be "TLSv1.2" or "TLSv1.3", got ${JSON.stringify(min)}`,
    );
  }
}

function checkConfig(config: unknown): asserts config is SpiffeServerTlsConfig {
  if (!(config instanceof SpiffeServerTlsConfig)) {
    throw new TypeError(
      'tls: expected a configuration from tlsServerOptions, mtlsServerOptions or mtlsWebServerOptions',
    );
  }
}

/**
 * Installs the SPIFFE hooks on a server built with `config.serverOptions()`:
 * - rotation: before each new connection, the current SVID and bundles are compared with those of the
 *   server's secure context, which is replaced (`setSecureContext`) when they changed;
 * - client verification: `secureConnection` is emitted (to Node's own HTTP/HTTP2 listeners and to any
 *   listener added later) only for clients whose SVID verified and whose ID the authorizer allowed;
 *   refused connections are destroyed and reported as `tlsClientError` (err, socket).
 */
function install(
  server: tls.Server,
  config: SpiffeServerTlsConfig,
  initialKey: string,
  min: string | undefined,
): void {
  let current = initialKey;
  server.prependListener('connection', (socket: { destroy(): void }) => {
    try {
      const snap = config.snapshot();
      if (snap.key !== current) {
        server.setSecureContext(
          min === undefined ? snap.options : { ...snap.options, minVersion: min as tls.SecureVersion },
        );
        current = snap.key;
      }
    } catch (err) {
      // Fail closed: without a current SVID or bundle there is nothing sound to serve with.
      socket.destroy();
      server.emit('tlsClientError', err, socket);
    }
  });
  if (!config.requiresClientSvid) return;
  const emit = server.emit;
  server.emit = function spiffeGuardedEmit(
    this: tls.Server,
    event: string | symbol,
    ...args: unknown[]
  ): boolean {
    if (event === 'secureConnection') {
      const socket = args[0] as tls.TLSSocket;
      try {
        config.verifyClient(socket);
      } catch (err) {
        socket.destroy();
        Reflect.apply(emit, this, ['tlsClientError', err, socket]);
        return false;
      }
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof server.emit;
}

function build<S extends tls.Server>(
  config: SpiffeServerTlsConfig,
  extra: object,
  where: string,
  make: (options: tls.TlsOptions) => S,
): S {
  checkConfig(config);
  checkExtraOptions(extra, where);
  const { key, options } = config.serverOptions();
  const min = (extra as { minVersion?: string }).minVersion;
  const server = make({
    ...extra,
    ...options,
    ...(min === undefined ? {} : { minVersion: min as tls.SecureVersion }),
  });
  install(server, config, key, min);
  return server;
}

/**
 * A `tls.Server` configured by `config`: SVID rotation picked up by new connections, and (for mTLS
 * configurations) client X509-SVIDs verified and authorized before `secureConnection` listeners run.
 * `peerIdFromSocket(socket)` returns the verified client ID inside listeners.
 *
 * @throws {TypeError} when `config` is not a SPIFFE server configuration, or `options` sets a
 *   certificate, key, roots or client-certificate policy
 * @throws {RangeError} when `options.minVersion` is below TLS 1.2
 * @example
 * ```ts
 * const server = createSpiffeTlsServer(mtlsServerOptions(source, source, authorizeAny()), {}, (socket) => {
 *   socket.end(`hello ${peerIdFromSocket(socket)}\n`);
 * });
 * ```
 */
export function createSpiffeTlsServer(
  config: SpiffeServerTlsConfig,
  options: tls.TlsOptions = {},
  secureConnectionListener?: (socket: tls.TLSSocket) => void,
): tls.Server {
  const server = build(config, options, 'createSpiffeTlsServer', (o) => tls.createServer(o));
  if (secureConnectionListener !== undefined) server.on('secureConnection', secureConnectionListener);
  return server;
}

/**
 * An `https.Server` configured by `config` (see {@link createSpiffeTlsServer}): a refused client's
 * request never reaches `requestListener`.
 *
 * @throws {TypeError} / {RangeError} as {@link createSpiffeTlsServer}
 * @example
 * ```ts
 * createSpiffeHttpsServer(mtlsServerOptions(source, source, authorizeId(clientId)), {}, (req, res) => {
 *   res.end(`hello ${peerIdFromSocket(req.socket as TLSSocket)}`);
 * }).listen(8443);
 * ```
 */
export function createSpiffeHttpsServer(
  config: SpiffeServerTlsConfig,
  options: https.ServerOptions = {},
  requestListener?: RequestListener,
): https.Server {
  return build(config, options, 'createSpiffeHttpsServer', (o) =>
    requestListener === undefined ? https.createServer(o) : https.createServer(o, requestListener),
  );
}

/**
 * An `http2.Http2SecureServer` configured by `config` (see {@link createSpiffeTlsServer}): a refused
 * client never gets an HTTP/2 session.
 *
 * @throws {TypeError} / {RangeError} as {@link createSpiffeTlsServer}
 * @example
 * ```ts
 * const server = createSpiffeHttp2SecureServer(mtlsServerOptions(source, source, authorizeAny()));
 * server.on('stream', (stream) => stream.respond({ ':status': 200 }));
 * ```
 */
export function createSpiffeHttp2SecureServer(
  config: SpiffeServerTlsConfig,
  options: http2.SecureServerOptions = {},
  onRequest?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
): http2.Http2SecureServer {
  return build(config, options, 'createSpiffeHttp2SecureServer', (o) =>
    onRequest === undefined ? http2.createSecureServer(o) : http2.createSecureServer(o, onRequest),
  );
}
