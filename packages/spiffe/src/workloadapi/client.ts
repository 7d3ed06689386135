/**
 * The SPIFFE Workload API client: one-shot fetches, watches with backoff, JWT-SVID minting and
 * validation, over insecure gRPC (Unix socket or loopback TCP).
 *
 * @module
 */
import {
  Client,
  type ClientReadableStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import type { BundleSet } from '../bundle/index.js';
import { SpiffeError, WorkloadApiError } from '../errors.js';
import type { JwtSvid, JwtSvidParams, X509Svid } from '../svid/index.js';
import { type EndpointAddress, resolveEndpointAddress } from './address.js';
import { abortableSleep, type BackoffStrategy, linearBackoff } from './backoff.js';
import {
  type JWTBundlesResponse,
  SpiffeWorkloadAPIService as Service,
  type X509BundlesResponse,
  type X509SVIDResponse,
} from './gen/spiffe/workload.js';
import {
  parseJwtBundleMap,
  parseJwtSvids,
  parseX509BundleMap,
  parseX509Context,
  type X509Context,
} from './x509-context.js';

/** Minimal logger the library writes to; the default discards everything. */
export interface Logger {
  /** Logs a debug message. */
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Logs an informational message. */
  info(msg: string, fields?: Record<string, unknown>): void;
  /** Logs a warning. */
  warn(msg: string, fields?: Record<string, unknown>): void;
  /** Logs an error. */
  error(msg: string, fields?: Record<string, unknown>): void;
}

const noopLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Options of {@link WorkloadApiClient}. */
export interface WorkloadApiClientOptions {
  /** Endpoint URI (`unix:///path` or `tcp://ip:port`); defaults to `SPIFFE_ENDPOINT_SOCKET`. */
  readonly address?: string;
  /** Where to log watch failures; default: nothing is logged. */
  readonly logger?: Logger;
  /** Backoff between watch reconnections; default {@link linearBackoff} (1 s, 2 s … 30 s). */
  readonly backoff?: BackoffStrategy;
  /** Waits between reconnections; default a timer. Injected by tests to avoid real waiting. */
  readonly sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Clock used to check JWT-SVID expiry on responses; default the system clock. */
  readonly now?: () => Date;
}

/** Options of a single call. */
export interface CallOptions {
  /** Aborts the call; the promise then rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/** Options of a watch. */
export interface WatchOptions {
  /** Stops the watch; the returned promise then resolves. */
  readonly signal?: AbortSignal;
}

/** Receives X.509 context updates from {@link WorkloadApiClient.watchX509Context}. */
export interface X509ContextWatcher {
  /** Called with the complete current X.509 context on every update. */
  onX509ContextUpdate(context: X509Context): void;
  /** Called on every failure (stream status, invalid response); the watch goes on unless it is terminal. */
  onX509ContextWatchError?(err: SpiffeError): void;
}

/** Receives X.509 bundle updates from {@link WorkloadApiClient.watchX509Bundles}. */
export interface X509BundlesWatcher {
  /** Called with the complete current set of X.509 bundles on every update. */
  onX509BundlesUpdate(bundles: BundleSet): void;
  /** Called on every failure; the watch goes on unless it is terminal. */
  onX509BundlesWatchError?(err: SpiffeError): void;
}

/** Receives JWT bundle updates from {@link WorkloadApiClient.watchJwtBundles}. */
export interface JwtBundlesWatcher {
  /** Called with the complete current set of JWT bundles on every update. */
  onJwtBundlesUpdate(bundles: BundleSet): void;
  /** Called on every failure; the watch goes on unless it is terminal. */
  onJwtBundlesWatchError?(err: SpiffeError): void;
}

const STATUS_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';
}

/** Maps a gRPC status to a WorkloadApiError (WEP-10). */
function statusError(rpc: string, err: ServiceError): WorkloadApiError {
  const name = STATUS_NAMES[err.code] ?? String(err.code);
  const detail = err.details ? `: ${err.details}` : '';
  const message = `workloadapi: ${rpc} failed with ${name}${detail}`;
  switch (err.code) {
    case status.UNAVAILABLE:
      return new WorkloadApiError('ERR_WORKLOADAPI_UNAVAILABLE', message, { cause: err });
    case status.PERMISSION_DENIED:
      return new WorkloadApiError('ERR_WORKLOADAPI_PERMISSION_DENIED', message, { cause: err });
    case status.INVALID_ARGUMENT:
      return new WorkloadApiError('ERR_WORKLOADAPI_INVALID_ARGUMENT', message, { cause: err });
    case status.UNIMPLEMENTED:
      return new WorkloadApiError('ERR_WORKLOADAPI_UNIMPLEMENTED', message, { cause: err });
    default:
      return new WorkloadApiError('ERR_WORKLOADAPI_FAILED', message, { cause: err });
  }
}

function toError(rpc: string, err: unknown): SpiffeError {
  if (err instanceof SpiffeError) return err;
  if (isServiceError(err)) return statusError(rpc, err);
  return new WorkloadApiError('ERR_WORKLOADAPI_FAILED', `workloadapi: ${rpc} failed`, { cause: err });
}

/** Statuses after which a watch stops instead of reconnecting (§2.8: Unimplemented is not retried). */
function isTerminal(err: SpiffeError): boolean {
  if (!(err.cause !== undefined && isServiceError(err.cause))) return false;
  const code = err.cause.code;
  return code === status.CANCELLED || code === status.INVALID_ARGUMENT || code === status.UNIMPLEMENTED;
}

type StreamDef<Req, Res> = {
  readonly path: string;
  readonly requestSerialize: (value: Req) => Buffer;
  readonly responseDeserialize: (value: Buffer) => Res;
};

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('This operation was aborted', 'AbortError');
}

