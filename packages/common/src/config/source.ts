/**
 * Where configuration comes from: a YAML or JSON file, environment variables and command-line flags, merged
 * into one untyped value before validation.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import {
  type ConfigIssue,
  type ConfigPathSegment,
  ConfigValidationError,
  formatConfigPath,
} from './issue.js';

/** Text formats of configuration files. */
export type ConfigFormat = 'yaml' | 'json';

/** Options of {@link parseConfigText}. */
export interface ParseConfigTextOptions {
  /** The format; by default guessed from the content (`{` first means JSON, otherwise YAML). */
  readonly format?: ConfigFormat;
  /** Name of the source (a file name), used in the error message. */
  readonly source?: string;
}

/** Largest configuration file accepted, in bytes. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/**
 * Parses configuration text (YAML 1.2 or JSON) into an untyped value. Duplicate keys, several documents in one
 * file, unknown tags and syntax errors are rejected, each with its line and column. Messages never quote the
 * file's content (it may hold secrets), only key names for duplicates.
 *
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID listing every parse problem
 * @example
 * ```ts
 * parseConfigText('trust_domain: example.org\n'); // { trust_domain: 'example.org' }
 * ```
 */
export function parseConfigText(text: string, opts: ParseConfigTextOptions = {}): unknown {
  if (typeof text !== 'string') throw new TypeError('config: text must be a string');
  const format = opts.format ?? (/^\s*\{/.test(text) ? 'json' : 'yaml');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    strict: true,
    schema: format === 'json' ? 'json' : 'core',
    version: '1.2',
    merge: false,
  });
  const issues: ConfigIssue[] = [];
  for (const e of [...doc.errors, ...doc.warnings]) {
    const { line, col } = lineCounter.linePos(e.pos[0]);
    let message = e.message.length > 0 ? e.message[0]?.toLowerCase() + e.message.slice(1) : 'syntax error';
    if (e.code === 'DUPLICATE_KEY') message = `duplicate key ${JSON.stringify(keyAt(text, e.pos[0]))}`;
    if (e.code === 'MULTIPLE_DOCS') message = 'contains several documents; a configuration is one document';
    issues.push({
      path: '',
      message: `${format}: line ${line}, column ${col}: ${message}`,
      severity: 'error',
    });
  }
  if (issues.length > 0) throw new ConfigValidationError(issues, opts.source);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    const msg = err instanceof Error ? err.message.toLowerCase() : 'cannot be converted';
    throw new ConfigValidationError(
      [{ path: '', message: `${format}: ${msg}`, severity: 'error' }],
      opts.source,
    );
  }
  return value ?? {};
}

/** The key text starting at `offset` (plain, or quoted with `"`/`'`), for duplicate-key messages. */
function keyAt(text: string, offset: number): string {
  const rest = text.slice(offset, offset + 256);
  const quoted = /^"((?:[^"\\\n]|\\.)*)"|^'((?:[^'\n]|'')*)'/.exec(rest);
  if (quoted !== null) return quoted[1] ?? (quoted[2] as string).replaceAll("''", "'");
  return (/^[^:\n,}\]]*/.exec(rest)?.[0] ?? '').trim();
}

/**
 * Reads and parses a configuration file; `.json` files are JSON, `.yaml`/`.yml` YAML, others are guessed.
 *
 * @throws {ConfigValidationError} ERR_CONFIG_INVALID when the file cannot be read or parsed
 * @example
 * ```ts
 * const raw = await readConfigFile('server.yaml');
 * ```
 */
