import {
  type CallOptions,
  type Channel,
  type ChannelCredentials,
  type ChannelOptions,
  type ClientDuplexStream,
  type ClientReadableStream,
  type ClientWritableStream,
  Metadata,
  makeGenericClientConstructor,
  type ServiceDefinition,
  type ServiceError,
  status,
} from '@grpc/grpc-js';

/**
 * The minimal logger `toGrpcError` writes to: pino's `Logger` satisfies it (`log.warn({ err }, 'msg')`).
 */
export interface ApiLogger {
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/**
 * An error carrying a gRPC status, ready to hand to a grpc-js callback or `call.destroy()`.
 *
 * `details` is what the peer sees; it never contains internal error text (see {@link toGrpcError}).
 * `field` is set for InvalidArgument errors built by {@link invalidArgument}.
 */
export class GrpcStatusError extends Error implements ServiceError {
  /** The gRPC status code. */
  readonly code: status;
  /** The status message sent to the peer. */
  readonly details: string;
  /** Trailing metadata sent with the status (empty by default). */
  readonly metadata: Metadata;
  /** The request field at fault, for InvalidArgument errors. */
  readonly field: string | undefined;

  /**
   * Builds a status error.
   *
   * @param code - gRPC status code; must not be OK.
   * @param details - message sent to the peer.
   * @param options - optional `field` and `cause` (the cause is never sent).
   * @throws {RangeError} when `code` is OK or not a gRPC status code.
   * @example
   * ```ts
   * callback(new GrpcStatusError(status.NOT_FOUND, 'entry not found'));
   * ```
   */
  constructor(code: status, details: string, options: { field?: string; cause?: unknown } = {}) {
    if (!Number.isInteger(code) || code <= status.OK || code > status.UNAUTHENTICATED) {
      throw new RangeError(`api: ${String(code)} is not a gRPC error status code`);
    }
    super(details, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GrpcStatusError';
    this.code = code;
    this.details = details;
    this.metadata = new Metadata();
    this.field = options.field;
  }
}

/**
 * Tells whether a value is a {@link GrpcStatusError}.
 *
 * @example
 * ```ts
 * if (isGrpcStatusError(err)) callback(err);
 * ```
 */
export function isGrpcStatusError(value: unknown): value is GrpcStatusError {
  return value instanceof GrpcStatusError;
}

/** Codes whose status message may carry the underlying error's text (it describes the caller's own input). */
const DETAIL_CODES: ReadonlySet<status> = new Set([
  status.INVALID_ARGUMENT,
  status.ALREADY_EXISTS,
  status.FAILED_PRECONDITION,
  status.OUT_OF_RANGE,
]);

/** Codes that denote a server-side fault: logged at error level. */
const SERVER_FAULT_CODES: ReadonlySet<status> = new Set([
  status.INTERNAL,
  status.UNKNOWN,
  status.DATA_LOSS,
  status.UNAVAILABLE,
]);

/**
 * Logs a failed RPC and builds the status error to return (STYLE §5), the one place handlers map errors.
 *
 * - InvalidArgument, AlreadyExists, FailedPrecondition and OutOfRange: the peer sees `msg: <err.message>` (the
 *   detail describes the caller's own input; make `msg` name the field, e.g. `invalid spiffe_id`).
 * - Every other code (Internal, NotFound, PermissionDenied, ...): the peer sees only `msg`; the error detail
 *   goes to the log alone.
 * - Server faults (Internal, Unknown, DataLoss, Unavailable) are logged at error level, the rest at warn.
 *
 * When `err` is already a {@link GrpcStatusError} (e.g. from {@link invalidArgument}), its code and details
 * are kept and `code`/`msg` only label the log line.
 *
 * @param log - logger (pino's Logger fits).
 * @param code - gRPC status code (not OK).
 * @param msg - lowercase message for the peer and the log.
 * @param err - the underlying error, logged under `err`.
 * @returns the error to pass to the grpc-js callback.
 * @throws {RangeError} when `code` is OK or not a gRPC status code.
 * @example
 * ```ts
 * try {
 *   await ds.createEntry(entry);
 * } catch (err) {
 *   return callback(toGrpcError(log, status.INTERNAL, 'failed to create entry', err));
 * }
 * ```
 */
export function toGrpcError(log: ApiLogger, code: status, msg: string, err?: unknown): GrpcStatusError {
  const built =
    err instanceof GrpcStatusError
      ? err
      : new GrpcStatusError(
          code,
          DETAIL_CODES.has(code) && err !== undefined ? `${msg}: ${errorText(err)}` : msg,
          {
            cause: err,
          },
        );
  const fields: Record<string, unknown> = { code: status[built.code] };
  if (err !== undefined) fields.err = err;
  if (built.field !== undefined) fields.field = built.field;
  if (SERVER_FAULT_CODES.has(built.code)) log.error(fields, msg);
  else log.warn(fields, msg);
  return built;
}

/**
 * Builds an InvalidArgument error that names the request field at fault (details `invalid <field>: <msg>`).
 *
 * Validation code throws it; the handler passes it through {@link toGrpcError}, which keeps its details.
 *
 * @param field - request field path, e.g. `entries[0].spiffe_id`.
 * @param msg - what is wrong with it, lowercase.
 * @example
 * ```ts
 * if (req.csr.length === 0) throw invalidArgument('params.csr', 'must not be empty');
 * ```
 */
export function invalidArgument(field: string, msg: string): GrpcStatusError {
  return new GrpcStatusError(status.INVALID_ARGUMENT, `invalid ${field}: ${msg}`, { field });
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : String(err);
}

// ---------------------------------------------------------------------------------------------------------------
// Typed clients

/** The shape of one method of a ts-proto grpc-js service definition. */
export interface MethodDefinitionLike {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly requestSerialize: (value: never) => Buffer;
  readonly responseDeserialize: (value: Buffer) => unknown;
}

/** A ts-proto grpc-js service definition (e.g. `EntryService`). */
export type ServiceDefinitionLike = { readonly [method: string]: MethodDefinitionLike };

type RequestOf<M> = M extends { requestSerialize: (value: infer Q) => Buffer } ? Q : never;
type ResponseOf<M> = M extends { responseDeserialize: (value: Buffer) => infer R } ? R : never;

/** Options of one call made through a {@link TypedClient}. */
export interface CallOpts {
  /** Request metadata. */
  metadata?: Metadata;
  /** Absolute deadline (Date or epoch milliseconds). */
  deadline?: Date | number;
  /** Cancels the call when aborted. */
  signal?: AbortSignal;
}

/** Client-side signature of one method: unary calls return promises, streams return grpc-js streams. */
export type ClientMethod<M> = M extends { requestStream: false; responseStream: false }
  ? (request: RequestOf<M>, options?: CallOpts) => Promise<ResponseOf<M>>
  : M extends { requestStream: false; responseStream: true }
    ? (request: RequestOf<M>, options?: CallOpts) => ClientReadableStream<ResponseOf<M>>
    : M extends { requestStream: true; responseStream: false }
      ? (options?: CallOpts) => { call: ClientWritableStream<RequestOf<M>>; response: Promise<ResponseOf<M>> }
      : (options?: CallOpts) => ClientDuplexStream<RequestOf<M>, ResponseOf<M>>;

/** A client for service `S` built by {@link makeClient}. */
export type TypedClient<S extends ServiceDefinitionLike> = { readonly [K in keyof S]: ClientMethod<S[K]> } & {
  /** Closes the channel; pending calls fail with Cancelled/Unavailable. */
  close(): void;
  /** Resolves when the channel is ready, rejects after `deadline`. */
  waitForReady(deadline: Date | number): Promise<void>;
  /** The underlying grpc-js channel. */
  getChannel(): Channel;
};

interface RawClient {
  close(): void;
  getChannel(): Channel;
  waitForReady(deadline: Date | number, cb: (err?: Error) => void): void;
  [method: string]: unknown;
}

type RawFn = (...args: unknown[]) => unknown;

interface Cancellable {
  cancel(): void;
}

/**
 * Builds a typed grpc-js client for a ts-proto service definition.
 *
 * Unary methods return promises (rejecting with the grpc-js `ServiceError`); streaming methods return the
 * grpc-js stream objects. Client-streaming methods return `{ call, response }`.
 *
 * @param service - ts-proto service definition, e.g. `EntryService`.
 * @param target - grpc-js target, e.g. `unix:///tmp/tessera-server/private/api.sock` or `127.0.0.1:8081`.
 * @param credentials - channel credentials (`credentials.createInsecure()` for Unix sockets, SPIFFE mTLS
 *   credentials from `@tessera/spiffe/tls/grpc` over TCP).
 * @param options - grpc-js channel options.
 * @example
 * ```ts
 * const entries = makeClient(EntryService, 'unix:///tmp/api.sock', credentials.createInsecure());
 * const { count } = await entries.countEntries({ filter: undefined });
 * entries.close();
 * ```
 */
export function makeClient<S extends ServiceDefinitionLike>(
  service: S,
  target: string,
  credentials: ChannelCredentials,
  options: ChannelOptions = {},
): TypedClient<S> {
  const methods = Object.keys(service);
  if (methods.length === 0) throw new TypeError('api: service definition has no methods');
  const Ctor = makeGenericClientConstructor(service as unknown as ServiceDefinition, serviceName(service));
  const raw = new Ctor(target, credentials, options) as unknown as RawClient;
  const client: Record<string, unknown> = {
    close: () => raw.close(),
    getChannel: () => raw.getChannel(),
    waitForReady: (deadline: Date | number) =>
      new Promise<void>((resolve, reject) =>
        raw.waitForReady(deadline, (err) => (err === undefined ? resolve() : reject(err))),
      ),
  };
  for (const name of methods) {
    const def = service[name] as MethodDefinitionLike;
    const fn = (raw[name] as RawFn).bind(raw);
    if (!def.requestStream && !def.responseStream) {
      client[name] = (request: unknown, opts: CallOpts = {}) =>
        new Promise((resolve, reject) => {
          const call = fn(
            request,
            opts.metadata ?? new Metadata(),
            callOptions(opts),
            (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)),
          ) as Cancellable;
          linkSignal(opts.signal, call);
        });
    } else if (!def.requestStream) {
      client[name] = (request: unknown, opts: CallOpts = {}) => {
        const call = fn(request, opts.metadata ?? new Metadata(), callOptions(opts)) as Cancellable;
        linkSignal(opts.signal, call);
        return call;
      };
    } else if (!def.responseStream) {
      client[name] = (opts: CallOpts = {}) => {
        let settle: (err: unknown, res: unknown) => void = () => {};
        const response = new Promise((resolve, reject) => {
          settle = (err, res) => (err ? reject(err) : resolve(res));
        });
        const call = fn(opts.metadata ?? new Metadata(), callOptions(opts), (err: unknown, res: unknown) =>
          settle(err, res),
        ) as Cancellable;
        linkSignal(opts.signal, call);
        return { call, response };
      };
    } else {
      client[name] = (opts: CallOpts = {}) => {
        const call = fn(opts.metadata ?? new Metadata(), callOptions(opts)) as Cancellable;
        linkSignal(opts.signal, call);
        return call;
      };
    }
  }
  return client as TypedClient<S>;
}

function serviceName(service: ServiceDefinitionLike): string {
  const first = Object.values(service)[0] as MethodDefinitionLike;
  const match = /^\/([^/]+)\//.exec(first.path);
  if (match === null) throw new TypeError(`api: malformed method path "${first.path}"`);
  return match[1] as string;
}

function callOptions(opts: CallOpts): Partial<CallOptions> {
  return opts.deadline === undefined ? {} : { deadline: opts.deadline };
}

function linkSignal(signal: AbortSignal | undefined, call: Cancellable): void {
  if (signal === undefined) return;
  if (signal.aborted) {
    call.cancel();
    return;
  }
  signal.addEventListener('abort', () => call.cancel(), { once: true });
}