/**
 * A client of the SPIFFE Workload API. Every call carries the `workload.spiffe.io: true` header.
 *
 * @see https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE_Workload_API.md
 * @example
 * ```ts
 * const client = new WorkloadApiClient({ address: 'unix:///run/spire/agent.sock' });
 * const { svids, bundles } = await client.fetchX509Context();
 * client.close();
 * ```
 */
export class WorkloadApiClient {
  readonly #client: Client;
  readonly #address: EndpointAddress;
  readonly #logger: Logger;
  readonly #backoff: BackoffStrategy;
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly #now: (() => Date) | undefined;
  /** Aborted by close(): ends every watch and in-flight call. */
  readonly #closed = new AbortController();

  /**
   * Creates a client. No connection is made until the first call.
   *
   * @param options - Address, logger, backoff.
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_ADDRESS_INVALID when the address (or
   *   `SPIFFE_ENDPOINT_SOCKET`) is missing or invalid.
   * @example
   * ```ts
   * const client = new WorkloadApiClient(); // address from SPIFFE_ENDPOINT_SOCKET
   * ```
   */
  constructor(options: WorkloadApiClientOptions = {}) {
    this.#address = resolveEndpointAddress(options.address);
    this.#logger = options.logger ?? noopLogger;
    this.#backoff = options.backoff ?? linearBackoff();
    this.#sleep = options.sleep ?? abortableSleep;
    this.#now = options.now;
    this.#client = new Client(this.#address.target, credentials.createInsecure());
  }

  /**
   * Creates a client (same as the constructor; provided for symmetry with the sources).
   *
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_ADDRESS_INVALID when the address is missing or invalid.
   * @example
   * ```ts
   * const client = WorkloadApiClient.create({ address: 'unix:///run/spire/agent.sock' });
   * ```
   */
  static create(options: WorkloadApiClientOptions = {}): WorkloadApiClient {
    return new WorkloadApiClient(options);
  }

  /** The validated endpoint address this client dials. */
  get address(): EndpointAddress {
    return this.#address;
  }

  /** Whether {@link close} was called. */
  get closed(): boolean {
    return this.#closed.signal.aborted;
  }

  /**
   * Closes the connection, ending every watch (their promises resolve) and in-flight call. Idempotent.
   *
   * @example
   * ```ts
   * client.close();
   * ```
   */
  close(): void {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort();
    this.#client.close();
  }

  /**
   * Fetches the workload's X509-SVIDs and X.509 bundles (first message of `FetchX509SVID`).
   *
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_UNAVAILABLE / _PERMISSION_DENIED / _INVALID_ARGUMENT /
   *   _UNIMPLEMENTED / _FAILED on a gRPC status; ERR_WORKLOADAPI_INVALID_RESPONSE on an empty or malformed
   *   response (including a `spiffe_id` that differs from the certificate's ID).
   * @example
   * ```ts
   * const { svids, bundles } = await client.fetchX509Context();
   * ```
   */
  async fetchX509Context(options: CallOptions = {}): Promise<X509Context> {
    const res = await this.#first('FetchX509SVID', Service.fetchX509Svid, {}, options.signal);
    return parseX509Context(res);
  }

