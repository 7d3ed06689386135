/**
 * Per-caller token buckets (SPIRE limits node attestation per caller address and signing per caller).
 *
 * @module
 */

/** Configuration of {@link RateLimiter}. */
export interface RateLimiterConfig {
  /** Tokens added per second; 0 disables the limiter. */
  readonly perSecond: number;
  /** Bucket size; default `max(perSecond, 1)`. */
  readonly burst?: number;
  /** Clock in milliseconds; default `Date.now`. */
  readonly nowMs?: () => number;
  /** Buckets kept before idle ones are dropped; default 100,000. */
  readonly maxKeys?: number;
}

interface Bucket {
  tokens: number;
  atMs: number;
}

/**
 * A token bucket per key.
 *
 * @example
 * ```ts
 * const limiter = new RateLimiter({ perSecond: 500 });
 * if (!limiter.take('spiffe://example.org/spire/agent/x', 10)) throw resourceExhausted();
 * ```
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(config: RateLimiterConfig) {
    if (!Number.isFinite(config.perSecond) || config.perSecond < 0) {
      throw new RangeError(`ratelimit: perSecond must be a non-negative number, got ${config.perSecond}`);
    }
    this.#rate = config.perSecond;
    this.#burst = config.burst ?? Math.max(config.perSecond, 1);
    this.#now = config.nowMs ?? Date.now;
    this.#maxKeys = config.maxKeys ?? 100_000;
  }

  /** Whether the limiter is on. */
  get enabled(): boolean {
    return this.#rate > 0;
  }

  /**
   * Takes `count` tokens from `key`'s bucket; false (and nothing taken) when there are not enough. A request
   * larger than the bucket is allowed when the bucket is full, so a batch is never refused forever.
   */
  take(key: string, count = 1): boolean {
    if (this.#rate === 0) return true;
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      if (this.#buckets.size >= this.#maxKeys) this.#evict(now);
      b = { tokens: this.#burst, atMs: now };
      this.#buckets.set(key, b);
    } else {
      b.tokens = Math.min(this.#burst, b.tokens + ((now - b.atMs) / 1000) * this.#rate);
      b.atMs = now;
    }
    const need = Math.min(count, this.#burst);
    if (b.tokens < need) return false;
    b.tokens -= count;
    return true;
  }

  #evict(now: number): void {
    for (const [k, b] of this.#buckets) {
      if (b.tokens + ((now - b.atMs) / 1000) * this.#rate >= this.#burst) this.#buckets.delete(k);
    }
    if (this.#buckets.size >= this.#maxKeys) this.#buckets.clear();
  }
}
