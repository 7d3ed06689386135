/** Loading a raw configuration from a file plus environment and flag overrides. @module */
import type { ConfigIssue } from './issue.js';
import { ConfigValidationError } from './issue.js';
import { applyOverrides, envOverrides, flagOverrides, readConfigFile } from './source.js';

/** Options of {@link loadRawConfig}. */
export interface LoadRawConfigOptions {
  /** Configuration file (YAML or JSON). Without it, the configuration starts empty. */
  readonly configPath?: string;
  /** Environment (e.g. `process.env`); only variables starting with `envPrefix` are used. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Prefix of the environment variables that override keys, e.g. `TESSERA_SERVER_`. */
  readonly envPrefix: string;
  /** Flags keyed by dotted key paths (`{ 'health_checks.bind_port': '8080' }`); they win over the environment. */
  readonly flags?: Readonly<Record<string, unknown>>;
}

/** A raw configuration ready for validation. */
export interface RawConfig {
  /** The merged untyped value. */
  readonly raw: unknown;
  /** Origins of overridden paths, for `validate`. */
  readonly origins: ReadonlyMap<string, string>;
  /** Problems applying the overrides (to report with the validation issues). */
  readonly issues: readonly ConfigIssue[];
  /** The file name, if any, for messages. */
  readonly source?: string;
}

/**
 * Reads the file (if any), then applies environment overrides, then flag overrides.
 *
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID when the file cannot be read or parsed
 * @example
 * ```ts
 * const raw = await loadRawConfig({ configPath: 'server.yaml', env: process.env, envPrefix: 'TESSERA_SERVER_' });
 * ```
 */
export async function loadRawConfig(opts: LoadRawConfigOptions): Promise<RawConfig> {
  const fileRaw = opts.configPath === undefined ? {} : await readConfigFile(opts.configPath);
  const overrides = [
    ...(opts.env === undefined ? [] : envOverrides(opts.env, opts.envPrefix)),
    ...(opts.flags === undefined ? [] : flagOverrides(opts.flags)),
  ];
  const applied = applyOverrides(fileRaw, overrides);
  return opts.configPath === undefined ? applied : { ...applied, source: opts.configPath };
}

/** Outcome of a `validate*Config` entry point: the typed config plus warnings, or every issue found. */
export type ConfigResult<T> =
  | { readonly config: T; readonly warnings: readonly ConfigIssue[] }
  | { readonly errors: readonly ConfigIssue[]; readonly warnings: readonly ConfigIssue[] };

/**
 * Returns the config of a successful result, or throws the {@link ConfigValidationError} listing every issue.
 *
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID when the result holds errors
 * @example
 * ```ts
 * const { config, warnings } = unwrapConfigResult(validateServerConfig(raw), 'server.yaml');
 * ```
 */
export function unwrapConfigResult<T>(
  result: ConfigResult<T>,
  source?: string,
): { readonly config: T; readonly warnings: readonly ConfigIssue[] } {
  if ('config' in result) return result;
  throw new ConfigValidationError([...result.errors, ...result.warnings], source);
}
