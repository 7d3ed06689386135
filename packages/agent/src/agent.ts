/**
 * The tessera-agent composition root: configuration → logger, persisted state, identity manager (node
 * attestation, sync, SVID cache), workload attestors, the public Workload API + SDS socket, the local-only
 * admin socket (`/live`, `/ready`, `/metrics` over HTTP), the optional TCP health and metrics listeners, and
 * graceful shutdown.
 *
 * @module
 */
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type Server as HttpServer } from 'node:http';
import { join, resolve } from 'node:path';
import { type HealthServer, startHealthServer } from '@tessera/common/health';
import { createLogger, type TesseraLogger } from '@tessera/common/log';
import { MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '@tessera/common/metrics';
import {
  type AgentNodeAttestor,
  createJoinTokenAttestor,
  createX509PopAttestor,
} from './attestor/node/index.js';
import {
  createDockerAttestor,
  createUnixAttestor,
  createWorkloadAttestor,
  type WorkloadAttestorPlugin,
} from './attestor/workload/index.js';
import { type AgentConfig, redactAgentConfig } from './config/index.js';
import { createWorkloadEndpoints, type WorkloadEndpoints } from './endpoints/index.js';
import { IdentityManager } from './manager/manager.js';
import { AgentStorage } from './manager/storage.js';
import { preparePrivateSocketDir, preparePublicSocketDir, removeStaleSocket } from './socket-dir.js';
import { createSvidStores, SvidStoreService } from './svidstore/index.js';

/** Options of {@link startAgent}. */
export interface StartAgentOptions {
  /** Logger; default pino built from `log_level` / `log_format`. */
  readonly logger?: TesseraLogger;
  /** Called once when the agent stops on its own (banned / evicted); the CLI exits non-zero. */
  readonly onFatal?: (err: Error) => void;
  /** Aborts a start that is still waiting for the server (node attestation retries). */
  readonly signal?: AbortSignal;
}

/** A running agent. */
export interface RunningAgent {
  readonly manager: IdentityManager;
  readonly endpoints: WorkloadEndpoints;
  /** The TCP health listener, when `health_checks.listener_enabled`. */
  readonly health: HealthServer | undefined;
  /** The TCP metrics listener, when `metrics` is configured. */
  readonly metricsServer: HealthServer | undefined;
  /** The SVIDStore service, when `svid_stores` configures at least one store. */
  readonly svidStore: SvidStoreService | undefined;
  /** Stops serving (open streams get `graceMs` to finish) and flushes state. */
  stop(graceMs?: number): Promise<void>;
}

function nodeAttestorOf(config: AgentConfig): AgentNodeAttestor {
  const a = config.nodeAttestor;
  if (a.type === 'x509pop') {
    return createX509PopAttestor({
      privateKeyPath: a.privateKeyPath,
      certificatePath: a.certificatePath,
      ...(a.intermediatesPath === undefined ? {} : { intermediatesPath: a.intermediatesPath }),
    });
  }
  if (a.token === undefined) throw new TypeError('agent: join_token attestation needs join_token');
  return createJoinTokenAttestor(a.token);
}

/** Serves `/live`, `/ready` and `/metrics` over HTTP on the admin Unix socket (local-only, dir 0700). */
async function startAdminServer(
  socketPath: string,
  ready: () => boolean,
  metrics: MetricsRegistry,
): Promise<HttpServer> {
  await preparePrivateSocketDir(socketPath);
  await removeStaleSocket(socketPath);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end();
    } else if (path === '/live') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"live":true}');
    } else if (path === '/ready') {
      const ok = ready();
      res
        .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ready: ok }));
    } else if (path === '/metrics') {
      res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE }).end(metrics.render());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(socketPath, () => {
      server.off('error', rej);
      res();
    });
  });
  await chmod(socketPath, 0o600);
  return server;
}

/**
 * Starts the agent: attests (or reuses its stored agent SVID), syncs, and serves workloads.
 *
 * @throws {SpiffeError} ERR_NODE_ATTESTATION_FAILED when the server refuses node attestation
 * @example
 * ```ts
 * const { config } = await loadAgentConfig({ configPath: 'agent.yaml', env: process.env });
 * const agent = await startAgent(config);
 * process.once('SIGTERM', () => void agent.stop(5000));
 * ```
 */
