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
import { ConfigValidationError } from '@tessera/common/config';
import { type HealthServer, startHealthServer } from '@tessera/common/health';
import { createLogger, type TesseraLogger } from '@tessera/common/log';
import { MetricsRegistry, PROMETHEUS_CONTENT_TYPE } from '@tessera/common/metrics';
import { preparePrivateSocketDir, preparePublicSocketDir, removeStaleSocket } from '@tessera/common/socket';
import { ConfigError, SpiffeError } from '@tessera/spiffe/errors';
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
import {
  createCallMetricsInterceptor,
  createWorkloadEndpoints,
  type EndpointsAttestor,
  type WorkloadEndpoints,
} from './endpoints/index.js';
import { startHeapTrimmer } from './heap-trim.js';
import { IdentityManager } from './manager/manager.js';
import { AgentStorage } from './manager/storage.js';
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

/**
 * The node attestor of the configuration. A join_token attestor without a token is valid as long as the agent
 * has a usable stored agent SVID (a restart needs no token); the manager asks for the payload only when it must
 * attest, and then the missing token fails the start with a config error naming `join_token`. `needed` is
 * aborted at that moment so the manager does not retry it as if the server were unreachable.
 */
function nodeAttestorOf(config: AgentConfig, needed: AbortController): AgentNodeAttestor {
  const a = config.nodeAttestor;
  if (a.type === 'x509pop') {
    return createX509PopAttestor({
      privateKeyPath: a.privateKeyPath,
      certificatePath: a.certificatePath,
      ...(a.intermediatesPath === undefined ? {} : { intermediatesPath: a.intermediatesPath }),
    });
  }
  if (a.token !== undefined) return createJoinTokenAttestor(a.token);
  const missing = () => {
    needed.abort();
    return new ConfigValidationError([
      {
        path: 'join_token',
        severity: 'error',
        message: `is required: this agent has no usable agent SVID in data_dir "${config.dataDir}" and must attest (set join_token, TESSERA_AGENT_JOIN_TOKEN or run --join-token)`,
      },
    ]);
  };
  return {
    type: 'join_token',
    payload: async () => {
      throw missing();
    },
    respond: async () => {
      throw missing();
    },
  };
}

/**
 * Runs one start-up step; a failure that is not already a {@link SpiffeError} becomes one with `code`, and a
 * message that names the step (and the configuration key it depends on).
 */
async function startStep<T>(
  what: string,
  code: 'ERR_CONFIG_INVALID' | 'ERR_SVIDSTORE_FAILED',
  fn: () => Promise<T>,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof SpiffeError) throw err;
    const message = `agent: ${what}: ${err instanceof Error ? err.message : String(err)}`;
    throw code === 'ERR_CONFIG_INVALID'
      ? new ConfigError(code, message, { cause: err })
      : new SpiffeError(code, message, { cause: err });
  }
}

/**
 * Registers the agent's event metrics (besides the cache-size gauges refreshed on collect): Workload API and
 * SDS calls by RPC and status code, open streams, workload SVIDs issued and rotated, sync latency, node and
 * workload attestation failures. Returns the hooks that feed them.
 */