  /**
   * Fetches the workload's default X509-SVID (the first one of the response).
   *
   * @throws {WorkloadApiError} as {@link fetchX509Context}.
   * @example
   * ```ts
   * const svid = await client.fetchX509Svid();
   * ```
   */
  async fetchX509Svid(options: CallOptions = {}): Promise<X509Svid> {
    const res = await this.#first('FetchX509SVID', Service.fetchX509Svid, {}, options.signal);
    return parseX509Context(res, true).svids[0]!;
  }

  /**
   * Fetches all of the workload's X509-SVIDs; of SVIDs sharing a hint only the first is kept.
   *
   * @throws {WorkloadApiError} as {@link fetchX509Context}.
   * @example
   * ```ts
   * const svids = await client.fetchX509Svids();
   * ```
   */
  async fetchX509Svids(options: CallOptions = {}): Promise<X509Svid[]> {
    const res = await this.#first('FetchX509SVID', Service.fetchX509Svid, {}, options.signal);
    return [...parseX509Context(res).svids];
  }

  /**
   * Fetches the X.509 bundles the workload trusts (first message of `FetchX509Bundles`).
   *
   * @throws {WorkloadApiError} as {@link fetchX509Context}; ERR_WORKLOADAPI_INVALID_RESPONSE on an empty map.
   * @example
   * ```ts
   * const bundles = await client.fetchX509Bundles();
   * ```
   */
  async fetchX509Bundles(options: CallOptions = {}): Promise<BundleSet> {
    const res = await this.#first('FetchX509Bundles', Service.fetchX509Bundles, {}, options.signal);
    return parseX509BundleMap(res.bundles);
  }

  /**
   * Fetches the JWT bundles the workload trusts (first message of `FetchJWTBundles`).
   *
   * @throws {WorkloadApiError} as {@link fetchX509Context}; ERR_WORKLOADAPI_INVALID_RESPONSE on an empty map.
   * @example
   * ```ts
   * const bundles = await client.fetchJwtBundles();
   * ```
   */
  async fetchJwtBundles(options: CallOptions = {}): Promise<BundleSet> {
    const res = await this.#first('FetchJWTBundles', Service.fetchJwtBundles, {}, options.signal);
    return parseJwtBundleMap(res.bundles);
  }

  /**
   * Mints a JWT-SVID for an audience (unary `FetchJWTSVID`); the first token of the response is returned.
   *
   * @throws {TypeError} when `audience` is empty.
   * @throws {WorkloadApiError} a status code as {@link fetchX509Context}; ERR_WORKLOADAPI_INVALID_RESPONSE
   *   when the response is empty or a token does not parse for the requested audience.
   * @example
   * ```ts
   * const svid = await client.fetchJwtSvid({ audience: 'spiffe://example.org/db' });
   * ```
   */
  async fetchJwtSvid(params: JwtSvidParams, options: CallOptions = {}): Promise<JwtSvid> {
    return (await this.#fetchJwt(params, true, options))[0]!;
  }

  /**
   * Mints JWT-SVIDs for every identity of the workload (or the requested subject).
   *
   * @throws {TypeError} when `audience` is empty.
   * @throws {WorkloadApiError} as {@link fetchJwtSvid}.
   * @example
   * ```ts
   * const svids = await client.fetchJwtSvids({ audience: 'db' });
   * ```
   */
  async fetchJwtSvids(params: JwtSvidParams, options: CallOptions = {}): Promise<JwtSvid[]> {
    return this.#fetchJwt(params, false, options);
  }

  async #fetchJwt(params: JwtSvidParams, firstOnly: boolean, options: CallOptions): Promise<JwtSvid[]> {
    if (typeof params?.audience !== 'string' || params.audience === '') {
      throw new TypeError('workloadapi: audience must be a non-empty string');
    }
    const audience = [params.audience, ...(params.extraAudiences ?? [])];
    const res = await this.#unary(
      'FetchJWTSVID',
      Service.fetchJwtsvid,
      { audience, spiffeId: params.subject?.toString() ?? '' },
      options.signal,
    );
    return parseJwtSvids(res, audience, firstOnly, this.#now?.());
  }

