/**
 * The composition root of tessera-server: datastore, key manager, CA, entry index, node attestors, API
 * services behind the auth interceptor, listeners, health and metrics.
 *
 * @module
 */
import type { X509Certificate } from 'node:crypto';
import { chmod, mkdir, readFile } from 'node:fs/promises';
import { Server as GrpcServer } from '@grpc/grpc-js';
import {
  AgentService,
  BundleService,
  EntryService,
  LocalAuthorityService,
  SVIDService,
  SyncService,
  TrustDomainService,
} from '@tessera/common/api';
import { createLogger, type TesseraLogger } from '@tessera/common/log';
import { createAgentService } from './api/agent/v1/service.js';
import { createBundleService } from './api/bundle/v1/service.js';
import type { ApiContext } from './api/context.js';
import { createEntryService } from './api/entry/v1/service.js';
import { createLocalAuthorityService } from './api/localauthority/v1/service.js';
import { Authenticator, ConnectionRegistry, createAuthInterceptor } from './api/middleware/auth.js';
import { createMetricsInterceptor, createServerMetrics } from './api/middleware/metrics.js';
import { RateLimiter } from './api/middleware/rate-limit.js';
import { createSvidService } from './api/svid/v1/service.js';
import { createSyncService } from './api/sync/v1/service.js';
import { createTrustDomainService } from './api/trustdomain/v1/service.js';
import { type CaManager, createCaManager } from './ca/ca-manager.js';
import { createDiskUpstreamAuthority } from './ca/upstream-disk.js';
import { EntryIndex } from './cache/entry-index.js';
import { redactServerConfig, type ServerConfig } from './config/load.js';
import type { Datastore } from './datastore/datastore.js';
import { openDatastore } from './datastore/sql/open.js';
import { type Endpoints, startEndpoints, startHealthServer } from './endpoints/endpoints.js';
import {
  createFederationPoller,
  type FederationPoller,
  relationshipsFromConfig,
  startBundleEndpoint,
} from './federation/index.js';
import { decodePemCertificates } from './internal-pem.js';
import { createDiskKeyManager } from './keymanager/disk.js';
import { createMemoryKeyManager } from './keymanager/memory.js';
import { createJoinTokenAttestor } from './plugin/nodeattestor/join-token/join-token.js';
import type { NodeAttestor } from './plugin/nodeattestor/node-attestor.js';
import { createX509PopAttestor } from './plugin/nodeattestor/x509pop/x509pop.js';
import { startServerless } from './serverless/mount.js';

/** Options of {@link startServer}. */
export interface StartServerOptions {
  readonly config: ServerConfig;
  /** Default: pino on stdout at the configured level and format. */
  readonly logger?: TesseraLogger;
  /** Clock (tests). */
  readonly now?: () => Date;
  /** Overrides of the agent API port (tests use 0). */
  readonly bindPort?: number;
  /** Overrides of the bundle endpoint port (tests use 0). */
  readonly bundleEndpointPort?: number;
  /** Overrides of the health listener's port, when it is enabled (tests use 0). */
  readonly healthPort?: number;
  /** Overrides of the metrics listener's port, when it is configured (tests use 0). */
  readonly metricsPort?: number;
  /** Clock of the attestation and signing rate limiters in milliseconds (default `Date.now`; tests freeze it). */
  readonly rateLimitNowMs?: () => number;
  /** Deadline of one AttestAgent exchange in milliseconds (default 30 s; tests shorten it). */
  readonly attestationTimeoutMs?: number;
}

/** A running server. */
export interface TesseraServer {
  /** The agent API's bound port. */
  readonly tcpPort: number;
  /** The health listener's port, when enabled. */
  readonly healthPort: number | undefined;
  /** The metrics listener's port, when enabled. */
  readonly metricsPort: number | undefined;
  readonly datastore: Datastore;
  readonly ca: CaManager;
  readonly index: EntryIndex;
  readonly endpoints: Endpoints;
  /** Federation: the bundle endpoint's bound port (when served) and the relationship poller. */
  readonly federation: { readonly bundleEndpointPort: number | undefined; readonly poller: FederationPoller };
  /**
   * Whether the server is ready: not closing, and its entry index loaded and caught up with the datastore
   * within the last {@link READY_MAX_INDEX_AGE_MS}.
   */
  ready(): boolean;
  /** Stops listening, drains calls and closes everything. */
  close(): Promise<void>;
}