function registerAgentMetrics(metrics: MetricsRegistry) {
  const calls = metrics.counter(
    'tessera_agent_workload_api_calls_total',
    'Workload API and SDS calls ended, by service, method and gRPC status code',
    { labelNames: ['service', 'method', 'code'] },
  );
  const callSeconds = metrics.histogram(
    'tessera_agent_workload_api_unary_call_duration_seconds',
    'Duration of unary Workload API calls (FetchJWTSVID, ValidateJWTSVID, FetchSecrets)',
    { labelNames: ['service', 'method'] },
  );
  const streams = metrics.gauge(
    'tessera_agent_workload_api_open_streams',
    'Open Workload API and SDS streams, by service and method',
    { labelNames: ['service', 'method'] },
  );
  const x509Issued = metrics.counter(
    'tessera_agent_x509_svids_issued_total',
    'Workload X509-SVIDs issued by the server, by reason (new entry or rotation of a cached SVID)',
    { labelNames: ['reason'] },
  );
  const jwtIssued = metrics.counter(
    'tessera_agent_jwt_svids_issued_total',
    'Workload JWT-SVIDs minted by the server (cache misses)',
  );
  const syncSeconds = metrics.histogram(
    'tessera_agent_sync_duration_seconds',
    'Duration of syncs with the server, by kind (entries, bundles) and result',
    { labelNames: ['kind', 'result'] },
  );
  const nodeAttestations = metrics.counter(
    'tessera_agent_node_attestations_total',
    'Node attestations and agent SVID renewals, by kind (attest, renew) and result',
    { labelNames: ['kind', 'result'] },
  );
  const workloadAttestationFailures = metrics.counter(
    'tessera_agent_workload_attestation_failures_total',
    'Workload API callers that could not be attested',
  );
  // Unlabelled counters are exported from the start (0), so a scrape shows them before the first event.
  jwtIssued.inc(undefined, 0);
  workloadAttestationFailures.inc(undefined, 0);
  const result = (ok: boolean) => (ok ? 'success' : 'failure');
  return {
    workloadAttestationFailures,
    callInterceptor: createCallMetricsInterceptor({
      streamOpened: (n) => streams.inc({ service: n.service, method: n.method }),
      streamClosed: (n) => streams.dec({ service: n.service, method: n.method }),
      callEnded: (n, code, seconds) => {
        calls.inc({ service: n.service, method: n.method, code });
        if (n.method === 'FetchJWTSVID' || n.method === 'ValidateJWTSVID' || n.method === 'FetchSecrets')
          callSeconds.observe({ service: n.service, method: n.method }, seconds);
      },
    }),
    manager: {
      x509SvidsIssued: (fresh: number, rotated: number) => {
        if (fresh > 0) x509Issued.inc({ reason: 'new' }, fresh);
        if (rotated > 0) x509Issued.inc({ reason: 'rotation' }, rotated);
      },
      jwtSvidIssued: () => jwtIssued.inc(),
      synced: (kind: 'entries' | 'bundles', seconds: number, ok: boolean) =>
        syncSeconds.observe({ kind, result: result(ok) }, seconds),
      nodeAttestation: (kind: 'attest' | 'renew', ok: boolean) =>
        nodeAttestations.inc({ kind, result: result(ok) }),
    },
  };
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
  try {
    await chmod(socketPath, 0o600);
  } catch (err) {
    server.close();
    await unlink(socketPath).catch(() => {});
    throw err;
  }
  return server;
}

