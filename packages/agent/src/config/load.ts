/**
 * The tessera-agent configuration entry points: `validateAgentConfig(raw)` (used by `tessera-agent validate`
 * and by `run`) and `loadAgentConfig({ configPath, env, flags })`.
 *
 * @module
 */
import {
  type ConfigIssue,
  type ConfigResult,
  ConfigValidationError,
  effectiveMetrics,
  type LoadComponentConfigOptions,
  loadComponentConfig,
  loadRawConfig,
  type MetricsConfig,
  redactConfig,
  validate,
} from '@tessera/common/config';
import { type AgentConfigFile, agentAdminSocketSchema, agentConfigSchema } from './schema.js';

/** Prefix of environment variables that override agent configuration keys (`TESSERA_AGENT_LOG_LEVEL`). */
export const AGENT_ENV_PREFIX = 'TESSERA_AGENT_';

/** How the agent authenticates the server at first contact. */
export type TrustBootstrap =
  | { readonly type: 'bundle_path'; readonly path: string }
  | { readonly type: 'bundle_url'; readonly url: URL; readonly format: 'pem' | 'spiffe' }
  | { readonly type: 'insecure' };

/** The node attestation method, resolved from `join_token` and `node_attestor`. */
export type NodeAttestorConfig =
  | { readonly type: 'join_token'; readonly token?: string }
  | {
      readonly type: 'x509pop';
      readonly privateKeyPath: string;
      readonly certificatePath: string;
      readonly intermediatesPath?: string;
    };

/** The typed, fully resolved agent configuration that core code receives. */
export interface AgentConfig
  extends Omit<
    AgentConfigFile,
    | 'trustBundlePath'
    | 'trustBundleUrl'
    | 'trustBundleFormat'
    | 'insecureBootstrap'
    | 'joinToken'
    | 'nodeAttestor'
    | 'metrics'
    | 'telemetry'
  > {
  /** How the server is authenticated before the agent has its own copy of the bundle. */
  readonly trustBootstrap: TrustBootstrap;
  /** Node attestation method (the join token is secret: never log it). */
  readonly nodeAttestor: NodeAttestorConfig;
  /** Prometheus listener (from `metrics` or `telemetry.prometheus`), absent when metrics are not served. */
  readonly metrics?: MetricsConfig;
}

/** Options of {@link validateAgentConfig}. */
export interface ValidateAgentConfigOptions {
  /** Origins of overridden keys (from `loadRawConfig`), so messages name the variable or flag. */
  readonly origins?: ReadonlyMap<string, string>;
}

/**
 * Validates an untyped agent configuration (parsed YAML/JSON plus overrides), collecting every problem.
 *
 * @returns `{ config, warnings }` when valid, otherwise `{ errors, warnings }` with every issue and its path
 * @example
 * ```ts
 * const r = validateAgentConfig({ trust_domain: 'example.org', server_address: 'localhost',
 *   trust_bundle_path: 'bundle.pem', join_token: 'abc' });
 * if ('config' in r) r.config.socketPath; // '/tmp/tessera-agent/public/api.sock'
 * ```
 */
export function validateAgentConfig(
  raw: unknown,
  opts: ValidateAgentConfigOptions = {},
): ConfigResult<AgentConfig> {
  const r = validate(agentConfigSchema, raw, opts.origins === undefined ? {} : { origins: opts.origins });
  const warnings = r.issues.filter((i) => i.severity === 'warning');
  if (!r.ok) return { errors: r.issues.filter((i) => i.severity === 'error'), warnings };
  return { config: resolve(r.value), warnings };
}

