/**
 * Configuration loading and validation: YAML/JSON files, environment and flag overrides, a declarative schema
 * language that reports every problem at once, and documentation generated from schemas.
 *
 * @module
 */

export {
  findPortConflicts,
  type HealthChecksConfig,
  healthChecksSchema,
  type ListenerSpec,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
  logFormatSchema,
  logLevelSchema,
  type MetricsConfig,
  metricsSchema,
  resolveMetrics,
  telemetrySchema,
} from './common-schemas.js';
export {
  type ComponentConfigValidator,
  effectiveMetrics,
  type LoadComponentConfigOptions,
  loadComponentConfig,
  type MetricsKeys,
  observabilityListeners,
} from './component.js';
export { type ConfigDocRow, describeConfigSchema, renderConfigDocs } from './docs.js';
export {
  type ConfigIssue,
  type ConfigIssueSeverity,
  type ConfigPathSegment,
  ConfigValidationError,
  formatConfigIssues,
  formatConfigPath,
} from './issue.js';
export {
  type ConfigResult,
  type LoadRawConfigOptions,
  loadRawConfig,
  type RawConfig,
  unwrapConfigResult,
} from './load.js';
export {
  type AnySchema,
  type ArrayOptions,
  array,
  boolean,
  byteSize,
  type CheckReport,
  type DurationOptions,
  duration,
  type EnumOptions,
  enumOf,
  fileMode,
  host,
  type Infer,
  type IntegerOptions,
  integer,
  MAX_SOCKET_PATH_BYTES,
  type ObjectOptions,
  type ObjectOutput,
  object,
  type ParseContext,
  path,
  port,
  REDACTED,
  type RecordOptions,
  record,
  redactConfig,
  Schema,
  type SchemaChildren,
  type SchemaField,
  type SchemaInfo,
  type StringOptions,
  socketPath,
  spiffeId,
  string,
  toSnakeCase,
  trustDomain,
  type UrlOptions,
  url,
  type ValidateOptions,
  type ValidateResult,
  type VariantOutput,
  validate,
  variant,
} from './schema.js';
export {
  type AppliedOverrides,
  applyOverrides,
  type ConfigFormat,
  type ConfigOverride,
  envOverrides,
  flagOverrides,
  MAX_CONFIG_BYTES,
  type ParseConfigTextOptions,
  parseConfigText,
  readConfigFile,
} from './source.js';
export { Duration, parseByteSize, parseFileMode } from './values.js';
