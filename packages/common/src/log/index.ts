/** pino logging with secret redaction, and the shared log field names. @module */
export { type LogField, LogFields } from './log-fields.js';
export {
  type CreateLoggerOptions,
  createLogger,
  createNullLogger,
  formatTextLine,
  LOG_REDACTED,
  type LogDestination,
  redactLogObject,
  SECRET_FIELD_NAMES,
  scrubString,
  serializeError,
  type TesseraLogger,
} from './logger.js';
