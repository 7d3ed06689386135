/**
 * Steps every component configuration (server, agent) repeats: load file + overrides and validate in one go, the
 * effective metrics listener (`metrics`, else the SPIRE-style `telemetry.prometheus`), and the health/metrics
 * listeners for port-conflict checks.
 *
 * @module
 */
import type { HealthChecksConfig, ListenerSpec, MetricsConfig } from './common-schemas.js';
import type { ConfigIssue } from './issue.js';
import { type ConfigResult, type LoadRawConfigOptions, loadRawConfig, unwrapConfigResult } from './load.js';

/** Options of a component's `load*Config`: {@link LoadRawConfigOptions} without the prefix the component fixes. */
export type LoadComponentConfigOptions = Omit<LoadRawConfigOptions, 'envPrefix'>;

/** A component's `validate*Config` entry point. */
export type ComponentConfigValidator<T> = (
  raw: unknown,
  opts: { readonly origins: ReadonlyMap<string, string> },
) => ConfigResult<T>;

/**
 * Loads a component configuration (file, then environment under `envPrefix`, then flags) and validates it,
 * reporting override problems together with validation errors.
 *
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID listing every problem with its path
 * @example
 * ```ts
 * const { config } = await loadComponentConfig(opts, 'TESSERA_AGENT_', validateAgentConfig);
 * ```
 */
export async function loadComponentConfig<T>(
  opts: LoadComponentConfigOptions,
  envPrefix: string,
  validateConfig: ComponentConfigValidator<T>,
): Promise<{ readonly config: T; readonly warnings: readonly ConfigIssue[] }> {
  const raw = await loadRawConfig({ ...opts, envPrefix });
  const r = validateConfig(raw.raw, { origins: raw.origins });
  const merged: ConfigResult<T> =
    raw.issues.length === 0
      ? r
      : { errors: [...raw.issues, ...('errors' in r ? r.errors : [])], warnings: r.warnings };
  return unwrapConfigResult(merged, raw.source);
}

/** The `metrics` / `telemetry` keys of a validated component configuration. */
export interface MetricsKeys {
  readonly metrics?: MetricsConfig | undefined;
  readonly telemetry?:
    | { readonly prometheus?: { readonly host: string; readonly port: number } | undefined }
    | undefined;
}

/**
 * The effective metrics listener: `metrics` if set, else the one `telemetry.prometheus` describes, else none.
 * (Setting both is a validation error, reported by the schema.)
 *
 * @example
 * ```ts
 * const metrics = effectiveMetrics(file); // { bindAddress: '127.0.0.1', bindPort: 9988 } | undefined
 * ```
 */
export function effectiveMetrics(keys: MetricsKeys): MetricsConfig | undefined {
  const prom = keys.telemetry?.prometheus;
  return keys.metrics ?? (prom === undefined ? undefined : { bindAddress: prom.host, bindPort: prom.port });
}

/**
 * The health-check listener (when enabled) and the effective metrics listener, as {@link ListenerSpec}s for
 * {@link findPortConflicts}.
 *
 * @example
 * ```ts
 * const listeners = [{ path: 'bind_port', address: v.bindAddress, port: v.bindPort }, ...observabilityListeners(v)];
 * ```
 */
export function observabilityListeners(
  v: MetricsKeys & { readonly healthChecks: HealthChecksConfig },
): ListenerSpec[] {
  const listeners: ListenerSpec[] = [];
  if (v.healthChecks.listenerEnabled) {
    listeners.push({
      path: 'health_checks.bind_port',
      address: v.healthChecks.bindAddress,
      port: v.healthChecks.bindPort,
    });
  }
  const metrics = effectiveMetrics(v);
  if (metrics !== undefined) {
    listeners.push({ path: 'metrics.bind_port', address: metrics.bindAddress, port: metrics.bindPort });
  }
  return listeners;
}