export async function readConfigFile(file: string): Promise<unknown> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigValidationError(
      [{ path: '', message: `cannot read the file (${code})`, severity: 'error' }],
      file,
    );
  }
  if (buf.length > MAX_CONFIG_BYTES) {
    throw new ConfigValidationError(
      [{ path: '', message: `file is larger than ${MAX_CONFIG_BYTES} bytes`, severity: 'error' }],
      file,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new ConfigValidationError(
      [{ path: '', message: 'file is not valid UTF-8', severity: 'error' }],
      file,
    );
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const ext = extname(file).toLowerCase();
  const format: ConfigFormat | undefined =
    ext === '.json' ? 'json' : ext === '.yaml' || ext === '.yml' ? 'yaml' : undefined;
  return parseConfigText(text, format === undefined ? { source: file } : { source: file, format });
}

/** One value set from outside the file: by an environment variable or a command-line flag. */
export interface ConfigOverride {
  /** Key path in the raw configuration (snake_case keys). */
  readonly path: readonly string[];
  /** The value (strings are converted by the schema: `"8080"` for a port, `"true"` for a boolean). */
  readonly value: unknown;
  /** Where it came from, for messages: `environment variable TESSERA_SERVER_LOG_LEVEL`, `flag --log-level`. */
  readonly origin: string;
}

/**
 * Collects overrides from environment variables named `<prefix><KEY>`: the rest of the name, lowercased, is
 * the key, and a double underscore separates nested keys (`TESSERA_SERVER_HEALTH_CHECKS__BIND_PORT=8080` sets
 * `health_checks.bind_port`). Variables without the prefix are ignored; with it, unknown keys are errors.
 *
 * @example
 * ```ts
 * envOverrides({ TESSERA_SERVER_LOG_LEVEL: 'debug' }, 'TESSERA_SERVER_');
 * // [{ path: ['log_level'], value: 'debug', origin: 'environment variable TESSERA_SERVER_LOG_LEVEL' }]
 * ```
 */
export function envOverrides(
  env: Readonly<Record<string, string | undefined>>,
  prefix: string,
): ConfigOverride[] {
  if (!/^[A-Z][A-Z0-9_]*_$/.test(prefix)) throw new TypeError(`config: bad environment prefix "${prefix}"`);
  const out: ConfigOverride[] = [];
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (!name.startsWith(prefix) || value === undefined || name.length === prefix.length) continue;
    const path = name
      .slice(prefix.length)
      .split('__')
      .map((s) => s.toLowerCase());
    out.push({ path, value, origin: `environment variable ${name}` });
  }
  return out;
}

/**
 * Collects overrides from parsed command-line flags keyed by dotted key paths (`{ 'log_level': 'debug',
 * 'health_checks.bind_port': '8080' }`). Flags whose value is `undefined` are skipped.
 *
 * @example
 * ```ts
 * flagOverrides({ trust_domain: 'example.org' });
 * ```
 */
export function flagOverrides(flags: Readonly<Record<string, unknown>>): ConfigOverride[] {
  const out: ConfigOverride[] = [];
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    const path = key.split('.');
    if (path.some((s) => s === '')) throw new TypeError(`config: bad flag key "${key}"`);
    out.push({ path, value, origin: `flag --${key.replaceAll('_', '-')}` });
  }
  return out;
}

/** Result of {@link applyOverrides}. */
export interface AppliedOverrides {
  /** The merged raw configuration (a copy; the input is not modified). */
  readonly raw: unknown;
  /** Rendered path → origin, to pass to `validate` so string values convert and messages name the origin. */
  readonly origins: ReadonlyMap<string, string>;
  /** Overrides that could not be applied (their parent is not a section). */
  readonly issues: readonly ConfigIssue[];
}

function isSection(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Applies overrides in order (later wins) to a copy of the raw configuration, creating sections as needed.
 *
 * @example
 * ```ts
 * const { raw, origins } = applyOverrides(fileRaw, [...envOverrides(process.env, 'TESSERA_SERVER_'), ...flagOverrides(flags)]);
 * ```
 */
export function applyOverrides(raw: unknown, overrides: readonly ConfigOverride[]): AppliedOverrides {
  const root: unknown = raw === undefined || raw === null ? {} : structuredClone(raw);
  const origins = new Map<string, string>();
  const issues: ConfigIssue[] = [];
  for (const o of overrides) {
    if (!isSection(root)) {
      issues.push({
        path: '',
        message: `cannot apply ${o.origin}: the configuration is not a section`,
        severity: 'error',
      });
      continue;
    }
    let node: Record<string, unknown> = root;
    let ok = true;
    const walked: ConfigPathSegment[] = [];
    for (const seg of o.path.slice(0, -1)) {
      walked.push(seg);
      const next = node[seg];
      if (next === undefined || next === null) node[seg] = {};
      else if (!isSection(next)) {
        issues.push({
          path: formatConfigPath(walked),
          message: `cannot apply ${o.origin}: ${JSON.stringify(seg)} is not a section`,
          severity: 'error',
        });
        ok = false;
        break;
      }
      node = node[seg] as Record<string, unknown>;
    }
    if (!ok) continue;
    node[o.path[o.path.length - 1] as string] = o.value;
    origins.set(formatConfigPath(o.path), o.origin);
  }
  return { raw: root, origins, issues };
}