const SERVER_SVID_TTL = 3600;
/**
 * Longest time since the entry index last caught up with the datastore for `/ready` to answer 200 (the index
 * polls every 100 ms, so this is many failed polls in a row: the datastore is down or unreachable).
 */
export const READY_MAX_INDEX_AGE_MS = 5000;

/**
 * Starts tessera-server from a validated configuration.
 *
 * @throws {SpiffeError} when the datastore, keys, CA or listeners cannot be set up
 * @example
 * ```ts
 * const { config } = await loadServerConfig({ configPath: 'server.yaml' });
 * const server = await startServer({ config });
 * process.once('SIGTERM', () => void server.close());
 * ```
 */
export async function startServer(opts: StartServerOptions): Promise<TesseraServer> {
  const { config } = opts;
  const now = opts.now ?? (() => new Date());
  const log =
    opts.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat, base: { service: 'tessera-server' } });
  log.info({ config: redactServerConfig(config) }, 'Configured');

  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  await chmod(config.dataDir, 0o700);
  const cleanups: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of cleanups.reverse())
      await c().catch((err: unknown) => log.error({ err }, 'Shutdown step failed'));
  };
  try {
    const datastore = await openDatastore(config.datastore.connectionString, { now: () => now().getTime() });
    cleanups.push(() => datastore.close());
    const keyManager =
      config.keyManager.type === 'memory'
        ? createMemoryKeyManager()
        : await createDiskKeyManager({ directory: config.keyManager.keysPath });
    const upstream = config.upstreamAuthority?.config;
    const caLog = log.child({ subsystem: 'ca' });
    const ca = await createCaManager({
      trustDomain: config.trustDomain,
      keyManager,
      datastore,
      clock: { now },
      caTtlSeconds: config.caTtl.seconds,
      caKeyType: config.caKeyType,
      jwtKeyType: config.jwtKeyType,
      caSubject: {
        country: config.caSubject.country[0] ?? 'US',
        organization: config.caSubject.organization[0] ?? 'SPIFFE',
        ...(config.caSubject.commonName === undefined ? {} : { commonName: config.caSubject.commonName }),
      },
      ...(config.jwtIssuer === undefined ? {} : { jwtIssuer: config.jwtIssuer }),
      ...(config.issuanceWorkers === undefined ? {} : { issuanceWorkers: config.issuanceWorkers }),
      ...(upstream === undefined
        ? {}
        : {
            upstreamAuthority: await createDiskUpstreamAuthority({
              trustDomain: config.trustDomain,
              certFilePath: upstream.certFilePath,
              keyFilePath: upstream.keyFilePath,
              ...(upstream.bundleFilePath === undefined ? {} : { bundleFilePath: upstream.bundleFilePath }),
            }),
          }),
      logger: caLog,
    });
    ca.start();
    cleanups.push(() => ca.close());

    const index = await EntryIndex.create({
      datastore,
      trustDomain: config.trustDomain,
      now,
      logger: log.child({ subsystem: 'cache' }),
    });
    index.start();
    cleanups.push(() => index.close());

    const attestors = new Map<string, NodeAttestor>();
    if (config.nodeAttestors.joinToken !== undefined) {
      const a = createJoinTokenAttestor({ trustDomain: config.trustDomain, datastore, now });
      attestors.set(a.type, a);
    }
    const pop = config.nodeAttestors.x509pop;
    if (pop !== undefined) {
      const paths = pop.caBundlePaths ?? (pop.caBundlePath === undefined ? [] : [pop.caBundlePath]);
      const certs: X509Certificate[] = [];
      for (const p of paths) certs.push(...decodePemCertificates(await readFile(p, 'utf8'), p));
      const a = createX509PopAttestor({ trustDomain: config.trustDomain, caCertificates: certs, now });
      attestors.set(a.type, a);
    }

    const registry = new ConnectionRegistry();
    const authenticator = new Authenticator({
      registry,
      index,
      datastore,
      trustDomain: config.trustDomain,
      bundle: () => ca.bundle(),
      adminIds: (config.adminIds ?? []).map((id) => id.toString()),
      now,
    });
    const apiLog = log.child({ subsystem: 'api' });
    const fedLog = log.child({ subsystem: 'federation' });
    const poller = createFederationPoller({
      trustDomain: config.trustDomain,
      datastore,
      ca,
      staticRelationships: relationshipsFromConfig(config.federation),
      logger: fedLog,
    });
    // Closed on every exit path: a RefreshBundle during the start can already start polls.
    cleanups.push(() => poller.close());
    const ctx: ApiContext = {
      federation: poller,
      trustDomain: config.trustDomain,
      datastore,
      ca,
      index,
      authenticator,
      attestors,
      now,
      defaultX509SvidTtl: config.defaultX509SvidTtl.seconds,
      defaultJwtSvidTtl: config.defaultJwtSvidTtl.seconds,
      signingLimiter: new RateLimiter({
        perSecond: config.rateLimit.signing,
        ...(opts.rateLimitNowMs === undefined ? {} : { nowMs: opts.rateLimitNowMs }),
      }),
      ...(opts.attestationTimeoutMs === undefined ? {} : { attestationTimeoutMs: opts.attestationTimeoutMs }),
      log: apiLog,
    };
    const metrics = createServerMetrics();
    const grpcServer = new GrpcServer({
      // Resource limits: request size (the agent's largest batch of CSRs fits well) and streams per connection.
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.max_concurrent_streams': 1024,
      // The metrics interceptor comes first: grpc-js wraps in order, so it sees the auth interceptor's denials.
      interceptors: [
        createMetricsInterceptor({ metrics, attestorTypes: new Set(attestors.keys()) }),
        createAuthInterceptor({
          authenticator,
          attestationLimiter: new RateLimiter({
            perSecond: config.rateLimit.attestation,
            ...(opts.rateLimitNowMs === undefined ? {} : { nowMs: opts.rateLimitNowMs }),
          }),
          ...(config.auditLogEnabled ? { audit: log.child({ subsystem: 'audit' }) } : {}),
        }),
      ],
    });
    grpcServer.addService(EntryService, createEntryService(ctx));
    grpcServer.addService(AgentService, createAgentService(ctx));
    grpcServer.addService(BundleService, createBundleService(ctx));
    grpcServer.addService(SVIDService, createSvidService(ctx));
    grpcServer.addService(TrustDomainService, createTrustDomainService(ctx));
    grpcServer.addService(LocalAuthorityService, createLocalAuthorityService(ctx));
    grpcServer.addService(SyncService, createSyncService(ctx));

    const endpoints = await startEndpoints({
      grpcServer,
      registry,
      ca,
      socketPath: config.socketPath,
      bindAddress: config.bindAddress,
      bindPort: opts.bindPort ?? config.bindPort,
      serverSvidTtl: Math.min(SERVER_SVID_TTL, config.defaultX509SvidTtl.seconds),
      now,
      logger: log.child({ subsystem: 'endpoints' }),
    });
    cleanups.push(async () => {
      await endpoints.close();
      grpcServer.forceShutdown();
    });

    // Federation: the bundle endpoint (when configured) and the poller of federation relationships (created
    // above, for TrustDomain.RefreshBundle).
    let bundleEndpointPort: number | undefined;
    const be = config.federation?.bundleEndpoint;
    if (be !== undefined) {
      const ep = await startBundleEndpoint({
        trustDomain: config.trustDomain,
        ca,
        address: be.address,
        port: opts.bundleEndpointPort ?? be.port,
        ...(be.refreshHint === undefined ? {} : { refreshHintSeconds: be.refreshHint.seconds }),
        ...(be.profile.type === 'https_web'
          ? {
              servingCertFile: {
                certFilePath: be.profile.config.servingCertFile.certFilePath,
                keyFilePath: be.profile.config.servingCertFile.keyFilePath,
                fileSyncIntervalMs: be.profile.config.servingCertFile.fileSyncInterval.seconds * 1000,
              },
            }
          : {}),
        svidTtlSeconds: Math.min(SERVER_SVID_TTL, config.defaultX509SvidTtl.seconds),
        now,
        logger: fedLog,
      });
      bundleEndpointPort = ep.port;
      cleanups.push(() => ep.close());
    }
    poller.start();

    // Serverless remote attestation (off unless the `serverless` section is configured).
    if (config.serverless !== undefined) {
      const sl = await startServerless({
        settings: config.serverless,
        ca,
        trustDomain: config.trustDomain,
        logger: log.child({ subsystem: 'serverless' }),
        clock: { now },
        x509SvidTtlSeconds: config.defaultX509SvidTtl.seconds,
        jwtSvidTtlSeconds: config.defaultJwtSvidTtl.seconds,
      });
      cleanups.push(() => sl.close());
      log.info({ port: sl.port }, 'Serverless attestation API started');
    }

    let closing = false;
    // Ready once the entry index has loaded, and while it keeps up with the datastore: a failing datastore
    // stops its refreshes, so the server turns unready after READY_MAX_INDEX_AGE_MS.
    const ready = () => {
      if (closing) return false;
      const at = index.lastRefreshAt;
      return at !== undefined && now().getTime() - at.getTime() <= READY_MAX_INDEX_AGE_MS;
    };
    let healthPort: number | undefined;
    let metricsPort: number | undefined;
    const reg = metrics.registry;
    const entriesGauge = reg.gauge('tessera_server_entries', 'Registration entries in the entry index');
    const agentsGauge = reg.gauge(
      'tessera_server_agents',
      'Attested agents in the entry index (banned included)',
    );
    const sequenceGauge = reg.gauge(
      'tessera_server_event_sequence',
      'Last datastore event applied to the index',
    );
    const connectionsGauge = reg.gauge(
      'tessera_server_connections',
      'Open API connections (TCP and admin socket)',
    );
    const expiryGauge = reg.gauge(
      'tessera_server_authority_expiry_timestamp_seconds',
      'Expiry (Unix time) of each local X.509 and JWT authority, by kind and status (active, prepared, old)',
      { labelNames: ['kind', 'status', 'authority_id'] },
    );
    reg.onCollect(() => {
      entriesGauge.set(undefined, index.entryCount);
      agentsGauge.set(undefined, index.nodeCount);
      sequenceGauge.set(undefined, index.sequence);
      connectionsGauge.set(undefined, registry.size);
      expiryGauge.reset();
      for (const kind of ['x509', 'jwt'] as const) {
        const st = ca.showAuthorities(kind);
        const all = [st.active, st.prepared, ...st.old];
        for (const a of all) {
          if (a === undefined) continue;
          expiryGauge.set(
            { kind, status: a.status, authority_id: a.authorityId },
            Math.floor(a.notAfter.getTime() / 1000),
          );
        }
      }
    });
    const metricsText = () => reg.render();
    if (config.healthChecks.listenerEnabled) {
      const h = await startHealthServer({
        bindAddress: config.healthChecks.bindAddress,
        bindPort: opts.healthPort ?? config.healthChecks.bindPort,
        livePath: config.healthChecks.livePath,
        readyPath: config.healthChecks.readyPath,
        ready,
      });
      healthPort = h.port;
      cleanups.push(() => h.close());
    }
    if (config.metrics !== undefined) {
      const m = await startHealthServer({
        bindAddress: config.metrics.bindAddress,
        bindPort: opts.metricsPort ?? config.metrics.bindPort,
        ready,
        metrics: metricsText,
      });
      metricsPort = m.port;
      cleanups.push(() => m.close());
    }
    log.info({ trust_domain: config.trustDomain.name, port: endpoints.tcpPort }, 'Server started');
    return {
      tcpPort: endpoints.tcpPort,
      healthPort,
      metricsPort,
      datastore,
      ca,
      index,
      endpoints,
      federation: { bundleEndpointPort, poller },
      ready,
      async close() {
        if (closing) return;
        closing = true;
        await closeAll();
        log.info({}, 'Server stopped');
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
