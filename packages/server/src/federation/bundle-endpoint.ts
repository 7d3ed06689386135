/**
 * The server's SPIFFE bundle endpoint (`federation.bundle_endpoint`): an HTTPS listener serving the trust domain's
 * current bundle on `GET /` (SPIRE: only `GET`, else 405; only `/`, else 404; no client certificate). Profiles:
 * - `https_spiffe` (default): it presents the server's own X509-SVID (`spiffe://<td>/spire/server`, renewed at
 *   half of its life and whenever the CA's bundle changes);
 * - `https_web`: it presents a Web PKI certificate read from files (`serving_cert_file`), checked again every
 *   `file_sync_interval`: a changed pair is loaded for new connections, a pair that fails to load is logged and
 *   the previous one kept.
 *
 * @module
 */

import { createPrivateKey, generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { SpiffeBundle } from '@tessera/spiffe/bundle';
import { ConfigError } from '@tessera/spiffe/errors';
import { createBundleHandler } from '@tessera/spiffe/federation';
import type { TrustDomain } from '@tessera/spiffe/spiffeid';
import { createSpiffeHttpsServer, type TlsSvid, tlsServerOptions } from '@tessera/spiffe/tls';
import type { CaManager } from '../ca/ca-manager.js';
import { decodePemCertificates } from '../internal-pem.js';

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
  /** Lifetime of the endpoint's SVID in seconds; it is renewed at half of its life (`https_spiffe`). */
  readonly svidTtlSeconds: number;
  /** Profile `https_web`: the certificate files to present instead of the server's SVID. */
  readonly servingCertFile?: ServingCertFile;
  readonly now?: () => Date;
  readonly logger: FederationLogger;
}

/** The Web PKI certificate of an `https_web` bundle endpoint. */
export interface ServingCertFile {
  /** PEM certificate chain, leaf first. */
  readonly certFilePath: string;
  /** PEM private key of the leaf. */
  readonly keyFilePath: string;
  /** How often both files are checked for changes, in milliseconds. */
  readonly fileSyncIntervalMs: number;
}

const SERVING_CERT_FIELD = 'federation.bundle_endpoint.profile.https_web.serving_cert_file';

/**
 * Reads and checks a certificate and key pair: the chain parses, the key parses and belongs to the leaf.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID naming the file and the field.
 */
export function loadServingCert(files: Pick<ServingCertFile, 'certFilePath' | 'keyFilePath'>): {
  readonly certificates: readonly X509Certificate[];
  readonly privateKey: KeyObject;
} {
  const read = (field: string, path: string): string => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(
        'ERR_CONFIG_INVALID',
        `config: ${SERVING_CERT_FIELD}.${field}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      );
    }
  };
  const certificates = decodePemCertificates(
    read('cert_file_path', files.certFilePath),
    `${SERVING_CERT_FIELD}.cert_file_path (${files.certFilePath})`,
  );
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(read('key_file_path', files.keyFilePath));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `config: ${SERVING_CERT_FIELD}.key_file_path: "${files.keyFilePath}" holds no usable PEM private key`,
    );
  }
  if (!(certificates[0] as X509Certificate).checkPrivateKey(privateKey)) {
    throw new ConfigError(
      'ERR_CONFIG_INVALID',
      `config: ${SERVING_CERT_FIELD}.key_file_path: the key in "${files.keyFilePath}" does not belong to the first certificate of "${files.certFilePath}"`,
    );
  }
  return { certificates, privateKey };
}

/** A running bundle endpoint. */
export interface BundleEndpoint {
  /** The bound port. */
  readonly port: number;
  /** The certificate chain currently presented, leaf first (the SVID, or the `https_web` certificate). */
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
  const served = (): SpiffeBundle => {
    const b = ca.bundle();
    return config.refreshHintSeconds === undefined
      ? b
      : b.withMetadata({ sequenceNumber: b.sequenceNumber, refreshHint: config.refreshHintSeconds });
  };
  const handler = createBundleHandler(trustDomain, { getBundleForTrustDomain: served });
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found');
      return;
    }
    handler(req, res);
  };
  const tls =
    config.servingCertFile === undefined
      ? spiffeProfile(config, onRequest)
      : webProfile(config.servingCertFile, logger, onRequest);
  const server = tls.server;
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
    tls.stop();
    throw err;
  }
  const port = (server.address() as { port: number }).port;
  logger.info(
    {
      address: `${config.address}:${port}`,
      trust_domain: trustDomain.name,
      profile: config.servingCertFile === undefined ? 'https_spiffe' : 'https_web',
    },
    'Bundle endpoint started',
  );
  return {
    port,
    svid: () => tls.presented(),
    async close() {
      tls.stop();
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** The TLS side of a bundle endpoint profile. */
interface ProfileTls {
  readonly server: Server;
  /** The chain presented to new connections, leaf first. */
  presented(): readonly X509Certificate[];
  /** Stops renewals and file checks. */
  stop(): void;
}

/** `https_spiffe`: the server's own X509-SVID, renewed at half of its life and whenever the CA bundle changes. */
function spiffeProfile(
  config: BundleEndpointConfig,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
): ProfileTls {
  const { ca, logger } = config;
  const now = config.now ?? (() => new Date());
  let current: TlsSvid;
  let renewAtMs = 0;
  const issue = (): void => {
    const { privateKey, publicKey }: { privateKey: KeyObject; publicKey: KeyObject } = generateKeyPairSync(
      'ec',
      { namedCurve: 'P-256' },
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
  return {
    server: createSpiffeHttpsServer(tlsServerOptions(svidSource), {}, onRequest),
    presented: () => current.certificates,
    stop: offBundle,
  };
}

/** What identifies a file's version between two checks. */
function fileVersion(path: string): string {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  } catch (err) {
    return `missing:${(err as NodeJS.ErrnoException).code ?? ''}`;
  }
}

/**
 * `https_web`: a Web PKI certificate from files (loaded at start, which fails on a bad pair), checked every
 * `fileSyncIntervalMs`: a changed pair that loads is used for new connections; one that does not is logged and
 * the previous pair kept (a renewal tool may write the two files one after the other: the next check retries).
 */
function webProfile(
  files: ServingCertFile,
  logger: FederationLogger,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
): ProfileTls {
  const versions = () => `${fileVersion(files.certFilePath)}|${fileVersion(files.keyFilePath)}`;
  let seen = versions();
  let current = loadServingCert(files);
  const contextOf = (pair: typeof current) => ({
    cert: pair.certificates.map((c) => c.toString()).join(''),
    key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }),
  });
  const server = createHttpsServer({ ...contextOf(current), minVersion: 'TLSv1.2' }, onRequest);
  const check = (): void => {
    const now = versions();
    if (now === seen) return;
    try {
      const next = loadServingCert(files);
      server.setSecureContext({ ...contextOf(next), minVersion: 'TLSv1.2' });
      current = next;
      seen = now;
      logger.info(
        { cert_file_path: files.certFilePath, not_after: current.certificates[0]?.validTo },
        'Bundle endpoint certificate reloaded',
      );
    } catch (err) {
      logger.error(
        { err: err instanceof Error ? err.message : String(err) },
        'Bundle endpoint certificate reload failed; the previous certificate is kept',
      );
    }
  };
  const timer = setInterval(check, files.fileSyncIntervalMs);
  timer.unref();
  return { server, presented: () => current.certificates, stop: () => clearInterval(timer) };
}
