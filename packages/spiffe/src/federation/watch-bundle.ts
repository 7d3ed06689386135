import { setTimeout as delay } from 'node:timers/promises';
import type { SpiffeBundle } from '../bundle/spiffe-bundle.js';
import { FederationError } from '../errors.js';
import { TrustDomain } from '../spiffeid/index.js';
import {
  type FetchBundleOptions,
  fetchWith,
  parseEndpointUrl,
  type ResolvedFetchOptions,
  resolveFetchOptions,
} from './fetch-bundle.js';

/** Refresh interval used when a bundle carries no refresh hint (BND-15, FED-03): 5 minutes. */
export const DEFAULT_REFRESH_SECONDS = 300;
/** Shortest delay between two fetches of a watch, whatever the hint or `nextRefresh` say (FED-18). */
export const MIN_REFRESH_SECONDS = 1;

/** Receives the results of {@link watchBundle}. */
export interface BundleWatcher {
  /** Called with each bundle that differs from the previous good one (never twice for the same bundle). */
  onUpdate(bundle: SpiffeBundle): void;
  /** Called when a fetch fails, or when an older bundle (lower `spiffe_sequence`) is served. */
  onError(err: Error): void;
  /**
   * Seconds to wait before the next fetch, given the refresh hint (seconds) of the latest good bundle, 0 when
   * none is known. Default: the hint, or {@link DEFAULT_REFRESH_SECONDS} when it is 0. The result is never
   * allowed below {@link MIN_REFRESH_SECONDS}.
   */
  nextRefresh?(refreshHintSeconds: number): number;
}

/** Options of {@link watchBundle}. */
export interface WatchBundleOptions extends FetchBundleOptions {
  /** Stops the watch: the promise returned by {@link watchBundle} then resolves. Required. */
  readonly signal: AbortSignal;
  /**
   * Waits `ms` milliseconds or until `signal` aborts. Default: a timer. Tests substitute it to avoid waiting
   * on wall-clock time.
   */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Waits `ms` milliseconds, or until `signal` aborts; never rejects. */
function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch(() => {});
}

function delaySeconds(watcher: BundleWatcher, latest: SpiffeBundle | undefined): number {
  const hint = latest?.refreshHint ?? 0;
  let s: number;
  if (watcher.nextRefresh !== undefined) {
    s = watcher.nextRefresh(hint);
  } else {
    s = hint > 0 ? hint : DEFAULT_REFRESH_SECONDS;
  }
  return Number.isFinite(s) && s >= MIN_REFRESH_SECONDS ? s : MIN_REFRESH_SECONDS;
}

function report(watcher: BundleWatcher, err: Error): void {
  try {
    watcher.onError(err);
  } catch {
    // A failing error handler must not end the watch.
  }
}

/**
 * Keeps the bundle of trust domain `td` current by fetching it from `url` until `opts.signal` aborts
 * (go-spiffe `WatchBundle`). Each fetch is a {@link fetchBundle} with the same options, always to the
 * configured URL (a redirect target is never remembered). Then:
 * - a bundle equal to the previous good one is ignored (no `onUpdate`);
 * - a bundle whose `spiffe_sequence` is lower than the previous good one's is not taken and is reported to
 *   `onError` (FED-04: order by sequence; without a sequence, the most recent fetch wins);
 * - otherwise `onUpdate(bundle)`.
 * The next fetch happens after `nextRefresh(hint)` seconds, also after a failure (no tight retry loop,
 * FED-18). With `spiffeAuth` for an endpoint of `td` itself (a self-serving endpoint), the first fetch is
 * authenticated with `spiffeAuth.bundleSource` (the bootstrap bundle) and later ones with the latest good
 * bundle (FED-16).
 *
 * @throws {TypeError} when `td`, `watcher` or an option is invalid (synchronously checked; the returned
 *   promise rejects)
 * @throws {FederationError} ERR_FEDERATION_FAILED for an invalid URL
 * @example
 * ```ts
 * const ac = new AbortController();
 * void watchBundle(td, 'https://partner.example/bundle', {
 *   onUpdate: (b) => bundles.add(b),
 *   onError: (err) => log.warn(err.message),
 * }, { signal: ac.signal });
 * ```
 */
export async function watchBundle(
  td: TrustDomain,
  url: string | URL,
  watcher: BundleWatcher,
  opts: WatchBundleOptions,
): Promise<void> {
  if (!(td instanceof TrustDomain)) throw new TypeError('federation: expected a TrustDomain');
  if (
    typeof watcher !== 'object' ||
    watcher === null ||
    typeof watcher.onUpdate !== 'function' ||
    typeof watcher.onError !== 'function'
  ) {
    throw new TypeError('federation: watcher cannot be nil: it needs onUpdate() and onError()');
  }
  if (watcher.nextRefresh !== undefined && typeof watcher.nextRefresh !== 'function') {
    throw new TypeError('federation: watcher.nextRefresh must be a function');
  }
  if (typeof opts !== 'object' || opts === null || !(opts.signal instanceof AbortSignal)) {
    throw new TypeError('federation: watchBundle needs opts.signal (an AbortSignal) to stop');
  }
  if (opts.sleep !== undefined && typeof opts.sleep !== 'function') {
    throw new TypeError('federation: opts.sleep must be a function');
  }
  const base = resolveFetchOptions(opts);
  const u = parseEndpointUrl(url);
  const { signal } = opts;
  const sleep = opts.sleep ?? defaultSleep;
  const selfServing = base.spiffeAuth?.endpointId.memberOf(td) === true;

  let latest: SpiffeBundle | undefined;
  while (!signal.aborted) {
    let o: ResolvedFetchOptions = base;
    if (selfServing && latest !== undefined && base.spiffeAuth !== undefined) {
      o = { ...base, spiffeAuth: { bundleSource: latest, endpointId: base.spiffeAuth.endpointId } };
    }
    try {
      const bundle = await fetchWith(td, u, o, signal);
      if (signal.aborted) break;
      const prev = latest;
      if (prev !== undefined && bundle.equals(prev)) {
        // Unchanged.
      } else if (
        prev?.sequenceNumber !== undefined &&
        bundle.sequenceNumber !== undefined &&
        bundle.sequenceNumber < prev.sequenceNumber
      ) {
        report(
          watcher,
          new FederationError(
            'ERR_FEDERATION_FAILED',
            `federation: ignoring bundle for "${td.name}" with sequence ${bundle.sequenceNumber} older than ${prev.sequenceNumber}`,
          ),
        );
      } else {
        latest = bundle;
        try {
          watcher.onUpdate(bundle);
        } catch (err) {
          report(watcher, err instanceof Error ? err : new Error(String(err)));
        }
      }
    } catch (err) {
      if (signal.aborted) break;
      report(watcher, err instanceof Error ? err : new Error(String(err)));
    }
    await sleep(delaySeconds(watcher, latest) * 1000, signal);
  }
}
