/** Configuration problems: {@link ConfigIssue}, their paths, and the error that lists them. @module */
import { ConfigError } from '@tessera/spiffe/errors';

/** How bad a configuration problem is: an `error` rejects the configuration, a `warning` is only reported. */
export type ConfigIssueSeverity = 'error' | 'warning';

/**
 * One configuration problem: where it is (`health_checks.bind_port`, `federation.federates_with["a.org"]`),
 * what is wrong, and how bad it is. Messages never contain the value of a secret setting.
 */
export interface ConfigIssue {
  /** Dotted path of the offending key in the raw configuration; empty for the document itself. */
  readonly path: string;
  /** Lowercase description of the problem, quoting the offending value (unless it is secret). */
  readonly message: string;
  /** `error` rejects the configuration; `warning` does not. */
  readonly severity: ConfigIssueSeverity;
}

/** A segment of a configuration path: a key of a section or an index in a list. */
export type ConfigPathSegment = string | number;

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * Renders a configuration path as text: keys joined with dots, list indexes in brackets, and keys that are not
 * plain words (trust domain names, for instance) quoted in brackets.
 *
 * @example
 * ```ts
 * formatConfigPath(['federation', 'federates_with', 'a.org', 'bundle_endpoint_url']);
 * // 'federation.federates_with["a.org"].bundle_endpoint_url'
 * ```
 */
export function formatConfigPath(path: readonly ConfigPathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (PLAIN_KEY.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/**
 * Formats issues one per line as `<path>: <message>` (errors first, then warnings marked `warning:`).
 *
 * @example
 * ```ts
 * formatConfigIssues([{ path: 'bind_port', message: 'must be ...', severity: 'error' }]);
 * ```
 */
export function formatConfigIssues(issues: readonly ConfigIssue[]): string {
  const ordered = [
    ...issues.filter((i) => i.severity === 'error'),
    ...issues.filter((i) => i.severity === 'warning'),
  ];
  return ordered
    .map(
      (i) =>
        `${i.severity === 'warning' ? 'warning: ' : ''}${i.path === '' ? '(document)' : i.path}: ${i.message}`,
    )
    .join('\n');
}

/**
 * The error thrown when a configuration is rejected: a {@link ConfigError} with code `ERR_CONFIG_INVALID`
 * whose message lists every issue with its path, and whose `issues` holds them for programs.
 *
 * @example
 * ```ts
 * try { await loadServerConfig({ configPath }); } catch (err) {
 *   if (err instanceof ConfigValidationError) for (const i of err.issues) console.error(i.path, i.message);
 * }
 * ```
 */
export class ConfigValidationError extends ConfigError {
  /** Every problem found, errors and warnings. */
  readonly issues: readonly ConfigIssue[];

  /**
   * @param issues the problems found (at least one error)
   * @param source where the configuration came from (a file name), used in the message
   */
  constructor(issues: readonly ConfigIssue[], source?: string) {
    const errors = issues.filter((i) => i.severity === 'error').length;
    const where = source === undefined ? '' : ` in ${JSON.stringify(source)}`;
    super(
      'ERR_CONFIG_INVALID',
      `config: ${errors} ${errors === 1 ? 'problem' : 'problems'}${where}:\n${formatConfigIssues(issues)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n')}`,
    );
    this.issues = Object.freeze([...issues]);
  }
}
