/**
 * A small declarative schema language for configuration files: it validates an untyped value (parsed YAML or
 * JSON plus overrides), collects every problem as a {@link ConfigIssue}, rejects unknown keys, converts text to
 * domain types, applies defaults, and yields a typed, frozen result. Field names are camelCase in the output
 * and snake_case in the file (`caTtl` ↔ `ca_ttl`).
 *
 * @module
 */
import { isIP } from 'node:net';
import { isSpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import {
  type ConfigIssue,
  type ConfigIssueSeverity,
  type ConfigPathSegment,
  formatConfigPath,
} from './issue.js';
import { Duration, parseByteSize, parseFileMode } from './values.js';

/** Marker returned by a parser that reported an issue. */
const INVALID: unique symbol = Symbol('config.invalid');
type Invalid = typeof INVALID;

/**
 * What a section parser returns when some of its fields (or its keys) were invalid: the fields that did
 * convert, and the properties that did not. Checks declared with `checkFields` still run on it when none of
 * the fields they read is invalid; {@link runNode} then turns it into {@link INVALID}.
 */
class Partial {
  constructor(
    readonly value: Readonly<Record<string, unknown>>,
    readonly invalid: ReadonlySet<string>,
  ) {}
}

/** A check of a schema; `uses` lists the properties it reads, when declared with `checkFields`. */
interface CheckSpec {
  readonly fn: (value: unknown, report: CheckReport) => void;
  readonly uses?: readonly string[];
}

/** State shared by one validation run. */
export interface ParseContext {
  /** Issues found so far (appended to). */
  readonly issues: ConfigIssue[];
  /** Rendered paths whose value came from an environment variable or a flag, with that origin. */
  readonly origins: ReadonlyMap<string, string>;
}

/** Reporting handle given to `check` callbacks of a schema. */
export interface CheckReport {
  /** Reports an error at `subPath` (relative to the checked value; default: the value itself). */
  error(message: string, subPath?: readonly ConfigPathSegment[]): void;
  /** Reports a warning, which does not reject the configuration. */
  warn(message: string, subPath?: readonly ConfigPathSegment[]): void;
}

type Absent =
  | { readonly kind: 'required' }
  | { readonly kind: 'optional'; readonly text?: string }
  | { readonly kind: 'value'; readonly value: unknown; readonly text: string }
  | { readonly kind: 'raw'; readonly raw: unknown; readonly text: string };

type ParseFn = (
  value: unknown,
  path: readonly ConfigPathSegment[],
  ctx: ParseContext,
  node: NodeSpec,
) => unknown;

interface NodeSpec {
  readonly type: string;
  readonly parse: ParseFn;
  readonly absent: Absent;
  readonly description?: string;
  readonly secret: boolean;
  readonly checks: readonly CheckSpec[];
  readonly children?: SchemaChildren;
}

/** What a schema contains, for documentation generators. */
export type SchemaChildren =
  | { readonly kind: 'object'; readonly fields: readonly SchemaField[] }
  | { readonly kind: 'variant'; readonly options: readonly SchemaField[] }
  | { readonly kind: 'list'; readonly item: AnySchema }
  | { readonly kind: 'map'; readonly keyType: string; readonly value: AnySchema };

/** A field of an object schema as seen by documentation generators. */
export interface SchemaField {
  /** Key in the configuration file (snake_case). */
  readonly key: string;
  /** Property name in the typed output (camelCase). */
  readonly property: string;
  /** Schema of the value. */
  readonly schema: AnySchema;
}

/** Documentation facts about a schema node. */
export interface SchemaInfo {
  /** Human-readable type (`duration`, `port`, `one of: debug, info`). */
  readonly type: string;
  /** Whether the key must be present. */
  readonly required: boolean;
  /** Text of the default, if any (`"1h"`, `<data_dir>/datastore.sqlite3`). */
  readonly defaultText?: string;
  /** Description written with `describe()`. */
  readonly description?: string;
  /** Whether the value is secret (never echoed in messages, redacted in logs). */
  readonly secret: boolean;
  /** Nested structure, for sections, lists, maps and variants. */
  readonly children?: SchemaChildren;
}

/**
 * A schema node producing values of type `T`. `O` is `true` when the key may be absent without a default
 * (so the output property is optional). Schemas are immutable: every modifier returns a new schema.
 *
 * @example
 * ```ts
 * const s = object({ bindPort: port().default(8081), logLevel: enumOf(['debug', 'info'] as const).optional() });
 * const r = validate(s, { bind_port: 9000 }); // { value: { bindPort: 9000 }, issues: [] }
 * ```
 */
export class Schema<T, O extends boolean = false> {
  declare readonly __output: T;
  declare readonly __optional: O;
  readonly #node: NodeSpec;

  /** @internal use the builder functions ({@link string}, {@link object}, …) instead. */
  constructor(node: NodeSpec) {
    this.#node = node;
  }

  /** Documentation facts about this schema. */
  get info(): SchemaInfo {
    const n = this.#node;
    const info: {
      type: string;
      required: boolean;
      secret: boolean;
      defaultText?: string;
      description?: string;
      children?: SchemaChildren;
    } = { type: n.type, required: n.absent.kind === 'required', secret: n.secret };
    if (n.absent.kind !== 'required' && n.absent.text !== undefined) info.defaultText = n.absent.text;
    if (n.description !== undefined) info.description = n.description;
    if (n.children !== undefined) info.children = n.children;
    return info;
  }

  /** Makes the key optional: when absent, the output property is omitted. `text` documents what absence means. */
  optional(text?: string): Schema<T, true> {
    return new Schema({
      ...this.#node,
      absent: text === undefined ? { kind: 'optional' } : { kind: 'optional', text },
    });
  }

  /** Gives the key a default value used when it is absent; `text` is how the docs show it. */
  default(value: T, text?: string): Schema<T, false> {
    return new Schema({ ...this.#node, absent: { kind: 'value', value, text: text ?? defaultText(value) } });
  }

  /**
   * Gives the key a default written in the file's own form (parsed and checked like a present value), such as
   * `'1h'` for a duration or `{}` for a section whose keys all have defaults.
   */
  defaultRaw(raw: unknown, text?: string): Schema<T, false> {
    return new Schema({ ...this.#node, absent: { kind: 'raw', raw, text: text ?? defaultText(raw) } });
  }

  /** Attaches the description used by documentation generators. */
  describe(description: string): Schema<T, O> {
    return new Schema({ ...this.#node, description });
  }

  /** Marks the value secret: never quoted in messages, redacted by {@link redactConfig}. */
  secret(): Schema<T, O> {
    return new Schema({ ...this.#node, secret: true });
  }

  /** Adds a check run on the converted value (only when it converted without errors). */
  check(fn: (value: T, report: CheckReport) => void): Schema<T, O> {
    return new Schema({
      ...this.#node,
      checks: [...this.#node.checks, { fn: fn as (value: unknown, report: CheckReport) => void }],
    });
  }

  /**
   * Adds a cross-field check of a section that reads only the properties `keys`. Unlike {@link Schema.check},
   * it also runs when other fields of the section are invalid (or unknown keys are present), as long as none
   * of `keys` is invalid, so that every problem is reported at once.
   *
   * @example
   * ```ts
   * object({ caTtl: duration(), svidTtl: duration(), logLevel: logLevelSchema() })
   *   .checkFields(['caTtl', 'svidTtl'], (v, r) => {
   *     if (v.svidTtl.compare(v.caTtl) >= 0) r.error('must be shorter than ca_ttl', ['svid_ttl']);
   *   });
   * ```
   */
  checkFields<K extends keyof T & string>(
    keys: readonly K[],
    fn: (value: Pick<T, K>, report: CheckReport) => void,
  ): Schema<T, O> {
    if (this.#node.children?.kind !== 'object') {
      throw new TypeError('config: checkFields() applies to object() schemas only');
    }
    return new Schema({
      ...this.#node,
      checks: [
        ...this.#node.checks,
        { fn: fn as (value: unknown, report: CheckReport) => void, uses: [...keys] },
      ],
    });
  }

  /** Converts the output with `fn` (applied after checks; defaults given with `default()` are converted too). */
  map<U>(fn: (value: T) => U): Schema<U, O> {
    const inner = this.#node;
    const absent: Absent =
      inner.absent.kind === 'value' ? { ...inner.absent, value: fn(inner.absent.value as T) } : inner.absent;
    return new Schema({
      ...inner,
      absent,
      checks: [],
      parse: (value, path, ctx) => {
        const v = runNode(inner, value, path, ctx);
        return v === INVALID ? INVALID : fn(v as T);
      },
    });
  }

  /** @internal parses a present value. */
  static parsePresent(
    schema: AnySchema,
    value: unknown,
    path: readonly ConfigPathSegment[],
    ctx: ParseContext,
  ): unknown {
    return runNode(schema.#node, value, path, ctx);
  }

  /** @internal resolves an absent value: default, undefined, or an issue for a required key. */
  static parseAbsent(schema: AnySchema, path: readonly ConfigPathSegment[], ctx: ParseContext): unknown {
    const a = schema.#node.absent;
    switch (a.kind) {
      case 'required':
        report(ctx, path, 'error', 'is required');
        return INVALID;
      case 'optional':
        return undefined;
      case 'value':
        return a.value;
      case 'raw':
        return runNode(schema.#node, a.raw, path, ctx);
    }
  }

  /** @internal whether the schema is secret. */
  static isSecret(schema: AnySchema): boolean {
    return schema.#node.secret;
  }
}

/** Any schema, whatever its output. */
export type AnySchema = Schema<unknown, boolean>;
/** The output type of a schema. */
export type Infer<S> = S extends Schema<infer T, boolean> ? T : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};
type RequiredKeys<F> = { [K in keyof F]: F[K] extends Schema<unknown, true> ? never : K }[keyof F];
type OptionalKeys<F> = { [K in keyof F]: F[K] extends Schema<unknown, true> ? K : never }[keyof F];
/** Output type of {@link object}: required properties for required/defaulted fields, optional otherwise. */
export type ObjectOutput<F extends Record<string, AnySchema>> = Simplify<
  { readonly [K in RequiredKeys<F>]: Infer<F[K]> } & { readonly [K in OptionalKeys<F>]?: Infer<F[K]> }
>;
/** Output type of {@link variant}: `{ type, config }` for the option chosen. */
export type VariantOutput<F extends Record<string, AnySchema>> = {
  [K in keyof F & string]: { readonly type: K; readonly config: Infer<F[K]> };
}[keyof F & string];

function runNode(
  node: NodeSpec,
  value: unknown,
  path: readonly ConfigPathSegment[],
  ctx: ParseContext,
): unknown {
  const v = node.parse(value, path, ctx, node);
  if (v === INVALID) return v;
  const r: CheckReport = {
    error: (message, sub = []) => report(ctx, [...path, ...sub], 'error', message),
    warn: (message, sub = []) => report(ctx, [...path, ...sub], 'warning', message),
  };
  if (v instanceof Partial) {
    // Some fields are invalid: run only the checks whose declared fields all converted.
    for (const check of node.checks) {
      if (check.uses?.every((k) => !v.invalid.has(k)) === true) check.fn(v.value, r);
    }
    return INVALID;
  }
  if (node.checks.length === 0) return v;
  const before = ctx.issues.filter((i) => i.severity === 'error').length;
  for (const check of node.checks) check.fn(v, r);
  return ctx.issues.filter((i) => i.severity === 'error').length > before ? INVALID : v;
}

function report(
  ctx: ParseContext,
  path: readonly ConfigPathSegment[],
  severity: ConfigIssueSeverity,
  message: string,
): void {
  const p = formatConfigPath(path);
  const origin = ctx.origins.get(p);
  ctx.issues.push({
    path: p,
    message: origin === undefined ? message : `${message} (from ${origin})`,
    severity,
  });
}

function failAt(ctx: ParseContext, path: readonly ConfigPathSegment[], message: string): Invalid {
  report(ctx, path, 'error', message);
  return INVALID;
}

function defaultText(v: unknown): string {
  if (v instanceof Duration || v instanceof TrustDomain || v instanceof SpiffeId || v instanceof URL) {
    return JSON.stringify(v.toString());
  }
  if (v instanceof Map) return '{}';
  return JSON.stringify(v) ?? String(v);
}

/** Describes a value for an error message, never quoting secrets and truncating long text. */
function show(v: unknown, node: NodeSpec): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a section';
  if (node.secret) return `a ${typeof v} (value redacted)`;
  if (typeof v === 'string') return `"${v.length > 80 ? `${v.slice(0, 77)}...` : v}"`;
  return `${typeof v} ${String(v)}`;
}

function leaf<T>(
  type: string,
  fn: (value: unknown, fail: (msg: string) => Invalid, node: NodeSpec) => T | Invalid,
): Schema<T, false> {
  return new Schema({
    type,
    absent: { kind: 'required' },
    secret: false,
    checks: [],
    parse: (value, path, ctx, node) => fn(value, (msg) => failAt(ctx, path, msg), node),
  });
}

function isOverride(ctx: ParseContext, path: readonly ConfigPathSegment[]): boolean {
  return ctx.origins.has(formatConfigPath(path));
}

/** Options of {@link string}. */
export interface StringOptions {
  /** Allow the empty string (default false). */
  readonly allowEmpty?: boolean;
  /** Maximum length in UTF-8 bytes. */
  readonly maxBytes?: number;
  /** A pattern the whole value must match, with a description for the message. */
  readonly pattern?: { readonly regex: RegExp; readonly description: string };
}

/**
 * A string (non-empty unless `allowEmpty`).
 *
 * @example
 * ```ts
 * string({ maxBytes: 255 }).describe('Issuer written in JWT-SVIDs').optional();
 * ```
 */
export function string(opts: StringOptions = {}): Schema<string> {
  return leaf('string', (v, fail, node) => {
    if (typeof v !== 'string') return fail(`must be a string, got ${show(v, node)}`);
    if (v === '' && opts.allowEmpty !== true) return fail('must not be empty');
    if (v.includes('\0')) return fail('must not contain NUL characters');
    if (opts.maxBytes !== undefined && Buffer.byteLength(v) > opts.maxBytes) {
      return fail(`must be at most ${opts.maxBytes} bytes, got ${Buffer.byteLength(v)}`);
    }
    if (opts.pattern !== undefined && !opts.pattern.regex.test(v)) {
      return fail(`must be ${opts.pattern.description}, got ${show(v, node)}`);
    }
    return v;
  });
}

/** A boolean (`true`/`false`; from environment variables and flags also the strings `"true"`/`"false"`). */
export function boolean(): Schema<boolean> {
  return new Schema({
    type: 'boolean',
    absent: { kind: 'required' },
    secret: false,
    checks: [],
    parse: (v, path, ctx, node) => {
      if (typeof v === 'boolean') return v;
      if (typeof v === 'string' && isOverride(ctx, path) && (v === 'true' || v === 'false'))
        return v === 'true';
      report(ctx, path, 'error', `must be true or false, got ${show(v, node)}`);
      return INVALID;
    },
  });
}

/** Options of {@link integer}. */
export interface IntegerOptions {
  /** Smallest accepted value (inclusive). */
  readonly min?: number;
  /** Largest accepted value (inclusive). */
  readonly max?: number;
}

/** An integer within optional bounds (from environment variables and flags also its decimal text). */
export function integer(opts: IntegerOptions = {}, type = 'integer'): Schema<number> {
  return new Schema({
    type,
    absent: { kind: 'required' },
    secret: false,
    checks: [],
    parse: (v, path, ctx, node) => {
      let n = v;
      if (typeof v === 'string' && isOverride(ctx, path) && /^-?\d+$/.test(v)) n = Number(v);
      const fail = (msg: string): Invalid => failAt(ctx, path, msg);
      if (typeof n !== 'number' || !Number.isSafeInteger(n))
        return fail(`must be an integer, got ${show(v, node)}`);
      if (opts.min !== undefined && n < opts.min) return fail(`must be at least ${opts.min}, got ${n}`);
      if (opts.max !== undefined && n > opts.max) return fail(`must be at most ${opts.max}, got ${n}`);
      return n;
    },
  });
}

/** A TCP port, 1..65535. */
export function port(): Schema<number> {
  return integer({ min: 1, max: 65535 }, 'port (1-65535)');
}

/** Options of {@link enumOf}. */
export interface EnumOptions {
  /** Accept any letter case and return the canonical spelling (for `log_level = "DEBUG"` from SPIRE). */
  readonly ignoreCase?: boolean;
}

/** One of a fixed set of strings. */
export function enumOf<const V extends readonly string[]>(
  values: V,
  opts: EnumOptions = {},
): Schema<V[number]> {
  const list = values.map((v) => `"${v}"`).join(', ');
  return leaf(`one of: ${values.join(', ')}`, (v, fail, node) => {
    if (typeof v === 'string') {
      const hit = values.find((x) =>
        opts.ignoreCase === true ? x.toLowerCase() === v.toLowerCase() : x === v,
      );
      if (hit !== undefined) return hit as V[number];
    }
    return fail(`must be one of ${list}, got ${show(v, node)}`);
  });
}

/** Options of {@link duration}. */
export interface DurationOptions {
  /** Smallest accepted duration (inclusive), in the text form (`"1s"`). */
  readonly min?: string;
  /** Largest accepted duration (inclusive), in the text form. */
  readonly max?: string;
}

/** A duration written as text (`"1h"`, `"90s"`, `"720h"`, `"1h30m"`), converted to a {@link Duration}. */
export function duration(opts: DurationOptions = {}): Schema<Duration> {
  const min = opts.min === undefined ? undefined : mustDuration(opts.min);
  const max = opts.max === undefined ? undefined : mustDuration(opts.max);
  return leaf('duration', (v, fail, node) => {
    if (typeof v !== 'string') {
      return fail(`must be a duration string such as "1h" or "90s", got ${show(v, node)}`);
    }
    const d = Duration.parse(v);
    if (d === undefined)
      return fail(
        `must be a duration such as "1h", "90s" or "1h30m" (units ms, s, m, h, d), got ${show(v, node)}`,
      );
    if (min !== undefined && d.compare(min) < 0) return fail(`must be at least ${min}, got "${v}"`);
    if (max !== undefined && d.compare(max) > 0) return fail(`must be at most ${max}, got "${v}"`);
    return d;
  });
}

function mustDuration(text: string): Duration {
  const d = Duration.parse(text);
  if (d === undefined) throw new TypeError(`config: invalid duration bound "${text}"`);
  return d;
}

/** A byte size: an integer or text such as `"64KiB"`, `"10MB"`; converted to a number of bytes. */
export function byteSize(opts: IntegerOptions = {}): Schema<number> {
  return leaf('byte size', (v, fail, node) => {
    const n = typeof v === 'string' || typeof v === 'number' ? parseByteSize(v) : undefined;
    if (n === undefined)
      return fail(`must be a byte size such as 1048576, "64KiB" or "10MB", got ${show(v, node)}`);
    if (opts.min !== undefined && n < opts.min) return fail(`must be at least ${opts.min} bytes, got ${n}`);
    if (opts.max !== undefined && n > opts.max) return fail(`must be at most ${opts.max} bytes, got ${n}`);
    return n;
  });
}

/** A Unix file mode written as an octal string (`"0700"`, `"0o644"`); converted to a number. */
export function fileMode(): Schema<number> {
  return leaf('file mode (octal string)', (v, fail, node) => {
    const n = typeof v === 'string' ? parseFileMode(v) : undefined;
    if (n === undefined)
      return fail(`must be an octal file mode in quotes such as "0700", got ${show(v, node)}`);
    return n;
  });
}

/** Options of {@link url}. */
export interface UrlOptions {
  /** Accepted schemes without the colon, e.g. `['https']`. */
  readonly schemes: readonly string[];
}

/** An absolute URL with one of the given schemes, converted to a `URL`. User info (passwords) is refused. */
export function url(opts: UrlOptions): Schema<URL> {
  return leaf(`URL (${opts.schemes.join(', ')})`, (v, fail, node) => {
    if (typeof v !== 'string') return fail(`must be a URL string, got ${show(v, node)}`);
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      return fail(`must be an absolute URL, got ${show(v, node)}`);
    }
    const scheme = u.protocol.slice(0, -1);
    if (!opts.schemes.includes(scheme)) {
      return fail(`must use scheme ${opts.schemes.map((s) => `"${s}"`).join(' or ')}, got "${scheme}"`);
    }
    if (u.username !== '' || u.password !== '') return fail('must not contain user information');
    if ((scheme === 'https' || scheme === 'http') && u.hostname === '') return fail('must have a host');
    return u;
  });
}

/** A file system path (non-empty, no NUL). */
export function path(): Schema<string> {
  return leaf('path', (v, fail, node) => {
    if (typeof v !== 'string') return fail(`must be a path string, got ${show(v, node)}`);
    if (v === '') return fail('must not be empty');
    if (v.includes('\0')) return fail('must not contain NUL characters');
    return v;
  });
}

/** Longest Unix socket path Linux accepts (sun_path is 108 bytes including the terminating NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;

/** A Unix domain socket path: non-empty, at most {@link MAX_SOCKET_PATH_BYTES} bytes, no `unix://` prefix. */
export function socketPath(): Schema<string> {
  return leaf('socket path', (v, fail, node) => {
    if (typeof v !== 'string') return fail(`must be a socket path string, got ${show(v, node)}`);
    if (v === '') return fail('must not be empty');
    if (v.includes('\0')) return fail('must not contain NUL characters');
    if (v.startsWith('unix:'))
      return fail(`must be a plain file path without the "unix:" scheme, got ${show(v, node)}`);
    const n = Buffer.byteLength(v);
    if (n > MAX_SOCKET_PATH_BYTES)
      return fail(`must be at most ${MAX_SOCKET_PATH_BYTES} bytes (a Unix socket limit), got ${n}`);
    return v;
  });
}

const HOSTNAME =
  /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** A host: an IPv4/IPv6 literal or a DNS name. */
export function host(): Schema<string> {
  return leaf('IP address or host name', (v, fail, node) => {
    if (typeof v !== 'string') return fail(`must be an IP address or host name, got ${show(v, node)}`);
    if (isIP(v) !== 0 || HOSTNAME.test(v)) return v;
    return fail(`must be an IP address or host name, got ${show(v, node)}`);
  });
}

/** A trust domain name (`example.org`), converted to a {@link TrustDomain}. */
export function trustDomain(): Schema<TrustDomain> {
  return leaf('trust domain', (v, fail, node) => {
    if (typeof v !== 'string') return fail(`must be a trust domain name string, got ${show(v, node)}`);
    if (v.includes(':/'))
      return fail(
        `must be a trust domain name such as "example.org", not a SPIFFE ID or URL, got ${show(v, node)}`,
      );
    try {
      return TrustDomain.fromString(v);
    } catch (err) {
      if (isSpiffeError(err)) return fail(`is not a valid trust domain: ${err.message}`);
      throw err;
    }
  });
}

/** A SPIFFE ID (`spiffe://example.org/path`), converted to a {@link SpiffeId}. */
export function spiffeId(): Schema<SpiffeId> {
  return leaf('SPIFFE ID', (v, fail, node) => {
    if (typeof v !== 'string') return fail(`must be a SPIFFE ID string, got ${show(v, node)}`);
    try {
      return SpiffeId.fromString(v);
    } catch (err) {
      if (isSpiffeError(err)) return fail(`is not a valid SPIFFE ID: ${err.message}`);
      throw err;
    }
  });
}

/** Options of {@link array}. */
export interface ArrayOptions {
  /** Smallest number of items. */
  readonly minItems?: number;
  /** Largest number of items. */
  readonly maxItems?: number;
}

/**
 * A list of items. From an environment variable or a flag, a string is split on commas.
 *
 * @example
 * ```ts
 * array(spiffeId()).optional(); // admin_ids
 * ```
 */
export function array<S extends AnySchema>(item: S, opts: ArrayOptions = {}): Schema<readonly Infer<S>[]> {
  return new Schema({
    type: `list of ${item.info.type}`,
    absent: { kind: 'required' },
    secret: false,
    checks: [],
    children: { kind: 'list', item },
    parse: (v, path, ctx, node) => {
      let list = v;
      if (typeof v === 'string' && isOverride(ctx, path))
        list = v === '' ? [] : v.split(',').map((s) => s.trim());
      if (!Array.isArray(list)) {
        report(ctx, path, 'error', `must be a list, got ${show(v, node)}`);
        return INVALID;
      }
      let bad = false;
      if (opts.minItems !== undefined && list.length < opts.minItems) {
        report(
          ctx,
          path,
          'error',
          `must have at least ${opts.minItems} item${opts.minItems === 1 ? '' : 's'}`,
        );
        bad = true;
      }
      if (opts.maxItems !== undefined && list.length > opts.maxItems) {
        report(ctx, path, 'error', `must have at most ${opts.maxItems} items, got ${list.length}`);
        bad = true;
      }
      const out: unknown[] = [];
      list.forEach((x: unknown, i) => {
        const p = [...path, i];
        const r = parseField(item, x, p, ctx);
        if (r === INVALID) bad = true;
        else out.push(r);
      });
      return bad ? INVALID : Object.freeze(out);
    },
  });
}

/**
 * Parses a field value: absent (`undefined`) and `null` use the absent rule, except that `null` for a section
 * (a YAML key with nothing under it, `join_token:`) means an empty section.
 */
function parseField(
  schema: AnySchema,
  raw: unknown,
  path: readonly ConfigPathSegment[],
  ctx: ParseContext,
): unknown {
  if (raw === undefined) return Schema.parseAbsent(schema, path, ctx);
  if (raw === null) {
    return schema.info.children?.kind === 'object'
      ? Schema.parsePresent(schema, {}, path, ctx)
      : Schema.parseAbsent(schema, path, ctx);
  }
  return Schema.parsePresent(schema, raw, path, ctx);
}

function isSection(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Converts a camelCase property name to the snake_case key used in files (`x509SvidTtl` → `x509_svid_ttl`). */
export function toSnakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function sectionName(path: readonly ConfigPathSegment[]): string {
  return path.length === 0 ? 'top level' : `section "${formatConfigPath(path)}"`;
}

function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      prev[j] = Math.min(
        (prev[j] as number) + 1,
        (prev[j - 1] as number) + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

function reportUnknownKeys(
  value: Record<string, unknown>,
  known: readonly string[],
  path: readonly ConfigPathSegment[],
  ctx: ParseContext,
  what: string,
): boolean {
  let bad = false;
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const hint = closest(key, known);
    const list = known.length === 0 ? `it takes no ${what}` : `known ${what}: ${known.join(', ')}`;
    report(
      ctx,
      [...path, key],
      'error',
      `unknown key ${JSON.stringify(key)} in ${sectionName(path)}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; ${list}`,
    );
    bad = true;
  }
  return bad;
}

/** Options of {@link object}. */
export interface ObjectOptions<F> {
  /** File keys that differ from the snake_case of the property name. */
  readonly keys?: { readonly [K in keyof F]?: string };
}

/**
 * A section with known keys. Unknown keys are errors naming the section (with a "did you mean" hint); every
 * field is validated even after a failure so that all problems are reported at once. A `null` value (a YAML
 * key with nothing under it) counts as absent.
 *
 * @example
 * ```ts
 * const healthChecks = object({
 *   listenerEnabled: boolean().default(false),
 *   bindPort: port().default(8080),
 * }).defaultRaw({});
 * ```
 */
export function object<F extends Record<string, AnySchema>>(
  fields: F,
  opts: ObjectOptions<F> = {},
): Schema<ObjectOutput<F>> {
  const list: SchemaField[] = Object.entries(fields).map(([property, schema]) => ({
    property,
    key: opts.keys?.[property as keyof F] ?? toSnakeCase(property),
    schema,
  }));
  const known = list.map((f) => f.key);
  return new Schema({
    type: 'section',
    absent: { kind: 'required' },
    secret: false,
    checks: [],
    children: { kind: 'object', fields: list },
    parse: (v, path, ctx, node) => {
      if (!isSection(v)) {
        report(ctx, path, 'error', `must be a section (a mapping of keys to values), got ${show(v, node)}`);
        return INVALID;
      }
      const bad = reportUnknownKeys(v, known, path, ctx, 'keys');
      const out: Record<string, unknown> = {};
      const invalid = new Set<string>();
      for (const f of list) {
        const raw = Object.hasOwn(v, f.key) ? v[f.key] : undefined;
        const p = [...path, f.key];
        const r = parseField(f.schema, raw, p, ctx);
        if (r === INVALID) invalid.add(f.property);
        else if (r !== undefined) out[f.property] = r;
      }
      if (bad || invalid.size > 0) return new Partial(Object.freeze(out), invalid);
      return Object.freeze(out);
    },
  });
}

/**
 * A section holding exactly one of several named blocks (`upstream_authority { disk { … } }`); the output is
 * `{ type, config }` with `type` the key chosen. Option names are used as written (snake_case).
 *
 * @example
 * ```ts
 * variant({ https_web: object({}), https_spiffe: object({ endpointSpiffeId: spiffeId() }) });
 * ```
 */
export function variant<F extends Record<string, AnySchema>>(options: F): Schema<VariantOutput<F>> {
  const list: SchemaField[] = Object.entries(options).map(([key, schema]) => ({
    key,
    property: key,
    schema,
  }));
  const known = list.map((o) => o.key);
  return new Schema({
    type: `exactly one of: ${known.join(', ')}`,
    absent: { kind: 'required' },
    secret: false,
    checks: [],
    children: { kind: 'variant', options: list },
    parse: (v, path, ctx, node) => {
      if (!isSection(v)) {
        report(
          ctx,
          path,
          'error',
          `must be a section with exactly one of ${known.join(', ')}, got ${show(v, node)}`,
        );
        return INVALID;
      }
      const bad = reportUnknownKeys(v, known, path, ctx, 'options');
      const present = list.filter((o) => Object.hasOwn(v, o.key));
      if (present.length !== 1) {
        if (present.length === 0 && !bad)
          report(ctx, path, 'error', `must set exactly one of ${known.join(', ')}`);
        if (present.length > 1) {
          report(
            ctx,
            path,
            'error',
            `must set exactly one of ${known.join(', ')}, got ${present.map((o) => o.key).join(' and ')}`,
          );
        }
        return INVALID;
      }
      const chosen = present[0] as SchemaField;
      const raw = v[chosen.key];
      const p = [...path, chosen.key];
      const r = parseField(chosen.schema, raw, p, ctx);
      if (r === INVALID || bad) return INVALID;
      return Object.freeze({ type: chosen.key, config: r });
    },
  });
}

/** Options of {@link record}. */
export interface RecordOptions {
  /** How the docs describe keys (`trust domain`). */
  readonly keyType?: string;
  /** Validates a key; returns an error message or `undefined` when the key is fine. */
  readonly checkKey?: (key: string) => string | undefined;
}

/**
 * A section whose keys are chosen by the operator (`federates_with { "a.org" { … } }`), as a `ReadonlyMap`.
 *
 * @example
 * ```ts
 * record(object({ bundleEndpointUrl: url({ schemes: ['https'] }) }), { keyType: 'trust domain' });
 * ```
 */
export function record<S extends AnySchema>(
  value: S,
  opts: RecordOptions = {},
): Schema<ReadonlyMap<string, Infer<S>>> {
  const keyType = opts.keyType ?? 'name';
  return new Schema({
    type: `map of ${keyType} to ${value.info.type}`,
    absent: { kind: 'required' },
    secret: false,
    checks: [],
    children: { kind: 'map', keyType, value },
    parse: (v, path, ctx, node) => {
      if (!isSection(v)) {
        report(ctx, path, 'error', `must be a section keyed by ${keyType}, got ${show(v, node)}`);
        return INVALID;
      }
      let bad = false;
      const out = new Map<string, unknown>();
      for (const [k, raw] of Object.entries(v)) {
        const p = [...path, k];
        const keyErr = opts.checkKey?.(k);
        if (keyErr !== undefined) {
          report(ctx, p, 'error', keyErr);
          bad = true;
        }
        const r = parseField(value, raw, p, ctx);
        if (r === INVALID) bad = true;
        else out.set(k, r);
      }
      return bad ? INVALID : out;
    },
  });
}

/** Result of {@link validate}: the typed value when no error was found, and every issue (errors and warnings). */
export type ValidateResult<T> =
  | { readonly ok: true; readonly value: T; readonly issues: readonly ConfigIssue[] }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Options of {@link validate}. */
export interface ValidateOptions {
  /** Paths (rendered) whose values came from environment variables or flags, mapped to that origin. */
  readonly origins?: ReadonlyMap<string, string>;
}

/**
 * Validates an untyped value against a schema, collecting every issue.
 *
 * @example
 * ```ts
 * const r = validate(object({ bindPort: port() }), { bind_port: 0 });
 * // r.ok === false; r.issues[0] = { path: 'bind_port', message: 'must be at least 1, got 0', severity: 'error' }
 * ```
 */
export function validate<T>(
  schema: Schema<T, boolean>,
  raw: unknown,
  opts: ValidateOptions = {},
): ValidateResult<T> {
  const ctx: ParseContext = { issues: [], origins: opts.origins ?? new Map() };
  const v =
    raw === undefined || raw === null
      ? Schema.parseAbsent(schema, [], ctx)
      : Schema.parsePresent(schema, raw, [], ctx);
  const issues = Object.freeze([...ctx.issues]);
  if (v === INVALID || issues.some((i) => i.severity === 'error')) return { ok: false, issues };
  return { ok: true, value: v as T, issues };
}

/** The text written in place of secret values by {@link redactConfig}. */
export const REDACTED = '[redacted]';

/**
 * Returns a JSON-friendly copy of a validated configuration with every value of a `secret()` field replaced by
 * `"[redacted]"`, for the "Configured" log line.
 *
 * @example
 * ```ts
 * log.info({ config: redactConfig(serverConfigSchema, config) }, 'Configured');
 * ```
 */
export function redactConfig(schema: AnySchema, value: unknown): unknown {
  if (value === undefined) return undefined;
  if (Schema.isSecret(schema)) return REDACTED;
  const ch = schema.info.children;
  if (ch === undefined) return toPlain(value);
  switch (ch.kind) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const v = value as Record<string, unknown>;
      for (const f of ch.fields)
        if (v[f.property] !== undefined) out[f.key] = redactConfig(f.schema, v[f.property]);
      return out;
    }
    case 'variant': {
      const v = value as { type: string; config: unknown };
      const opt = ch.options.find((o) => o.key === v.type);
      return { [v.type]: opt === undefined ? REDACTED : redactConfig(opt.schema, v.config) };
    }
    case 'list':
      return (value as unknown[]).map((x) => redactConfig(ch.item, x));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, x] of value as ReadonlyMap<string, unknown>) out[k] = redactConfig(ch.value, x);
      return out;
    }
  }
}

function toPlain(v: unknown): unknown {
  if (v instanceof Duration || v instanceof TrustDomain || v instanceof SpiffeId || v instanceof URL)
    return v.toString();
  if (Array.isArray(v)) return v.map(toPlain);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, toPlain(x)]));
  if (isSection(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toPlain(x)]));
  return v;
}
