/**
 * The agent's client of the tessera-server agent API.
 *
 * @module
 */
export {
  type AttestationResult,
  bundleFromApi,
  type ConvertedBundle,
  classifyServerError,
  DEFAULT_CALL_TIMEOUT_MS,
  ServerClient,
  type ServerClientConfig,
  type ServerErrorKind,
  type ServerTrust,
  serverIdOf,
  serverTarget,
} from './client.js';
