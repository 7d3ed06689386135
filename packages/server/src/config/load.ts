/**
 * The tessera-server configuration entry points: `validateServerConfig(raw)` (used by `tessera-server validate`
 * and by `run`) and `loadServerConfig({ configPath, env, flags })`.
 *
 * @module
 */
import { join } from 'node:path';
import {
  type ConfigIssue,
  type ConfigResult,
  effectiveMetrics,
  type LoadComponentConfigOptions,
  loadComponentConfig,
  type MetricsConfig,
  redactConfig,
  validate,
} from '@tessera/common/config';
import { type DatastoreTarget, parseConnectionString } from '../datastore/connection-string.js';
import { type KeyType, type ServerConfigFile, serverConfigSchema } from './schema.js';

/** Prefix of environment variables that override server configuration keys (`TESSERA_SERVER_LOG_LEVEL`). */
export const SERVER_ENV_PREFIX = 'TESSERA_SERVER_';

/** The typed, fully resolved server configuration that core code receives. */
export interface ServerConfig
  extends Omit<ServerConfigFile, 'jwtKeyType' | 'datastore' | 'keyManager' | 'metrics' | 'telemetry'> {
  /** Key type of the JWT signing keys (defaults to `caKeyType`). */
  readonly jwtKeyType: KeyType;
  /** Datastore location: the connection string (default `<data_dir>/datastore.sqlite3`) and its parsed form. */
  readonly datastore: { readonly connectionString: string; readonly target: DatastoreTarget };
  /** Key manager, with the disk key manager's file resolved (default `<data_dir>/keys.json`). */
  readonly keyManager: { readonly type: 'memory' } | { readonly type: 'disk'; readonly keysPath: string };
  /** Prometheus listener (from `metrics` or `telemetry.prometheus`), absent when metrics are not served. */
  readonly metrics?: MetricsConfig;
}

/** Options of {@link validateServerConfig}. */
export interface ValidateServerConfigOptions {
  /** Origins of overridden keys (from `loadRawConfig`), so messages name the variable or flag. */
  readonly origins?: ReadonlyMap<string, string>;
}

/**
 * Validates an untyped server configuration (parsed YAML/JSON plus overrides), collecting every problem.
 *
 * @returns `{ config, warnings }` when valid, otherwise `{ errors, warnings }` with every issue and its path
 * @example
 * ```ts
 * const r = validateServerConfig({ trust_domain: 'example.org' });
 * if ('config' in r) r.config.bindPort; // 8081
 * ```
 */
export function validateServerConfig(
  raw: unknown,
  opts: ValidateServerConfigOptions = {},
): ConfigResult<ServerConfig> {
  const r = validate(serverConfigSchema, raw, opts.origins === undefined ? {} : { origins: opts.origins });
  const warnings = r.issues.filter((i) => i.severity === 'warning');
  if (!r.ok) return { errors: r.issues.filter((i) => i.severity === 'error'), warnings };
  return { config: resolve(r.value), warnings };
}

function resolve(file: ServerConfigFile): ServerConfig {
  const { jwtKeyType, datastore, keyManager, metrics, telemetry, ...rest } = file;
  const connectionString = datastore.connectionString ?? join(file.dataDir, 'datastore.sqlite3');
  const resolvedMetrics = effectiveMetrics({ metrics, telemetry });
  const config: ServerConfig = {
    ...rest,
    jwtKeyType: jwtKeyType ?? file.caKeyType,
    datastore: Object.freeze({ connectionString, target: parseConnectionString(connectionString) }),
    keyManager: Object.freeze(
      keyManager.type === 'memory'
        ? { type: 'memory' as const }
        : { type: 'disk' as const, keysPath: keyManager.keysPath ?? join(file.dataDir, 'keys.json') },
    ),
    ...(resolvedMetrics === undefined ? {} : { metrics: resolvedMetrics }),
  };
  return Object.freeze(config);
}

/**
 * Options of {@link loadServerConfig}: `configPath` (YAML or JSON), `env` (variables named `TESSERA_SERVER_<KEY>`,
 * nested keys joined by `__`, override the file) and `flags` (keyed by dotted snake_case key paths,
 * `{ log_level: 'debug' }`; they override the environment).
 */
export type LoadServerConfigOptions = LoadComponentConfigOptions;

/**
 * Loads the server configuration: file, then environment, then flags, validated at once.
 *
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID listing every problem with its path
 * @example
 * ```ts
 * const { config, warnings } = await loadServerConfig({ configPath: 'server.yaml', env: process.env });
 * ```
 */
export async function loadServerConfig(
  opts: LoadServerConfigOptions,
): Promise<{ readonly config: ServerConfig; readonly warnings: readonly ConfigIssue[] }> {
  return loadComponentConfig(opts, SERVER_ENV_PREFIX, validateServerConfig);
}

/**
 * The configuration as a plain object with snake_case keys and secrets redacted, for the "Configured" log line
 * (the datastore connection string shows without its password).
 *
 * @example
 * ```ts
 * log.info({ config: redactServerConfig(config) }, 'Configured');
 * ```
 */
export function redactServerConfig(config: ServerConfig): Record<string, unknown> {
  const out = redactConfig(serverConfigSchema, config) as Record<string, unknown>;
  const t = config.datastore.target;
  out.datastore = { connection_string: t.engine === 'sqlite' ? t.filename : t.redacted };
  return out;
}
