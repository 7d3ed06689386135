/** Text forms of configuration values: durations, byte sizes and file modes. @module */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * A non-negative span of time, parsed from text such as `"1h"`, `"90s"`, `"720h"`, `"1h30m"` or `"500ms"`.
 * Immutable; `toString()` gives the canonical text form and `toJSON()` the same, so logged configs read well.
 *
 * @example
 * ```ts
 * Duration.parse('1h30m').seconds; // 5400
 * Duration.fromSeconds(90).toString(); // '1m30s'
 * ```
 */
export class Duration {
  readonly #ms: number;

  private constructor(ms: number) {
    this.#ms = ms;
  }

  /**
   * Builds a duration from milliseconds.
   *
   * @throws {RangeError} for a negative, fractional or non-finite number
   */
  static fromMilliseconds(ms: number): Duration {
    if (!Number.isSafeInteger(ms) || ms < 0) {
      throw new RangeError(
        `config: duration must be a non-negative integer number of milliseconds, got ${ms}`,
      );
    }
    return new Duration(ms);
  }

  /**
   * Builds a duration from seconds.
   *
   * @throws {RangeError} for a negative or non-finite number
   */
  static fromSeconds(s: number): Duration {
    return Duration.fromMilliseconds(Math.round(s * 1000));
  }

  /**
   * Parses the text form: one or more `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d` (24 h), for
   * instance `"90s"`, `"1h30m"`, `"1.5h"`. The whole text must match; the result is rounded to milliseconds.
   *
   * @returns the duration, or `undefined` when the text is not a duration
   */
  static parse(text: string): Duration | undefined {
    if (typeof text !== 'string' || text.length === 0 || text.length > 64) return undefined;
    if (text === '0') return new Duration(0);
    let total = 0;
    DURATION_PART.lastIndex = 0;
    let pos = 0;
    while (pos < text.length) {
      DURATION_PART.lastIndex = pos;
      const m = DURATION_PART.exec(text);
      if (m === null) return undefined;
      total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
      pos = DURATION_PART.lastIndex;
    }
    const ms = Math.round(total);
    return Number.isSafeInteger(ms) ? new Duration(ms) : undefined;
  }

  /** The duration in milliseconds. */
  get milliseconds(): number {
    return this.#ms;
  }

  /** The duration in seconds (possibly fractional). */
  get seconds(): number {
    return this.#ms / 1000;
  }

  /** Compares two durations: negative, zero or positive. */
  compare(other: Duration): number {
    return this.#ms - other.#ms;
  }

  /** Tells whether both durations are equally long. */
  equals(other: Duration | null | undefined): boolean {
    return other instanceof Duration && other.#ms === this.#ms;
  }

  /** Canonical text form, largest units first (`"1h30m"`, `"500ms"`, `"0s"`). */
  toString(): string {
    if (this.#ms === 0) return '0s';
    let rest = this.#ms;
    let out = '';
    for (const [unit, size] of [
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1000],
      ['ms', 1],
    ] as const) {
      const n = Math.floor(rest / size);
      if (n > 0) {
        out += `${n}${unit}`;
        rest -= n * size;
      }
    }
    return out;
  }

  /** Same as {@link Duration.toString}. */
  toJSON(): string {
    return this.toString();
  }
}

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * Parses a byte size: an integer number of bytes, or text such as `"512"`, `"64KiB"`, `"10MB"`, `"1.5GiB"`
 * (units B, kB/KB, MB, GB, TB in powers of 1000 and KiB, MiB, GiB, TiB in powers of 1024, case-insensitive).
 *
 * @returns the number of bytes, or `undefined` when the input is not a size
 * @example
 * ```ts
 * parseByteSize('64KiB'); // 65536
 * ```
 */
export function parseByteSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([A-Za-z]*)$/.exec(value.trim());
  if (m === null) return undefined;
  const unit = SIZE_UNITS[(m[2] as string).toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n)
    ? n
    : Number.isFinite(n) && n < Number.MAX_SAFE_INTEGER
      ? Math.round(n)
      : undefined;
}

/**
 * Parses a Unix file mode written in octal as text: `"0700"`, `"700"`, `"0o644"`. Numbers are refused because
 * YAML 1.2 reads `0700` as the decimal 700, which is never what was meant.
 *
 * @returns the mode (0..0o7777), or `undefined` when the input is not an octal mode string
 * @example
 * ```ts
 * parseFileMode('0750'); // 0o750
 * ```
 */
export function parseFileMode(value: string): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^(?:0o|0)?([0-7]{1,4})$/.exec(value);
  if (m === null) return undefined;
  return Number.parseInt(m[1] as string, 8);
}
