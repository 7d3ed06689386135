/** Schema pieces shared by the server and agent configurations: logging, health checks and metrics. @module */
import { boolean, enumOf, host, object, port, type Schema, string } from './schema.js';

/** Log levels accepted in configuration. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `log_level`: one of {@link LOG_LEVELS}, any case (SPIRE writes `"DEBUG"`), default `info`. */
export function logLevelSchema(): Schema<LogLevel> {
  return enumOf(LOG_LEVELS, { ignoreCase: true })
    .default('info')
    .describe('Log level: debug, info, warn or error');
}

/** Log output formats. */
export const LOG_FORMATS = ['json', 'text'] as const;
/** A log output format. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `log_format`: `json` (default) or `text`. */
export function logFormatSchema(): Schema<LogFormat> {
  return enumOf(LOG_FORMATS, { ignoreCase: true })
    .default('json')
    .describe('Log line format: json (one JSON object per line) or text (key=value)');
}

const HTTP_PATH = { regex: /^\/[A-Za-z0-9._~\-/]*$/, description: 'an absolute URL path such as "/live"' };

/** Typed `health_checks` section. */
export interface HealthChecksConfig {
  readonly listenerEnabled: boolean;
  readonly bindAddress: string;
  readonly bindPort: number;
  readonly livePath: string;
  readonly readyPath: string;
}

/** `health_checks`: the HTTP liveness/readiness listener (off unless `listener_enabled: true`, as in SPIRE). */
export function healthChecksSchema(): Schema<HealthChecksConfig> {
  return object({
    listenerEnabled: boolean().default(false).describe('Serve the health endpoints over HTTP'),
    bindAddress: host().default('localhost').describe('Address of the health listener'),
    bindPort: port().default(8080).describe('Port of the health listener'),
    livePath: string({ pattern: HTTP_PATH })
      .default('/live')
      .describe('Path answering 200 while the process is alive'),
    readyPath: string({ pattern: HTTP_PATH })
      .default('/ready')
      .describe('Path answering 200 when the process is ready to serve, 503 otherwise'),
  })
    .check((v, r) => {
      if (v.livePath === v.readyPath)
        r.error(`live_path and ready_path must differ, both are "${v.livePath}"`, ['ready_path']);
    })
    .defaultRaw({}, '(section with defaults)')
    .describe('HTTP health check listener');
}

/** Typed `metrics` section. */
export interface MetricsConfig {
  readonly bindAddress: string;
  readonly bindPort: number;
}

/** `metrics`: the Prometheus endpoint (`/metrics`); metrics are served only when the section is present. */
export function metricsSchema(): Schema<MetricsConfig, true> {
  return object({
    bindAddress: host().default('localhost').describe('Address of the Prometheus listener'),
    bindPort: port().describe('Port of the Prometheus listener'),
  })
    .optional('(metrics not served)')
    .describe('Prometheus metrics listener, serving /metrics');
}

/** `telemetry`: SPIRE's spelling of the metrics listener (`telemetry { prometheus { host, port } }`). */
export function telemetrySchema(): Schema<
  { readonly prometheus?: { readonly host: string; readonly port: number } },
  true
> {
  return object({
    prometheus: object({
      host: host().default('localhost').describe('Address of the Prometheus listener'),
      port: port().describe('Port of the Prometheus listener'),
    })
      .optional()
      .describe('Prometheus listener (same as the metrics section)'),
  })
    .optional()
    .describe('SPIRE-compatible spelling of metrics; use one of metrics or telemetry');
}

/**
 * Merges `metrics` and `telemetry.prometheus` into one metrics setting.
 *
 * @returns the metrics listener, `undefined` when none is configured, or an error message when both are set
 */
export function resolveMetrics(
  metrics: MetricsConfig | undefined,
  telemetry: { readonly prometheus?: { readonly host: string; readonly port: number } } | undefined,
): MetricsConfig | undefined | { readonly error: string } {
  const prom = telemetry?.prometheus;
  if (metrics !== undefined && prom !== undefined) {
    return { error: 'set either metrics or telemetry.prometheus, not both' };
  }
  if (prom !== undefined) return { bindAddress: prom.host, bindPort: prom.port };
  return metrics;
}

function isWildcard(a: string): boolean {
  return a === '0.0.0.0' || a === '::' || a === '[::]';
}

/** One TCP listener of a configuration, for {@link findPortConflicts}. */
export interface ListenerSpec {
  /** Key path of its port, for the message (`health_checks.bind_port`). */
  readonly path: string;
  readonly address: string;
  readonly port: number;
}

/**
 * Finds listeners that would collide: same port on the same address, or on a wildcard address.
 *
 * @returns pairs `[earlier, later]` that collide
 */
export function findPortConflicts(listeners: readonly ListenerSpec[]): [ListenerSpec, ListenerSpec][] {
  const out: [ListenerSpec, ListenerSpec][] = [];
  for (let i = 0; i < listeners.length; i++) {
    for (let j = i + 1; j < listeners.length; j++) {
      const a = listeners[i] as ListenerSpec;
      const b = listeners[j] as ListenerSpec;
      if (a.port !== b.port) continue;
      if (a.address === b.address || isWildcard(a.address) || isWildcard(b.address)) out.push([a, b]);
    }
  }
  return out;
}
