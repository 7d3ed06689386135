/**
 * pino loggers for the server, agent and helper, with secrets removed before anything is written: private keys,
 * tokens (join tokens, JWTs), passwords, `authorization` headers and CSR/SVID bytes never reach the output.
 *
 * @module
 */
import { KeyObject } from 'node:crypto';
import {
  type DestinationStream,
  destination,
  type Logger,
  type LoggerOptions,
  levels,
  pino,
  stdTimeFunctions,
} from 'pino';
import type { LogFormat, LogLevel } from '../config/common-schemas.js';

/** The text written in place of a secret. */
export const LOG_REDACTED = '[redacted]';

/** Field names (compared lowercase, without `_` and `-`) whose values are always redacted, at any depth. */
export const SECRET_FIELD_NAMES: ReadonlySet<string> = new Set([
  'privatekey',
  'privatekeypem',
  'key',
  'keypem',
  'keyder',
  'token',
  'jointoken',
  'jwt',
  'jwtsvid',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'password',
  'passwd',
  'secret',
  'clientsecret',
  'csr',
  'csrs',
  'svid',
  'svids',
  'x509svid',
  'x509svids',
  'certchain',
  'payload',
  'challenge',
  'response',
]);

const PEM_PRIVATE_KEY =
  /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g;
const JWT_LIKE = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const MAX_DEPTH = 8;

function normalizeKey(k: string): string {
  return k.toLowerCase().replace(/[_-]/g, '');
}

/**
 * Removes secrets from a string: PEM private key blocks and JWT-shaped tokens become `[redacted]`.
 *
 * @example
 * ```ts
 * scrubString('token eyJhbGciOi.eyJzdWIiOi.sig'); // 'token [redacted]'
 * ```
 */
export function scrubString(s: string): string {
  if (!s.includes('PRIVATE KEY') && !s.includes('eyJ')) return s;
  return s.replace(PEM_PRIVATE_KEY, LOG_REDACTED).replace(JWT_LIKE, LOG_REDACTED);
}

/**
 * Returns a copy of a log object with secrets removed: values of {@link SECRET_FIELD_NAMES} keys, byte arrays,
 * key objects, and PEM private keys or JWTs inside strings, at any depth (deeper than 8 levels is cut).
 *
 * @example
 * ```ts
 * redactLogObject({ join_token: 'abc', spiffe_id: 'spiffe://a/b' }); // { join_token: '[redacted]', spiffe_id: … }
 * ```
 */
export function redactLogObject(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Uint8Array || value instanceof ArrayBuffer || value instanceof KeyObject)
    return LOG_REDACTED;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_DEPTH) return '[too deep]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => redactLogObject(v, depth + 1, seen));
  if (value instanceof Error) return redactLogObject(serializeError(value, depth), depth, seen);
  if (value instanceof Map) return redactLogObject(Object.fromEntries(value), depth, seen);
  if (value instanceof Date || value instanceof URL) return value.toString();
  const proto = Object.getPrototypeOf(value) as unknown;
  if (
    proto !== Object.prototype &&
    proto !== null &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    return redactLogObject((value as { toJSON(): unknown }).toJSON(), depth, seen);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_FIELD_NAMES.has(normalizeKey(k)) && v !== undefined && v !== null
        ? LOG_REDACTED
        : redactLogObject(v, depth + 1, seen);
  }
  return out;
}

/**
 * Serializes an error for a log line: `type` (class name), `message`, `code` when present, `stack`, and
 * `cause` (recursively, up to the depth limit). Secrets inside are scrubbed by {@link redactLogObject}.
 */
export function serializeError(err: Error, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  if (err.stack !== undefined) out.stack = err.stack;
  if (err.cause instanceof Error && depth < MAX_DEPTH) out.cause = serializeError(err.cause, depth + 1);
  return out;
}

/** Where log lines go: a pino destination, any object with `write(line)`, or a file descriptor (1 = stdout). */
export type LogDestination = DestinationStream | { write(line: string): unknown } | number;

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** Lowest level written (default `info`). */
  readonly level?: LogLevel;
  /** `json` (default): one JSON object per line; `text`: `time level msg key=value…`. */
  readonly format?: LogFormat;
  /** Where lines go (default: stdout). */
  readonly destination?: LogDestination;
  /** Fields added to every line (e.g. `{ service: 'tessera-server' }`). */
  readonly base?: Readonly<Record<string, unknown>>;
}

/** A logger; child loggers per subsystem come from `logger.child({ subsystem: 'ca' })`. */
export type TesseraLogger = Logger;

function textValue(v: unknown): string {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}

/**
 * Formats one pino JSON line as text: `2024-05-01T10:00:00.000Z INFO Configured subsystem=ca key=value`.
 *
 * @example
 * ```ts
 * formatTextLine('{"level":30,"time":0,"msg":"Started"}'); // '1970-01-01T00:00:00.000Z INFO Started'
 * ```
 */
export function formatTextLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line.slice(0, -1) : line;
  }
  const { level, time, msg, ...rest } = o;
  const lv = typeof level === 'number' ? (levels.labels[level] ?? String(level)) : String(level);
  const when = typeof time === 'number' ? new Date(time).toISOString() : String(time ?? '');
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${textValue(v)}`);
  return [when, lv.toUpperCase(), typeof msg === 'string' ? msg : '', ...fields]
    .filter((x) => x !== '')
    .join(' ');
}

function toStream(d: LogDestination | undefined, format: LogFormat): DestinationStream {
  const base: DestinationStream =
    d === undefined || typeof d === 'number'
      ? destination({ dest: d ?? 1, sync: true })
      : (d as DestinationStream);
  if (format === 'json') return base;
  return { write: (line: string) => base.write(`${formatTextLine(line)}\n`) };
}

/**
 * Creates the process logger: pino with secrets redacted from every field (and from messages), ISO times,
 * errors serialized under `err`, and `level` as a label.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: 'debug', format: 'json' });
 * log.child({ [LogFields.subsystem]: 'ca' }).info({ [LogFields.trustDomain]: 'example.org' }, 'CA prepared');
 * ```
 */
export function createLogger(opts: CreateLoggerOptions = {}): TesseraLogger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: opts.base === undefined ? null : { ...opts.base },
    timestamp: stdTimeFunctions.epochTime,
    messageKey: 'msg',
    serializers: { err: (e: unknown) => (e instanceof Error ? serializeError(e) : e) },
    errorKey: 'err',
    redact: {
      paths: [
        'authorization',
        'headers.authorization',
        'req.headers.authorization',
        'req.headers.cookie',
        '*.authorization',
      ],
      censor: LOG_REDACTED,
    },
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (b) => redactLogObject(b) as Record<string, unknown>,
      log: (o) => redactLogObject(o) as Record<string, unknown>,
    },
    hooks: {
      logMethod(args, method) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? scrubString(a) : a)) as Parameters<
          typeof method
        >;
        method.apply(this, scrubbed);
      },
    },
  };
  const format = opts.format ?? 'json';
  const logger = pino(options, toStream(opts.destination, format));
  // Child bindings bypass formatters.log: scrub them too. pino builds children with Object.create(parent), so
  // every descendant inherits this override.
  const child = logger.child;
  logger.child = function scrubbedChild(this: Logger, bindings: Record<string, unknown>, childOpts?: object) {
    return child.call(this, redactLogObject(bindings) as Record<string, unknown>, childOpts);
  } as typeof logger.child;
  return logger;
}

/** A logger that writes nothing (for tests and library defaults). */
export function createNullLogger(): TesseraLogger {
  return pino({ enabled: false });
}
