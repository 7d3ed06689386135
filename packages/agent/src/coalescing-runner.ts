/**
 * A single-flight runner for the agent's periodic work (the identity manager's sync round, the SVIDStore pass).
 *
 * @module
 */

/** Options of {@link CoalescingRunner}. */
export interface CoalescingRunnerOptions {
  /** One round of work. */
  readonly round: () => Promise<void>;
  /** True once the owner stopped: no round starts or repeats. */
  readonly stopped: () => boolean;
  /** Gets an error a round threw (the runner goes on). */
  readonly onError: (err: unknown) => void;
  /** Called after the last round of each run (to schedule the next one). */
  readonly onIdle?: () => void;
}

/**
 * Runs `round` one at a time. A call while a round runs does not start another one alongside: it makes the
 * running one repeat once more after it finishes, and gets the promise of that run.
 *
 * @example
 * ```ts
 * const runner = new CoalescingRunner({ round: () => sync(), stopped: () => closed, onError: (err) => log.error({ err }) });
 * await runner.run();
 * ```
 */
export class CoalescingRunner {
  readonly #opts: CoalescingRunnerOptions;
  #running: Promise<void> | undefined;
  #rerun = false;

  constructor(opts: CoalescingRunnerOptions) {
    this.#opts = opts;
  }

  /** The current run, if one is under way. */
  get running(): Promise<void> | undefined {
    return this.#running;
  }

  /** Resolves once the current run is over (at once when none is); never rejects. */
  async settled(): Promise<void> {
    await this.#running?.catch(() => {});
  }

  /** Starts a run, or asks the current one for one more round; resolves when the run is over. */
  run(): Promise<void> {
    if (this.#opts.stopped()) return Promise.resolve();
    if (this.#running !== undefined) {
      this.#rerun = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#rerun = false;
        try {
          await this.#opts.round();
        } catch (err) {
          this.#opts.onError(err);
        }
      } while (this.#rerun && !this.#opts.stopped());
    })().finally(() => {
      this.#running = undefined;
      this.#opts.onIdle?.();
    });
    return this.#running;
  }
}