export async function startAgent(config: AgentConfig, opts: StartAgentOptions = {}): Promise<RunningAgent> {
  const log =
    opts.logger ??
    createLogger({ level: config.logLevel, format: config.logFormat, base: { service: 'tessera-agent' } });
  log.info({ config: redactAgentConfig(config) }, 'Configured');
  // Refuse a shared admin socket directory before attesting or serving anything.
  await preparePrivateSocketDir(config.adminSocketPath);
  const metrics = new MetricsRegistry();
  const storage = new AgentStorage(resolve(config.dataDir));
  let endpoints: WorkloadEndpoints | undefined;
  let stopping: Promise<void> | undefined;
  let stopRef: ((graceMs?: number) => Promise<void>) | undefined;
  const manager = new IdentityManager({
    trustDomain: config.trustDomain,
    serverAddress: config.serverAddress,
    serverPort: config.serverPort,
    trustBootstrap: config.trustBootstrap,
    attestor: nodeAttestorOf(config),
    storage,
    x509SvidCacheMaxSize: config.x509SvidCacheMaxSize,
    jwtSvidCacheMaxSize: config.jwtSvidCacheMaxSize,
    ...(config.availabilityTarget === undefined
      ? {}
      : { availabilityTargetMs: config.availabilityTarget.milliseconds }),
    logger: log.child({ subsystem: 'manager' }),
    onFatal: (err) => {
      if (stopRef === undefined) return; // during start: start() throws it
      void stopRef(0).finally(() => opts.onFatal?.(err));
    },
  });
  const gauges = {
    entries: metrics.gauge('tessera_agent_entries', 'Registration entries the agent is authorized for'),
    x509: metrics.gauge('tessera_agent_x509_svids', 'Workload X509-SVIDs cached'),
    jwt: metrics.gauge('tessera_agent_jwt_svids', 'Workload JWT-SVIDs cached'),
    subs: metrics.gauge('tessera_agent_subscriptions', 'Open workload identity subscriptions'),
    conns: metrics.gauge('tessera_agent_workload_connections', 'Open Workload API connections'),
    ready: metrics.gauge('tessera_agent_ready', '1 when the agent is ready to serve'),
  };
  metrics.onCollect(() => {
    const s = manager.stats();
    gauges.entries.set(undefined, s.entries);
    gauges.x509.set(undefined, s.x509Svids);
    gauges.jwt.set(undefined, s.jwtSvids);
    gauges.subs.set(undefined, s.subscriptions);
    gauges.conns.set(undefined, endpoints?.connectionCount ?? 0);
    gauges.ready.set(undefined, manager.ready() ? 1 : 0);
  });

  await manager.start(opts.signal);
  const early = manager.fatalError;
  if (early !== undefined) {
    await manager.stop();
    throw early;
  }

  const stores = createSvidStores(config.svidStores, config.trustDomain.name);
  const svidStore =
    stores.length === 0
      ? undefined
      : new SvidStoreService({
          source: manager,
          stores,
          statePath: join(resolve(config.dataDir), 'svidstore-state.json'),
          logger: log.child({ subsystem: 'svidstore' }),
        });
  await svidStore?.start();

  const plugins: WorkloadAttestorPlugin[] = [
    createUnixAttestor({
      discoverWorkloadPath: config.workloadAttestors.unix.discoverWorkloadPath,
      ...(config.workloadAttestors.unix.workloadSizeLimit === undefined
        ? {}
        : { workloadSizeLimit: config.workloadAttestors.unix.workloadSizeLimit }),
    }),
  ];
  if (config.workloadAttestors.docker !== undefined) plugins.push(createDockerAttestor());
  const attestor = createWorkloadAttestor({ plugins });

  await preparePublicSocketDir(config.socketPath);
  const eps = createWorkloadEndpoints({
    provider: manager,
    attestors: attestor,
    socketPath: config.socketPath,
    logger: log.child({ subsystem: 'endpoints' }),
    sds: { ...config.sds },
    allowedForeignJwtClaims: config.allowedForeignJwtClaims,
  });
  endpoints = eps;
  await eps.start();

  const admin = await startAdminServer(config.adminSocketPath, () => manager.ready(), metrics);
  const hc = config.healthChecks;
  const health = hc.listenerEnabled
    ? await startHealthServer({
        bindAddress: hc.bindAddress,
        bindPort: hc.bindPort,
        livePath: hc.livePath,
        readyPath: hc.readyPath,
        ready: () => ({ ok: manager.ready() }),
      })
    : undefined;
  const metricsServer =
    config.metrics === undefined
      ? undefined
      : await startHealthServer({
          bindAddress: config.metrics.bindAddress,
          bindPort: config.metrics.bindPort,
          health: false,
          metrics,
        });
  log.info({ socket_path: config.socketPath, admin_socket_path: config.adminSocketPath }, 'Agent started');

  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      log.info({}, 'Agent stopping');
      await eps.close(graceMs).catch((err: unknown) => log.error({ err }, 'Closing the endpoints failed'));
      await new Promise<void>((r) => admin.close(() => r()));
      admin.closeAllConnections();
      await unlink(config.adminSocketPath).catch(() => {});
      await health?.close();
      await metricsServer?.close();
      await svidStore?.stop();
      await manager.stop();
      log.info({}, 'Agent stopped');
    })();
    return stopping;
  };
  stopRef = stop;
  return { manager, endpoints: eps, health, metricsServer, svidStore, stop };
}