function resolve(file: AgentConfigFile): AgentConfig {
  const {
    trustBundlePath,
    trustBundleUrl,
    trustBundleFormat,
    insecureBootstrap,
    joinToken,
    nodeAttestor,
    metrics,
    telemetry,
    ...rest
  } = file;
  const trustBootstrap: TrustBootstrap =
    trustBundlePath !== undefined
      ? { type: 'bundle_path', path: trustBundlePath }
      : trustBundleUrl !== undefined
        ? { type: 'bundle_url', url: trustBundleUrl, format: trustBundleFormat }
        : { type: 'insecure' };
  let attestor: NodeAttestorConfig;
  if (nodeAttestor?.type === 'x509pop') {
    const c = nodeAttestor.config;
    attestor = {
      type: 'x509pop',
      privateKeyPath: c.privateKeyPath,
      certificatePath: c.certificatePath,
      ...(c.intermediatesPath === undefined ? {} : { intermediatesPath: c.intermediatesPath }),
    };
  } else {
    attestor = joinToken === undefined ? { type: 'join_token' } : { type: 'join_token', token: joinToken };
  }
  const resolvedMetrics = effectiveMetrics({ metrics, telemetry });
  return Object.freeze({
    ...rest,
    trustBootstrap: Object.freeze(trustBootstrap),
    nodeAttestor: Object.freeze(attestor),
    ...(resolvedMetrics === undefined ? {} : { metrics: resolvedMetrics }),
  });
}

/**
 * Options of {@link loadAgentConfig}: `configPath` (YAML or JSON), `env` (variables named `TESSERA_AGENT_<KEY>`,
 * nested keys joined by `__`, override the file) and `flags` (keyed by dotted snake_case key paths,
 * `{ join_token: '…' }`; they override the environment).
 */
export type LoadAgentConfigOptions = LoadComponentConfigOptions;

/**
 * Loads the agent configuration: file, then environment, then flags, validated at once.
 *
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID listing every problem with its path
 * @example
 * ```ts
 * const { config } = await loadAgentConfig({ configPath: 'agent.yaml', env: process.env });
 * ```
 */
export async function loadAgentConfig(
  opts: LoadAgentConfigOptions,
): Promise<{ readonly config: AgentConfig; readonly warnings: readonly ConfigIssue[] }> {
  return loadComponentConfig(opts, AGENT_ENV_PREFIX, validateAgentConfig);
}

/**
 * Reads only `admin_socket_path` (file, then `TESSERA_AGENT_ADMIN_SOCKET_PATH`), for `tessera-agent healthcheck
 * --config`: the other keys are neither used nor validated, so a file whose join token is given to `run` with
 * `--join-token`, or that a newer version extends, still names the socket.
 *
 * @returns the admin socket path (the default when the key is absent)
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID when the file cannot be read or parsed, or
 * `admin_socket_path` is invalid
 * @example
 * ```ts
 * const socket = await loadAgentAdminSocketPath({ configPath: 'agent.yaml', env: process.env });
 * ```
 */
export async function loadAgentAdminSocketPath(
  opts: Pick<LoadAgentConfigOptions, 'configPath' | 'env'>,
): Promise<string> {
  const raw = await loadRawConfig({ ...opts, envPrefix: AGENT_ENV_PREFIX });
  const doc = raw.raw;
  // Only the key this needs; anything else in the document is someone else's concern.
  const picked =
    typeof doc === 'object' && doc !== null && !Array.isArray(doc)
      ? Object.hasOwn(doc, 'admin_socket_path')
        ? { admin_socket_path: (doc as Record<string, unknown>).admin_socket_path }
        : {}
      : doc;
  const r = validate(agentAdminSocketSchema, picked, { origins: raw.origins });
  const issues = [...raw.issues.filter((i) => i.path === 'admin_socket_path'), ...r.issues];
  if (!r.ok || issues.some((i) => i.severity === 'error'))
    throw new ConfigValidationError(issues, raw.source);
  return r.value.adminSocketPath;
}

/**
 * The configuration as a plain object with snake_case keys and the join token redacted, for the "Configured"
 * log line.
 *
 * @example
 * ```ts
 * log.info({ config: redactAgentConfig(config) }, 'Configured');
 * ```
 */
export function redactAgentConfig(config: AgentConfig): Record<string, unknown> {
  const { trustBootstrap, nodeAttestor, ...rest } = config;
  const out = redactConfig(agentConfigSchema, rest) as Record<string, unknown>;
  out.trust_bootstrap =
    trustBootstrap.type === 'bundle_url'
      ? { ...trustBootstrap, url: trustBootstrap.url.toString() }
      : trustBootstrap;
  out.node_attestor =
    nodeAttestor.type === 'join_token'
      ? { type: 'join_token', ...(nodeAttestor.token === undefined ? {} : { token: '[redacted]' }) }
      : nodeAttestor;
  return out;
}
