/**
 * A per-client token bucket for the public serverless endpoint.
 *
 * @module
 */
import type { ServerlessClock } from './types.js';

/** Options of {@link ClientRateLimiter}. */
export interface ClientRateLimiterOptions {
  /** Sustained requests per second per client; 0 disables. */
  readonly perSecond: number;
  /** Bucket size (burst). Default: twice `perSecond`, at least 1. */
  readonly burst?: number;
  readonly clock: ServerlessClock;
  /** Most clients tracked; the oldest are forgotten beyond it. Default 100,000. */
  readonly maxClients?: number;
}

/** Token buckets keyed by client address. */
export class ClientRateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #clock: ServerlessClock;
  readonly #max: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(o: ClientRateLimiterOptions) {
    if (!(o.perSecond >= 0)) throw new RangeError('serverless: perSecond must be >= 0');
    this.#rate = o.perSecond;
    this.#burst = o.burst ?? Math.max(1, o.perSecond * 2);
    this.#clock = o.clock;
    this.#max = o.maxClients ?? 100_000;
  }

  /** Takes one token for `client`; false when the client is over its limit. */
  allow(client: string): boolean {
    if (this.#rate === 0) return true;
    const now = this.#clock.now().getTime();
    let b = this.#buckets.get(client);
    if (b === undefined) {
      if (this.#buckets.size >= this.#max) {
        const oldest = this.#buckets.keys().next().value;
        if (oldest !== undefined) this.#buckets.delete(oldest);
      }
      b = { tokens: this.#burst, at: now };
    } else {
      this.#buckets.delete(client);
      b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate);
      b.at = now;
    }
    this.#buckets.set(client, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
