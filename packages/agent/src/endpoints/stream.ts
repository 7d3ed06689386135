/**
 * Helpers shared by the Workload API and SDS handlers: gRPC status errors, the latest-state stream pump
 * (full-state messages under backpressure), and the minimal logger the endpoints write to.
 *
 * @module
 */
import { Metadata, type ServerErrorResponse, status } from '@grpc/grpc-js';

/** The logger the endpoints write to; a pino logger satisfies it. */
export interface EndpointsLogger {
  /** Logs at debug level. */
  debug(fields: Record<string, unknown>, msg: string): void;
  /** Logs at info level. */
  info(fields: Record<string, unknown>, msg: string): void;
  /** Logs at warn level. */
  warn(fields: Record<string, unknown>, msg: string): void;
  /** Logs at error level. */
  error(fields: Record<string, unknown>, msg: string): void;
}

/** A logger that discards everything. */
export const nullLogger: EndpointsLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** A gRPC status to end a call with (what grpc-js accepts as an error). */
export type GrpcStatusError = ServerErrorResponse & { code: status };

/**
 * Builds a gRPC status error with `code` and `details` (the message sent to the caller).
 *
 * @example
 * ```ts
 * callback(grpcError(status.INVALID_ARGUMENT, 'audience must be specified'));
 * ```
 */
export function grpcError(code: status, details: string): GrpcStatusError {
  const err = new Error(details) as GrpcStatusError;
  err.code = code;
  err.details = details;
  err.metadata = new Metadata();
  return err;
}

/** Tells whether `v` is a status error built by {@link grpcError} (or any object with a numeric code). */
export function isGrpcStatusError(v: unknown): v is GrpcStatusError {
  return v instanceof Error && typeof (v as { code?: unknown }).code === 'number';
}

const MALFORMED = Symbol('tessera.endpoints.malformed-request');

/** What a request deserializer from {@link markMalformedRequests} returns for bytes it cannot decode. */
interface MalformedRequest {
  readonly [MALFORMED]: string;
}

/**
 * Wraps a request deserializer so that it never throws: undecodable bytes become a marker that the handler
 * answers with `InvalidArgument` ({@link malformedRequestError}). grpc-js itself would end such a call with
 * `Internal`, which tells the client the fault is the agent's.
 */
export function markMalformedRequests<T>(deserialize: (bytes: Buffer) => T): (bytes: Buffer) => T {
  return (bytes) => {
    try {
      return deserialize(bytes);
    } catch (err) {
      const reason = err instanceof Error ? err.message : 'cannot decode';
      return { [MALFORMED]: reason } satisfies MalformedRequest as unknown as T;
    }
  };
}

/**
 * The `InvalidArgument` status for a request the deserializer could not decode (see
 * {@link markMalformedRequests}), or undefined for a decoded one. Handlers call it before reading any field.
 *
 * @example
 * ```ts
 * const bad = malformedRequestError(call.request);
 * if (bad !== undefined) return callback(bad);
 * ```
 */
export function malformedRequestError(request: unknown): GrpcStatusError | undefined {
  if (typeof request !== 'object' || request === null || !(MALFORMED in request)) return undefined;
  const reason = (request as MalformedRequest)[MALFORMED];
  return grpcError(status.INVALID_ARGUMENT, `malformed request: ${reason.slice(0, 200)}`);
}

/** The part of a grpc-js server stream the pump drives. */
export interface WritableCall<T> {
  write(message: T): boolean;
  on(event: 'drain', listener: () => void): unknown;
  readonly cancelled: boolean;
}

/**
 * Writes full-state messages to a server stream without unbounded buffering: while the stream is not
 * drained (a client that stopped reading), only the latest state is kept and written on `drain`. Every
 * message is the complete state, so dropping superseded ones loses nothing.
 */
export class LatestStatePump<T> {
  readonly #call: WritableCall<T>;
  #blocked = false;
  #pending: T | undefined;
  #hasPending = false;
  #stopped = false;

  constructor(call: WritableCall<T>) {
    this.#call = call;
    call.on('drain', () => {
      this.#blocked = false;
      if (this.#hasPending) {
        const msg = this.#pending as T;
        this.#pending = undefined;
        this.#hasPending = false;
        this.push(msg);
      }
    });
  }

  /** Sends `message` now, or keeps it as the one to send once the stream drains. */
  push(message: T): void {
    if (this.#stopped || this.#call.cancelled) return;
    if (this.#blocked) {
      this.#pending = message;
      this.#hasPending = true;
      return;
    }
    if (!this.#call.write(message)) this.#blocked = true;
  }

  /** Stops writing (the stream ended); pending state is dropped. */
  stop(): void {
    this.#stopped = true;
    this.#pending = undefined;
    this.#hasPending = false;
  }
}

/** Why a stream ends when the attested process is gone (the client reconnects and is attested again). */
export const MSG_CALLER_EXITED = 'the attested caller process has exited';
