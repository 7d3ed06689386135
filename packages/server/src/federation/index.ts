/**
 * Federation in tessera-server: the bundle endpoint serving this trust domain's bundle, and the poller that
 * fetches federated trust domains' bundles into the datastore.
 *
 * @module
 */
export {
  type BundleEndpoint,
  type BundleEndpointConfig,
  type FederationLogger,
  startBundleEndpoint,
} from './bundle-endpoint.js';
export { relationshipsFromConfig } from './config.js';
export {
  createFederationPoller,
  DEFAULT_POLL_SECONDS,
  type FederationPoller,
  type FederationPollerConfig,
  UNKNOWN_BUNDLE_POLL_SECONDS,
} from './poller.js';
