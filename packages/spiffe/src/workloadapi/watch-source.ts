/**
 * Shared logic of the sources: run one or more watches and wait until each delivered its first update,
 * a watch fails terminally, or the caller's signal aborts; the lifecycle (client ownership, listeners,
 * close) and the lifecycle methods every source exposes.
 *
 * @module
 * @internal
 */
import { WorkloadApiError } from '../errors.js';

/** One watch of a source. `ready()` marks this watch as delivered; it returns true when the source was already fully initialized (so listeners must be told). */
export type SourceWatch = (stop: AbortSignal, ready: () => boolean) => Promise<void>;

/** Parameters of {@link startWatch}. */
export interface StartWatchParams {
  /** Aborted when the source closes; ends the watches. */
  readonly stop: AbortSignal;
  /** Aborts only the wait for the first update. */
  readonly signal?: AbortSignal;
  /** The watches; all must deliver before start-up completes. */
  readonly runs: readonly SourceWatch[];
}

/**
 * Starts the watches; resolves once each has delivered a first update.
 *
 * @throws the terminal error of a watch, or the signal's reason.
 * @internal
 */
export function startWatch(params: StartWatchParams): Promise<void> {
  const { stop, signal, runs } = params;
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const pending = new Set<number>(runs.map((_, i) => i));
    let initialized = false;
    let settled = false;
    const onAbort = (): void => settle(() => reject(signal?.reason));
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      fn();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    runs.forEach((run, i) => {
      const ready = (): boolean => {
        if (initialized) return true;
        pending.delete(i);
        if (pending.size === 0) {
          initialized = true;
          settle(resolve);
        }
        return false;
      };
      run(stop, ready).then(
        () => {
          // The watch ended because the source closed (or the client did) before start-up finished.
          if (!initialized) {
            settle(() =>
              reject(
                signal?.aborted
                  ? signal.reason
                  : new WorkloadApiError(
                      'ERR_SOURCE_CLOSED',
                      'workloadapi: watch ended before the first update',
                    ),
              ),
            );
          }
        },
        (err: unknown) => {
          // After start-up a terminal failure leaves the last good state in place.
          if (!initialized) settle(() => reject(err));
        },
      );
    });
  });
}

/**
 * Starts a new source's watches ({@link startWatch}); if start-up fails, closes the source's lifecycle (stopping
 * the watches and closing a client the source owns) before rethrowing.
 *
 * @throws the terminal error of a watch, or the signal's reason.
 * @internal
 */
export async function startSource(
  life: SourceLifecycle<{ close(): void }>,
  signal: AbortSignal | undefined,
  runs: readonly SourceWatch[],
): Promise<void> {
  try {
    await startWatch({ stop: life.stop, ...(signal === undefined ? {} : { signal }), runs });
  } catch (err) {
    life.close();
    throw err;
  }
}

/**
 * The lifecycle shared by the sources: the client (and whether the source owns it), the signal that stops
 * the watches, the update listeners and the closed flag.
 *
 * @internal
 */
export class SourceLifecycle<C extends { close(): void }> {
  readonly client: C;
  readonly #owned: boolean;
  readonly #stop = new AbortController();
  readonly #listeners = new Set<() => void>();
  #closed = false;

  constructor(client: C, owned: boolean) {
    this.client = client;
    this.#owned = owned;
  }

  /** Aborted by {@link close}; ends the watches. */
  get stop(): AbortSignal {
    return this.#stop.signal;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Calls every listener; a failing listener stops neither the others nor the watch. */
  notify(): void {
    for (const l of [...this.#listeners]) {
      try {
        l();
      } catch {
        // Deliberately ignored: see above.
      }
    }
  }

  onUpdate(listener: () => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('workloadapi: onUpdate expects a function');
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** Stops the watches, drops the listeners and closes the client if the source created it. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    this.#listeners.clear();
    if (this.#owned) this.client.close();
  }
}

/**
 * The lifecycle methods every source exposes (update listeners, close, `await using`), over the source's
 * {@link SourceLifecycle}.
 *
 * @internal
 */
export abstract class LiveSource {
  readonly #life: SourceLifecycle<{ close(): void }>;

  protected constructor(life: SourceLifecycle<{ close(): void }>) {
    this.#life = life;
  }

  /**
   * Registers a listener called after every update (not for the initial one); a source that runs several
   * watches calls it after an update of any of them.
   *
   * @returns A function that unregisters the listener.
   * @example
   * ```ts
   * const off = source.onUpdate(() => reloadTls());
   * ```
   */
  onUpdate(listener: () => void): () => void {
    return this.#life.onUpdate(listener);
  }

  /**
   * Stops the watches and, if the source created its client, closes it. Idempotent.
   *
   * @example
   * ```ts
   * await source.close();
   * ```
   */
  async close(): Promise<void> {
    this.#life.close();
  }

  /** Closes the source (`await using`). */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
