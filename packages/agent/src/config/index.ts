/** tessera-agent configuration: schema, validation and loading. @module */
export {
  AGENT_ENV_PREFIX,
  type AgentConfig,
  type LoadAgentConfigOptions,
  loadAgentAdminSocketPath,
  loadAgentConfig,
  type NodeAttestorConfig,
  redactAgentConfig,
  type TrustBootstrap,
  type ValidateAgentConfigOptions,
  validateAgentConfig,
} from './load.js';
export { type AgentConfigFile, agentAdminSocketSchema, agentConfigSchema } from './schema.js';
