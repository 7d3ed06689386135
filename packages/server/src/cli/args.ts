/**
 * Command-line flag parsing for `tessera-server`: kebab-case flags (`--spiffe-id`), SPIRE's Go-style spellings
 * (`-spiffeID`), `--flag value` and `--flag=value`, repeatable flags, and booleans (`--admin`,
 * `--admin=false`). Every problem is a {@link CliUsageError} naming the flag.
 *
 * @module
 */
import { SpiffeError } from '@tessera/spiffe/errors';

/**
 * A command-line usage error: an unknown flag, a missing or malformed value. The CLI prints its message and exits
 * with status 1 without contacting the server.
 *
 * @example
 * ```ts
 * throw new CliUsageError('entry create: --spiffe-id is required');
 * ```
 */
export class CliUsageError extends SpiffeError {
  /** @param message - lowercase description naming the flag at fault. */
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_CLI_USAGE', message, options);
    this.name = 'CliUsageError';
  }
}

/** How a flag takes its value: one string, a repeatable string, or a boolean switch. */
export type FlagKind = 'string' | 'strings' | 'bool';

/** One flag a command accepts. */
export interface FlagSpec {
  /** Canonical kebab-case name without dashes (`spiffe-id`). */
  readonly name: string;
  /** Other accepted spellings without dashes, e.g. SPIRE's `spiffeID`. */
  readonly aliases?: readonly string[];
  /** Value kind. */
  readonly kind: FlagKind;
  /** One-line help text. */
  readonly description: string;
  /** Name of the value in help output (`ID`, `SECONDS`). */
  readonly valueName?: string;
}

/** Parsed flags: values keyed by canonical name, plus positional arguments. */
export interface ParsedFlags {
  /** Values of `string` flags (the last occurrence wins). */
  readonly strings: ReadonlyMap<string, string>;
  /** Values of `strings` flags, in order. */
  readonly lists: ReadonlyMap<string, readonly string[]>;
  /** Values of `bool` flags. */
  readonly bools: ReadonlyMap<string, boolean>;
  /** Arguments that are not flags. */
  readonly positionals: readonly string[];
}

const TRUE_WORDS = new Set(['true', '1', 'yes']);
const FALSE_WORDS = new Set(['false', '0', 'no']);

/**
 * Parses `argv` against the given flag specifications.
 *
 * @param specs - flags the command accepts.
 * @param argv - arguments after the command words.
 * @param context - command name used in error messages (`entry create`).
 * @throws {CliUsageError} ERR_CLI_USAGE on an unknown flag, a flag without a value, a string flag given
 *   twice, or a malformed boolean.
 * @example
 * ```ts
 * const f = parseFlags([{ name: 'spiffe-id', aliases: ['spiffeID'], kind: 'string', description: '' }],
 *   ['-spiffeID', 'spiffe://example.org/w'], 'entry create');
 * f.strings.get('spiffe-id'); // 'spiffe://example.org/w'
 * ```
 */
export function parseFlags(
  specs: readonly FlagSpec[],
  argv: readonly string[],
  context: string,
): ParsedFlags {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    for (const n of [s.name, ...(s.aliases ?? [])]) {
      if (byName.has(n)) throw new TypeError(`cli: flag name "${n}" declared twice in ${context}`);
      byName.set(n, s);
    }
  }
  const strings = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const bools = new Map<string, boolean>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const body = arg.startsWith('--') ? arg.slice(2) : arg.slice(1);
    const eq = body.indexOf('=');
    const name = eq === -1 ? body : body.slice(0, eq);
    const inline = eq === -1 ? undefined : body.slice(eq + 1);
    const spec = byName.get(name);
    if (spec === undefined) {
      throw new CliUsageError(`${context}: unknown flag ${JSON.stringify(arg.split('=')[0])}`);
    }
    const display = `--${spec.name}`;
    if (spec.kind === 'bool') {
      if (inline === undefined) {
        bools.set(spec.name, true);
      } else if (TRUE_WORDS.has(inline.toLowerCase())) {
        bools.set(spec.name, true);
      } else if (FALSE_WORDS.has(inline.toLowerCase())) {
        bools.set(spec.name, false);
      } else {
        throw new CliUsageError(`${context}: ${display} takes true or false, got ${JSON.stringify(inline)}`);
      }
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new CliUsageError(`${context}: ${display} needs a value`);
      value = next;
      i++;
    }
    if (spec.kind === 'strings') {
      const list = lists.get(spec.name) ?? [];
      list.push(value);
      lists.set(spec.name, list);
    } else {
      if (strings.has(spec.name)) throw new CliUsageError(`${context}: ${display} given more than once`);
      strings.set(spec.name, value);
    }
  }
  return { strings, lists, bools, positionals };
}

/**
 * Renders flag help lines (`  --spiffe-id ID   SPIFFE ID of the workload (also -spiffeID)`).
 *
 * @example
 * ```ts
 * process.stdout.write(flagHelp(specs));
 * ```
 */
export function flagHelp(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const left = `--${s.name}${s.kind === 'bool' ? '' : ` ${s.valueName ?? 'VALUE'}`}`;
    const repeat = s.kind === 'strings' ? ' (repeatable)' : '';
    const also =
      s.aliases && s.aliases.length > 0 ? ` (also ${s.aliases.map((a) => `-${a}`).join(', ')})` : '';
    return [left, `${s.description}${repeat}${also}`] as const;
  });
  const width = Math.max(0, ...rows.map(([l]) => l.length)) + 2;
  return rows.map(([l, r]) => `  ${l.padEnd(width)}${r}\n`).join('');
}
