/**
 * Prometheus metrics of the server's API: RPCs by method and status code, RPC latency, SVIDs issued and node
 * attestations by attestor and result, observed by a grpc-js server interceptor that sits below the auth
 * interceptor (so calls the auth interceptor refuses are counted too).
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import {
  type Metadata,
  ResponderBuilder,
  ServerInterceptingCall,
  type ServerInterceptor,
  ServerListenerBuilder,
  status,
} from '@grpc/grpc-js';
import { type Counter, type Histogram, MetricsRegistry } from '@tessera/common/metrics';

type PartialStatusObject = Parameters<Parameters<ResponderBuilder['withSendStatus']>[0]>[0];

/** The API metrics of one server, in their registry. */
export interface ServerMetrics {
  /** Every metric of the server (the `/metrics` page is `registry.render()`). */
  readonly registry: MetricsRegistry;
  /** `tessera_server_rpc_total{method, code}`. */
  readonly rpcs: Counter;
  /** `tessera_server_rpc_duration_seconds{method}`. */
  readonly rpcDuration: Histogram;
  /** `tessera_server_svids_issued_total{type, source}` (type x509|jwt; source agent|workload|mint). */
  readonly svidsIssued: Counter;
  /** `tessera_server_node_attestations_total{attestor, result}` (result: a gRPC status name). */
  readonly attestations: Counter;
}

/**
 * Creates the API metrics in a new registry (add the server's gauges to `registry`).
 *
 * @example
 * ```ts
 * const metrics = createServerMetrics();
 * const server = new grpc.Server({ interceptors: [createMetricsInterceptor({ metrics }), authInterceptor] });
 * ```
 */
export function createServerMetrics(): ServerMetrics {
  const registry = new MetricsRegistry();
  return {
    registry,
    rpcs: registry.counter('tessera_server_rpc_total', 'API calls answered, by method and gRPC status code', {
      labelNames: ['method', 'code'],
    }),
    rpcDuration: registry.histogram(
      'tessera_server_rpc_duration_seconds',
      'Time from the start of an API call to its status, by method',
      { labelNames: ['method'] },
    ),
    svidsIssued: registry.counter(
      'tessera_server_svids_issued_total',
      'SVIDs issued, by type (x509, jwt) and source (agent: agent SVIDs; workload: for agents; mint: admin)',
      { labelNames: ['type', 'source'] },
    ),
    attestations: registry.counter(
      'tessera_server_node_attestations_total',
      'Node attestations finished, by attestor type and gRPC status code',
      { labelNames: ['attestor', 'result'] },
    ),
  };
}

/** Configuration of {@link createMetricsInterceptor}. */
export interface MetricsInterceptorConfig {
  readonly metrics: ServerMetrics;
  /** Attestor types configured; any other type sent by a client is counted as `unknown`. */
  readonly attestorTypes?: ReadonlySet<string>;
  /** Monotonic clock in milliseconds (default `performance.now`). */
  readonly nowMs?: () => number;
}

const SVC = '/spire.api.server.';
const ATTEST = `${SVC}agent.v1.Agent/AttestAgent`;
const RENEW = `${SVC}agent.v1.Agent/RenewAgent`;
const BATCH_X509 = `${SVC}svid.v1.SVID/BatchNewX509SVID`;
const NEW_JWT = `${SVC}svid.v1.SVID/NewJWTSVID`;
const MINT_X509 = `${SVC}svid.v1.SVID/MintX509SVID`;
const MINT_JWT = `${SVC}svid.v1.SVID/MintJWTSVID`;

function field(o: unknown, name: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[name] : undefined;
}

/** SVIDs carried by one response message of `path`. */
function issuedIn(
  path: string,
  message: unknown,
): { type: 'x509' | 'jwt'; source: string; n: number } | undefined {
  switch (path) {
    case ATTEST:
      return field(field(message, 'result'), 'svid') === undefined
        ? undefined
        : { type: 'x509', source: 'agent', n: 1 };
    case RENEW:
      return field(message, 'svid') === undefined ? undefined : { type: 'x509', source: 'agent', n: 1 };
    case BATCH_X509: {
      const results = field(message, 'results');
      if (!Array.isArray(results)) return undefined;
      const n = results.filter(
        (r) => field(r, 'svid') !== undefined && (field(field(r, 'status'), 'code') ?? 0) === 0,
      ).length;
      return { type: 'x509', source: 'workload', n };
    }
    case NEW_JWT:
      return field(message, 'svid') === undefined ? undefined : { type: 'jwt', source: 'workload', n: 1 };
    case MINT_X509:
      return field(message, 'svid') === undefined ? undefined : { type: 'x509', source: 'mint', n: 1 };
    case MINT_JWT:
      return field(message, 'svid') === undefined ? undefined : { type: 'jwt', source: 'mint', n: 1 };
    default:
      return undefined;
  }
}

/**
 * A grpc-js server interceptor recording {@link ServerMetrics}. Put it FIRST in the server's `interceptors`
 * (grpc-js wraps in order, so the first is closest to the transport and sees the statuses later interceptors
 * send).
 */
export function createMetricsInterceptor(config: MetricsInterceptorConfig): ServerInterceptor {
  const { metrics } = config;
  const nowMs = config.nowMs ?? (() => performance.now());
  const attestors = config.attestorTypes ?? new Set<string>();
  return (method, call) => {
    const path = method.path;
    const label = path.startsWith('/') ? path.slice(1) : path;
    const started = nowMs();
    let attestor = 'unknown';
    let done = false;
    const finish = (code: status) => {
      if (done) return;
      done = true;
      const codeName = status[code] ?? String(code);
      metrics.rpcs.inc({ method: label, code: codeName });
      metrics.rpcDuration.observe({ method: label }, (nowMs() - started) / 1000);
      if (path === ATTEST) metrics.attestations.inc({ attestor, result: codeName });
    };
    const listener = new ServerListenerBuilder()
      .withOnReceiveMessage((message: unknown, next: (m: unknown) => void) => {
        if (path === ATTEST) {
          const type = field(field(field(message, 'params'), 'data'), 'type');
          if (typeof type === 'string' && attestors.has(type)) attestor = type;
        }
        next(message);
      })
      .withOnCancel(() => finish(status.CANCELLED))
      .build();
    const responder = new ResponderBuilder()
      .withStart((next) => next(listener))
      .withSendMetadata((metadata: Metadata, next: (m: Metadata) => void) => next(metadata))
      .withSendMessage((message: unknown, next: (m: unknown) => void) => {
        const issued = issuedIn(path, message);
        if (issued !== undefined && issued.n > 0)
          metrics.svidsIssued.inc({ type: issued.type, source: issued.source }, issued.n);
        next(message);
      })
      .withSendStatus((st: PartialStatusObject, next: (s: PartialStatusObject) => void) => {
        finish(st.code);
        next(st);
      })
      .build();
    return new ServerInterceptingCall(call, responder);
  };
}
