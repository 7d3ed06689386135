/**
 * The replay cache: every accepted platform token is recorded (by signing-input digest and by issuer + jti)
 * until it expires, so it is accepted once. `consume` checks and records in one synchronous step, so concurrent
 * requests with the same token cannot both win.
 *
 * @module
 */
import { TOKEN_LEEWAY_SECONDS } from './token.js';
import type { ServerlessClock } from './types.js';

/** Options of {@link ReplayCache}. */
export interface ReplayCacheOptions {
  readonly clock: ServerlessClock;
  /** Most tokens remembered at once; when full (after dropping expired ones) new tokens are refused. Default 1,000,000. */
  readonly maxEntries?: number;
}

/** Remembers accepted tokens until they expire. */
export class ReplayCache {
  readonly #clock: ServerlessClock;
  readonly #max: number;
  readonly #entries = new Map<string, number>();

  constructor(options: ReplayCacheOptions) {
    this.#clock = options.clock;
    this.#max = options.maxEntries ?? 1_000_000;
  }

  /** Number of remembered keys. */
  get size(): number {
    return this.#entries.size;
  }

  #sweep(now: number): void {
    for (const [k, until] of this.#entries) if (until <= now) this.#entries.delete(k);
  }

  /** Whether any of the keys was already consumed (and is not yet expired). */
  seen(keys: readonly string[]): boolean {
    const now = this.#clock.now().getTime();
    return keys.some((k) => (this.#entries.get(k) ?? -Infinity) > now);
  }

  /**
   * Records every token of a request, all or nothing.
   *
   * @returns false when any key was already consumed or the cache is full (nothing is recorded then)
   */
  consume(tokens: readonly { readonly replayKeys: readonly string[]; readonly expiresAt: Date }[]): boolean {
    const now = this.#clock.now().getTime();
    if (tokens.some((t) => this.seen(t.replayKeys))) return false;
    const count = tokens.reduce((n, t) => n + t.replayKeys.length, 0);
    if (this.#entries.size + count > this.#max) {
      this.#sweep(now);
      if (this.#entries.size + count > this.#max) return false;
    }
    for (const t of tokens) {
      const until = t.expiresAt.getTime() + TOKEN_LEEWAY_SECONDS * 1000;
      for (const k of t.replayKeys) this.#entries.set(k, until);
    }
    if (this.#entries.size % 1024 === 0) this.#sweep(now);
    return true;
  }
}
