/**
 * Retry backoff for Workload API watches.
 *
 * @module
 */

/** One backoff sequence, owned by a single watch. */
export interface Backoff {
  /** Returns the delay in milliseconds before the next retry and advances the sequence. */
  next(): number;
  /** Restarts the sequence (called whenever the watch receives a message). */
  reset(): void;
}

/** Makes a fresh {@link Backoff} for each watch. */
export interface BackoffStrategy {
  /** Returns a new backoff sequence, starting from its first delay. */
  newBackoff(): Backoff;
}

/** Options of {@link linearBackoff}. */
export interface LinearBackoffOptions {
  /** Step in milliseconds: the n-th retry waits `n * step`. Default 1000. */
  readonly step?: number;
  /** Upper bound of a delay in milliseconds. Default 30000. */
  readonly max?: number;
}

/**
 * The default backoff strategy, as in go-spiffe: linear delays of 1 s, 2 s, 3 s … capped at 30 s.
 *
 * @param options - Step and cap in milliseconds.
 * @returns A strategy that makes independent linear sequences.
 * @throws {RangeError} when `step` or `max` is not a positive finite number, or `max < step`.
 * @example
 * ```ts
 * const b = linearBackoff().newBackoff();
 * b.next(); // 1000
 * b.next(); // 2000
 * b.reset();
 * b.next(); // 1000
 * ```
 */
export function linearBackoff(options: LinearBackoffOptions = {}): BackoffStrategy {
  const step = options.step ?? 1000;
  const max = options.max ?? 30_000;
  if (!Number.isFinite(step) || step <= 0) throw new RangeError('workloadapi: backoff step must be positive');
  if (!Number.isFinite(max) || max < step) throw new RangeError('workloadapi: backoff max must be >= step');
  return {
    newBackoff(): Backoff {
      let n = 0;
      return {
        next(): number {
          n += 1;
          return Math.min(n * step, max);
        },
        reset(): void {
          n = 0;
        },
      };
    },
  };
}

/**
 * Waits `ms` milliseconds, or until `signal` aborts (then resolves early without throwing).
 *
 * @param ms - Delay in milliseconds.
 * @param signal - Ends the wait early.
 * @example
 * ```ts
 * await abortableSleep(1000, controller.signal);
 * ```
 */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