  /**
   * Validates a JWT-SVID through the Workload API (`ValidateJWTSVID`), then parses it locally
   * (without signature check: the endpoint did that) for the audience.
   *
   * @throws {TypeError} when `token` or `audience` is empty.
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_INVALID_ARGUMENT when the endpoint refuses the token; other
   *   status codes as {@link fetchX509Context}; ERR_WORKLOADAPI_INVALID_RESPONSE when the token does not
   *   parse locally or the endpoint's `spiffe_id` differs from its subject.
   * @example
   * ```ts
   * const svid = await client.validateJwtSvid(token, 'spiffe://example.org/api');
   * ```
   */
  async validateJwtSvid(token: string, audience: string, options: CallOptions = {}): Promise<JwtSvid> {
    if (typeof token !== 'string' || token === '')
      throw new TypeError('workloadapi: token must be non-empty');
    if (typeof audience !== 'string' || audience === '') {
      throw new TypeError('workloadapi: audience must be a non-empty string');
    }
    const res = await this.#unary(
      'ValidateJWTSVID',
      Service.validateJwtsvid,
      { audience, svid: token },
      options.signal,
    );
    const [svid] = parseJwtSvids(
      { svids: [{ spiffeId: res.spiffeId, svid: token, hint: '' }] },
      [audience],
      true,
      this.#now?.(),
    );
    return svid!;
  }

  /**
   * Watches X.509 context updates (`FetchX509SVID`) until `signal` aborts or the client closes.
   * On a stream failure the watcher is told and the stream reopens after a backoff; the watch stops
   * for good on `Canceled`, `InvalidArgument` and `Unimplemented` (spec: not retried, §2.8).
   *
   * @returns Resolves when stopped by `signal` or {@link close}; rejects with the terminal error otherwise.
   * @throws {WorkloadApiError} ERR_WORKLOADAPI_INVALID_ARGUMENT / _UNIMPLEMENTED / _FAILED (canceled by the
   *   endpoint) when the watch stops on a terminal status.
   * @example
   * ```ts
   * const ac = new AbortController();
   * void client.watchX509Context({ onX509ContextUpdate: (ctx) => use(ctx) }, { signal: ac.signal });
   * ```
   */
  watchX509Context(watcher: X509ContextWatcher, options: WatchOptions = {}): Promise<void> {
    return this.#watch(
      'FetchX509SVID',
      Service.fetchX509Svid,
      (res: X509SVIDResponse) => parseX509Context(res),
      (ctx) => watcher.onX509ContextUpdate(ctx),
      watcher.onX509ContextWatchError?.bind(watcher),
      options.signal,
    );
  }

  /**
   * Watches X.509 bundle updates (`FetchX509Bundles`); same lifecycle as {@link watchX509Context}.
   *
   * @throws {WorkloadApiError} as {@link watchX509Context}.
   * @example
   * ```ts
   * void client.watchX509Bundles({ onX509BundlesUpdate: (set) => use(set) }, { signal });
   * ```
   */
  watchX509Bundles(watcher: X509BundlesWatcher, options: WatchOptions = {}): Promise<void> {
    return this.#watch(
      'FetchX509Bundles',
      Service.fetchX509Bundles,
      (res: X509BundlesResponse) => parseX509BundleMap(res.bundles),
      (set) => watcher.onX509BundlesUpdate(set),
      watcher.onX509BundlesWatchError?.bind(watcher),
      options.signal,
    );
  }

  /**
   * Watches JWT bundle updates (`FetchJWTBundles`); same lifecycle as {@link watchX509Context}.
   *
   * @throws {WorkloadApiError} as {@link watchX509Context}.
   * @example
   * ```ts
   * void client.watchJwtBundles({ onJwtBundlesUpdate: (set) => use(set) }, { signal });
   * ```
   */
  watchJwtBundles(watcher: JwtBundlesWatcher, options: WatchOptions = {}): Promise<void> {
    return this.#watch(
      'FetchJWTBundles',
      Service.fetchJwtBundles,
      (res: JWTBundlesResponse) => parseJwtBundleMap(res.bundles),
      (set) => watcher.onJwtBundlesUpdate(set),
      watcher.onJwtBundlesWatchError?.bind(watcher),
      options.signal,
    );
  }

  #metadata(): Metadata {
    const md = new Metadata();
    md.set('workload.spiffe.io', 'true');
    return md;
  }

  #assertOpen(rpc: string): void {
    if (this.#closed.signal.aborted) {
      throw new WorkloadApiError('ERR_WORKLOADAPI_FAILED', `workloadapi: ${rpc} failed: client is closed`);
    }
  }

  /** Opens a server stream, resolves with its first message and cancels it. */
  #first<Res>(
    rpc: string,
    def: StreamDef<Record<string, never>, Res>,
    req: Record<string, never>,
    signal: AbortSignal | undefined,
  ): Promise<Res> {
    this.#assertOpen(rpc);
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<Res>((resolve, reject) => {
      const call: ClientReadableStream<Res> = this.#client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        req,
        this.#metadata(),
      );
      let settled = false;
      const onAbort = (): void => {
        finish(() => reject(signal?.aborted ? abortReason(signal) : this.#closedError(rpc)));
      };
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        this.#closed.signal.removeEventListener('abort', onAbort);
        call.cancel();
        fn();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#closed.signal.addEventListener('abort', onAbort, { once: true });
      call.on('data', (msg: Res) => finish(() => resolve(msg)));
      call.on('error', (err: unknown) => finish(() => reject(toError(rpc, err))));
      call.on('end', () =>
        finish(() =>
          reject(
            new WorkloadApiError(
              'ERR_WORKLOADAPI_UNAVAILABLE',
              `workloadapi: ${rpc} stream ended without a response`,
            ),
          ),
        ),
      );
    });
  }

  #closedError(rpc: string): WorkloadApiError {
    return new WorkloadApiError('ERR_WORKLOADAPI_FAILED', `workloadapi: ${rpc} failed: client is closed`);
  }

  #unary<Req, Res>(
    rpc: string,
    def: StreamDef<Req, Res>,
    req: Req,
    signal: AbortSignal | undefined,
  ): Promise<Res> {
    this.#assertOpen(rpc);
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<Res>((resolve, reject) => {
      let settled = false;
      const onAbort = (): void => {
        if (settled) return;
        settled = true;
        call.cancel();
        reject(signal?.aborted ? abortReason(signal) : this.#closedError(rpc));
      };
      const call = this.#client.makeUnaryRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        req,
        this.#metadata(),
        (err: ServiceError | null, value?: Res) => {
          signal?.removeEventListener('abort', onAbort);
          this.#closed.signal.removeEventListener('abort', onAbort);
          if (settled) return;
          settled = true;
          if (err) reject(toError(rpc, err));
          else if (value === undefined) reject(toError(rpc, new Error('empty response')));
          else resolve(value);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#closed.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async #watch<Res, T>(
    rpc: string,
    def: StreamDef<Record<string, never>, Res>,
    parse: (res: Res) => T,
    onUpdate: (value: T) => void,
    onError: ((err: SpiffeError) => void) | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    this.#assertOpen(rpc);
    const stop = signal ? AbortSignal.any([signal, this.#closed.signal]) : this.#closed.signal;
    const backoff = this.#backoff.newBackoff();
    const report = (err: SpiffeError): void => {
      this.#logger.warn('Workload API watch failed', { method: rpc, err: err.message });
      if (onError === undefined) return;
      try {
        onError(err);
      } catch (cbErr) {
        this.#logger.error('Watch error callback threw', { method: rpc, err: String(cbErr) });
      }
    };
    while (!stop.aborted) {
      const err = await this.#runStream(rpc, def, stop, () => backoff.reset(), parse, onUpdate, report);
      if (stop.aborted) return;
      report(err);
      if (isTerminal(err)) {
        this.#logger.error('Canceling watch', { method: rpc, err: err.message });
        throw err;
      }
      await this.#sleep(backoff.next(), stop);
    }
  }

  /** Runs one stream until it fails, ends or `stop` aborts; resolves with the error that ended it. */
  #runStream<Res, T>(
    rpc: string,
    def: StreamDef<Record<string, never>, Res>,
    stop: AbortSignal,
    onMessage: () => void,
    parse: (res: Res) => T,
    onUpdate: (value: T) => void,
    report: (err: SpiffeError) => void,
  ): Promise<SpiffeError> {
    return new Promise<SpiffeError>((resolve) => {
      const call: ClientReadableStream<Res> = this.#client.makeServerStreamRequest(
        def.path,
        def.requestSerialize,
        def.responseDeserialize,
        {},
        this.#metadata(),
      );
      let settled = false;
      const finish = (err: SpiffeError): void => {
        if (settled) return;
        settled = true;
        stop.removeEventListener('abort', onStop);
        call.cancel();
        resolve(err);
      };
      const onStop = (): void => finish(this.#closedError(rpc));
      stop.addEventListener('abort', onStop, { once: true });
      call.on('data', (msg: Res) => {
        if (settled) return;
        onMessage();
        let value: T;
        try {
          value = parse(msg);
        } catch (err) {
          // An invalid message is reported; the stream and the last good state are kept.
          report(toError(rpc, err));
          return;
        }
        try {
          onUpdate(value);
        } catch (cbErr) {
          this.#logger.error('Watch update callback threw', { method: rpc, err: String(cbErr) });
        }
      });
      call.on('error', (err: unknown) => finish(toError(rpc, err)));
      call.on('end', () =>
        finish(
          new WorkloadApiError(
            'ERR_WORKLOADAPI_UNAVAILABLE',
            `workloadapi: ${rpc} stream closed by the endpoint`,
          ),
        ),
      );
    });
  }
}
