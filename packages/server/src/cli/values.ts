/**
 * Parsing of flag values into API messages: SPIFFE IDs, selectors, TTLs, times and enumerations. Every failure is
 * a {@link CliUsageError} naming the flag and quoting the value.
 *
 * @module
 */
import type { Selector, SPIFFEID } from '@tessera/common/api';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import { CliUsageError } from './args.js';
import type { CommandContext } from './context.js';

/** Largest TTL in seconds (int32, the API's field type). */
export const MAX_TTL_SECONDS = 2 ** 31 - 1;

function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Parses a SPIFFE ID flag into the API message.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when the value is not a valid SPIFFE ID
 * @example
 * ```ts
 * parseIdValue('entry create', 'spiffe-id', 'spiffe://example.org/w'); // { trustDomain: 'example.org', path: '/w' }
 * ```
 */
export function parseIdValue(cmd: string, flag: string, value: string): SPIFFEID {
  try {
    const id = SpiffeId.fromString(value);
    return { trustDomain: id.trustDomain.name, path: id.path };
  } catch (err) {
    throw new CliUsageError(`${cmd}: invalid --${flag} ${JSON.stringify(value)}: ${why(err)}`, {
      cause: err,
    });
  }
}

/**
 * Parses a trust domain flag (`example.org` or `spiffe://example.org`) into its name.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when the value is not a valid trust domain
 * @example
 * ```ts
 * parseTrustDomainValue('bundle list', 'id', 'spiffe://a.org'); // 'a.org'
 * ```
 */
export function parseTrustDomainValue(cmd: string, flag: string, value: string): string {
  try {
    return TrustDomain.fromString(value).name;
  } catch (err) {
    throw new CliUsageError(`${cmd}: invalid --${flag} ${JSON.stringify(value)}: ${why(err)}`, {
      cause: err,
    });
  }
}

/**
 * Parses `type:value` selector text (the value may itself contain colons, as `unix:uid:1000`).
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when there is no colon, or the type or value is empty
 * @example
 * ```ts
 * parseSelectorValue('entry create', 'unix:uid:1000'); // { type: 'unix', value: 'uid:1000' }
 * ```
 */
export function parseSelectorValue(cmd: string, text: string, flag = 'selector'): Selector {
  const i = text.indexOf(':');
  if (i <= 0 || i === text.length - 1) {
    throw new CliUsageError(`${cmd}: invalid --${flag} ${JSON.stringify(text)}: must be "type:value"`);
  }
  return { type: text.slice(0, i), value: text.slice(i + 1) };
}

const DURATION = /^(\d+)(s|m|h|d)?$/;
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a TTL: whole seconds (`3600`) or a number with a unit (`90s`, `15m`, `1h`, `7d`), from `min` to
 * 2^31-1 seconds.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when malformed or out of range
 * @example
 * ```ts
 * parseTtlValue('entry create', 'x509-svid-ttl', '1h'); // 3600
 * ```
 */
export function parseTtlValue(cmd: string, flag: string, text: string, min = 0): number {
  const m = DURATION.exec(text.trim());
  const seconds = m === null ? Number.NaN : Number(m[1]) * (UNIT_SECONDS[m[2] ?? 's'] ?? Number.NaN);
  if (!Number.isSafeInteger(seconds)) {
    throw new CliUsageError(
      `${cmd}: invalid --${flag} ${JSON.stringify(text)}: must be whole seconds or a duration like "90s", "15m", "1h"`,
    );
  }
  if (seconds < min || seconds > MAX_TTL_SECONDS) {
    throw new CliUsageError(
      `${cmd}: invalid --${flag} ${JSON.stringify(text)}: must be from ${min} to ${MAX_TTL_SECONDS} seconds`,
    );
  }
  return seconds;
}

/**
 * Parses a point in time: Unix seconds (`1735689600`) or an RFC 3339 timestamp (`2025-01-01T00:00:00Z`), into
 * Unix seconds.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when malformed, negative, or after year 9999
 * @example
 * ```ts
 * parseTimeValue('entry create', 'entry-expiry', '2030-01-01T00:00:00Z'); // 1893456000n
 * ```
 */
export function parseTimeValue(cmd: string, flag: string, text: string): bigint {
  let seconds: number;
  if (/^\d+$/.test(text)) {
    seconds = Number(text);
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    seconds = Math.floor(Date.parse(text) / 1000);
  } else {
    seconds = Number.NaN;
  }
  if (!Number.isSafeInteger(seconds) || seconds > 253402300799) {
    throw new CliUsageError(
      `${cmd}: invalid --${flag} ${JSON.stringify(text)}: must be Unix seconds or an RFC 3339 time before year 10000`,
    );
  }
  return BigInt(seconds);
}

/**
 * Checks a value against a list of allowed words.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when the value is not one of `allowed`
 * @example
 * ```ts
 * parseEnumValue('entry show', 'match', 'any', ['exact', 'subset', 'superset', 'any'] as const); // 'any'
 * ```
 */
export function parseEnumValue<T extends string>(
  cmd: string,
  flag: string,
  text: string,
  allowed: readonly T[],
): T {
  if ((allowed as readonly string[]).includes(text)) return text as T;
  throw new CliUsageError(
    `${cmd}: invalid --${flag} ${JSON.stringify(text)}: must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`,
  );
}

/**
 * Returns a required string flag.
 *
 * @throws {CliUsageError} ERR_CLI_USAGE when the flag is absent or empty
 * @example
 * ```ts
 * const id = requireFlag(ctx, 'entry-id');
 * ```
 */
export function requireFlag(ctx: CommandContext, flag: string): string {
  const v = ctx.flags.strings.get(flag);
  if (v === undefined || v === '') throw new CliUsageError(`${ctx.name}: --${flag} is required`);
  return v;
}

/**
 * Fails when positional arguments were given (no command takes any).
 *
 * @throws {CliUsageError} ERR_CLI_USAGE naming the first unexpected argument
 * @example
 * ```ts
 * noPositionals(ctx);
 * ```
 */
export function noPositionals(ctx: CommandContext): void {
  const first = ctx.flags.positionals[0];
  if (first !== undefined)
    throw new CliUsageError(`${ctx.name}: unexpected argument ${JSON.stringify(first)}`);
}

/**
 * A SPIFFE ID message as text (`spiffe://td/path`).
 *
 * @example
 * ```ts
 * idText({ trustDomain: 'example.org', path: '/w' }); // 'spiffe://example.org/w'
 * ```
 */
export function idText(id: SPIFFEID | undefined): string {
  return id === undefined ? '' : `spiffe://${id.trustDomain}${id.path}`;
}
