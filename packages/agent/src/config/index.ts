/** tessera-agent configuration: schema, validation and loading. @module */
export {
  AGENT_ENV_PREFIX,
  type AgentConfig,
  type LoadAgentConfigOptions,
  loadAgentConfig,
  type NodeAttestorConfig,
  redactAgentConfig,
  type TrustBootstrap,
  type ValidateAgentConfigOptions,
  validateAgentConfig,
} from './load.js';
export { type AgentConfigFile, agentConfigSchema } from './schema.js';
