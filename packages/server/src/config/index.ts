/** tessera-server configuration: schema, validation and loading. @module */
export {
  type LoadServerConfigOptions,
  loadServerConfig,
  redactServerConfig,
  SERVER_ENV_PREFIX,
  type ServerConfig,
  type ValidateServerConfigOptions,
  validateServerConfig,
} from './load.js';
export { KEY_TYPES, type KeyType, type ServerConfigFile, serverConfigSchema } from './schema.js';