/**
 * Starts the agent: attests (or reuses its stored agent SVID), syncs, and serves workloads. When any step
 * fails, everything already started is stopped (last started first) before the error is thrown, so a failed
 * start leaves no timer, connection, listener or socket behind.
 *
 * @throws {SpiffeError} ERR_NODE_ATTESTATION_FAILED when the server refuses node attestation, or the agent was
 * banned or evicted while starting
 * @throws {ConfigError} ERR_CONFIG_INVALID when the join token is needed but not configured, or a socket or
 * listener of the configuration cannot be set up (a directory that cannot be created, a port in use)
 * @throws {SpiffeError} ERR_SVIDSTORE_FAILED when the SVID stores cannot start
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
  const counters = registerAgentMetrics(metrics);
  const storage = new AgentStorage(resolve(config.dataDir));
  let endpoints: WorkloadEndpoints | undefined;

  // What has started, in order; stop() undoes it last first. A step that fails is logged and the rest still run.
  const cleanups: { readonly name: string; readonly run: (graceMs: number) => Promise<void> }[] = [];
  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5000): Promise<void> => {
    stopping ??= (async () => {
      log.info({}, 'Agent stopping');
      for (const c of [...cleanups].reverse()) {
        await c.run(graceMs).catch((err: unknown) => log.error({ err, step: c.name }, 'Stopping failed'));
      }
      log.info({}, 'Agent stopped');
    })();
    return stopping;
  };
  // Set once start-up has finished: before that, a fatal error (a ban) is picked up by the check at the end.
  let started = false;

  // The start is aborted by the caller, or at once when attestation needs a join token that is not configured.
  const attestAbort = new AbortController();
  const callerSignal = opts.signal;
  const onCallerAbort = () => attestAbort.abort();
  if (callerSignal?.aborted) attestAbort.abort();
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });

  const manager = new IdentityManager({
    trustDomain: config.trustDomain,
    serverAddress: config.serverAddress,
    serverPort: config.serverPort,
    trustBootstrap: config.trustBootstrap,
    attestor: nodeAttestorOf(config, attestAbort),
    storage,
    x509SvidCacheMaxSize: config.x509SvidCacheMaxSize,
    jwtSvidCacheMaxSize: config.jwtSvidCacheMaxSize,
    ...(config.availabilityTarget === undefined
      ? {}
      : { availabilityTargetMs: config.availabilityTarget.milliseconds }),
    logger: log.child({ subsystem: 'manager' }),
    metrics: counters.manager,
    onFatal: (err) => {
      if (!started) return;
      void stop(0).finally(() => opts.onFatal?.(err));
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

  try {
    // Stopping a manager that failed to start (or never attested) is harmless: its stop is idempotent.
    cleanups.push({ name: 'manager', run: () => manager.stop() });
    try {
      await manager.start(attestAbort.signal);
    } finally {
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
    const early = manager.fatalError;
    if (early !== undefined) throw early;

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
    if (svidStore !== undefined) {
      cleanups.push({ name: 'svid_stores', run: () => svidStore.stop() });
      await startStep('cannot start the SVID stores', 'ERR_SVIDSTORE_FAILED', () => svidStore.start());
    }

    const plugins: WorkloadAttestorPlugin[] = [
      createUnixAttestor({
        discoverWorkloadPath: config.workloadAttestors.unix.discoverWorkloadPath,
        ...(config.workloadAttestors.unix.workloadSizeLimit === undefined
          ? {}
          : { workloadSizeLimit: config.workloadAttestors.unix.workloadSizeLimit }),
      }),
    ];
    if (config.workloadAttestors.docker !== undefined) plugins.push(createDockerAttestor());
    const attestor: EndpointsAttestor = createWorkloadAttestor({ plugins });

    await startStep(
      `cannot create the directory of socket_path "${config.socketPath}"`,
      'ERR_CONFIG_INVALID',
      () => preparePublicSocketDir(config.socketPath),
    );
    const eps = createWorkloadEndpoints({
      provider: manager,
      attestors: attestor,
      socketPath: config.socketPath,
      logger: log.child({ subsystem: 'endpoints' }),
      sds: { ...config.sds },
      allowedForeignJwtClaims: config.allowedForeignJwtClaims,
      allowUnauthenticatedVerifiers: config.allowUnauthenticatedVerifiers,
      earlyAttestationMaxAgeMs: config.attestAtConnect ? 100 : 0,
      onAttestationFailed: () => counters.workloadAttestationFailures.inc(),
      interceptors: [counters.callInterceptor],
    });
    endpoints = eps;
    // Closing endpoints that never started is a no-op, so a start that fails half-way is undone too.
    cleanups.push({
      name: 'endpoints',
      run: (graceMs) =>
        eps.close(graceMs).catch((err: unknown) => log.error({ err }, 'Closing the endpoints failed')),
    });
    await startStep(
      `cannot serve the Workload API on socket_path "${config.socketPath}"`,
      'ERR_CONFIG_INVALID',
      () => eps.start(),
    );

    const admin = await startStep(
      `cannot serve the admin API on admin_socket_path "${config.adminSocketPath}"`,
      'ERR_CONFIG_INVALID',
      () => startAdminServer(config.adminSocketPath, () => manager.ready(), metrics),
    );
    cleanups.push({
      name: 'admin',
      run: async () => {
        await new Promise<void>((r) => admin.close(() => r()));
        admin.closeAllConnections();
        await unlink(config.adminSocketPath).catch(() => {});
      },
    });
    const hc = config.healthChecks;
    const health = hc.listenerEnabled
      ? await startStep(
          `cannot listen on health_checks.bind_address:bind_port "${hc.bindAddress}:${hc.bindPort}"`,
          'ERR_CONFIG_INVALID',
          () =>
            startHealthServer({
              bindAddress: hc.bindAddress,
              bindPort: hc.bindPort,
              livePath: hc.livePath,
              readyPath: hc.readyPath,
              ready: () => ({ ok: manager.ready() }),
            }),
        )
      : undefined;
    if (health !== undefined) cleanups.push({ name: 'health', run: () => health.close() });
    const m = config.metrics;
    const metricsServer =
      m === undefined
        ? undefined
        : await startStep(
            `cannot listen on the metrics address "${m.bindAddress}:${m.bindPort}"`,
            'ERR_CONFIG_INVALID',
            () =>
              startHealthServer({ bindAddress: m.bindAddress, bindPort: m.bindPort, health: false, metrics }),
          );
    if (metricsServer !== undefined) cleanups.push({ name: 'metrics', run: () => metricsServer.close() });
    // Entry syncs and bulk issuance leave megabytes of V8 heap and C heap that would otherwise stay resident.
    const heapTrimmer = startHeapTrimmer({
      onTrim: (before, after) =>
        log.debug({ free_before: before, free_after: after }, 'Returned free heap memory to the system'),
      onReduce: (size, from) =>
        log.debug({ heap_bytes: size, grown_from: from }, 'Asked V8 to shrink the JavaScript heap'),
    });
    cleanups.push({ name: 'heap_trimmer', run: async () => heapTrimmer.stop() });

    // A ban or eviction that arrived while the rest started (onFatal ignored it): fail the start.
    const fatal = manager.fatalError;
    if (fatal !== undefined) throw fatal;
    started = true;
    log.info({ socket_path: config.socketPath, admin_socket_path: config.adminSocketPath }, 'Agent started');
    return { manager, endpoints: eps, health, metricsServer, svidStore, stop };
  } catch (err) {
    log.error({ err }, 'Agent start failed');
    await stop(0);
    throw err;
  }
}
