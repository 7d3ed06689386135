/**
 * SPIFFE federation (go-spiffe `federation`): fetch and watch a foreign trust domain's bundle from its
 * bundle endpoint (`https_web` or `https_spiffe`), and serve a bundle endpoint from `node:https`.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Federation.md
 * @module
 */
export {
  DEFAULT_FETCH_TIMEOUT_MS,
  DEFAULT_MAX_BUNDLE_BYTES,
  DEFAULT_MAX_REDIRECTS,
  type FetchBundleOptions,
  fetchBundle,
  type SpiffeAuth,
} from './fetch-bundle.js';
export { type BundleHandler, createBundleHandler, type SpiffeBundleSource } from './handler.js';
export {
  type BundleWatcher,
  DEFAULT_REFRESH_SECONDS,
  MIN_REFRESH_SECONDS,
  type WatchBundleOptions,
  watchBundle,
} from './watch-bundle.js';
