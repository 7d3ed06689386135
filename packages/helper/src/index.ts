/**
 * tessera-helper as a library: configuration, the helper, file rendering and process handling.
 *
 * @module
 */
export { main, parseArgs } from './cli.js';
export {
  type ConfigFormat,
  type ConfigIssue,
  DEFAULT_AGENT_ADDRESS,
  formatFromFileName,
  type HealthChecksConfig,
  type HelperConfig,
  HelperConfigError,
  type JwtSvidOutput,
  loadHelperConfig,
  parseConfigText,
  type RemoteAttestationConfig,
  type RemoteAttestationInput,
  splitCommandLine,
  type TokenLocation,
  type ValidateOptions,
  validateHelperConfig,
  type X509Outputs,
} from './config/config.js';
export { type HclObject, type HclValue, parseHcl } from './config/hcl.js';
export {
  pickSvid,
  type RenderX509Options,
  renderJwtBundles,
  renderX509Files,
  writeFileAtomic,
  type X509Files,
} from './files.js';
export {
  type ExecTarget,
  Helper,
  type HelperClient,
  type HelperOptions,
  jwtRefreshDelay,
} from './helper.js';
export { createJsonLogger, type LogLevel } from './log.js';
export {
  type ExitStatus,
  exitCodeOf,
  ManagedProcess,
  type ManagedProcessOptions,
  signalPidFile,
} from './process.js';
export {
  type CreateRemoteClientOptions,
  createRemoteClient,
  MAX_TOKEN_BYTES,
  type ReadAttestationsOptions,
  readAttestations,
} from './remote.js';
