/**
 * An in-process fake of the SPIFFE Workload API: a real grpc-js server on a temporary Unix socket
 * (or loopback TCP), with settable state pushed to open streams and failure injection.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import {
  type JWTBundlesResponse,
  type JWTSVIDRequest,
  type JWTSVIDResponse,
  SpiffeWorkloadAPIService,
  type ValidateJWTSVIDRequest,
  type ValidateJWTSVIDResponse,
  type X509BundlesResponse,
  type X509SVIDResponse,
} from '@tessera/spiffe/workloadapi';

/** The RPCs of the Workload API, by their wire names. */
export type FakeRpc =
  | 'FetchX509SVID'
  | 'FetchX509Bundles'
  | 'FetchJWTSVID'
  | 'FetchJWTBundles'
  | 'ValidateJWTSVID'
  | 'FetchWITSVID'
  | 'FetchWITBundles';

/** One X509-SVID as the fake serves it (bytes are sent as given, valid or not). */
export interface FakeX509Svid {
  /** `spiffe_id` field. */
  readonly spiffeId: string;
  /** Concatenated DER chain, leaf first. */
  readonly chainDer: Uint8Array;
  /** PKCS#8 DER private key. */
  readonly keyDer: Uint8Array;
  /** Concatenated DER CA certificates of the SVID's trust domain. */
  readonly bundleDer: Uint8Array;
  /** Optional hint. */
  readonly hint?: string;
}

/** One JWT-SVID as the fake serves it. */
export interface FakeJwtSvid {
  /** `spiffe_id` field. */
  readonly spiffeId: string;
  /** The compact JWS. */
  readonly token: string;
  /** Optional hint. */
  readonly hint?: string;
}

/** A gRPC status to fail calls with. */
export interface FakeStatus {
  /** gRPC status code (`status.UNAVAILABLE` …). */
  readonly code: number;
  /** Status message. */
  readonly details?: string;
}

/** Decides the answer of `FetchJWTSVID`; throw a {@link FakeStatus} to fail the call. */
export type FakeJwtSvidHandler = (req: {
  audience: string[];
  spiffeId: string;
}) => FakeJwtSvid[] | Promise<FakeJwtSvid[]>;

/** Decides the answer of `ValidateJWTSVID`; throw a {@link FakeStatus} to fail the call. */
export type FakeValidateHandler = (req: {
  audience: string;
  svid: string;
}) =>
  | { spiffeId: string; claims?: Record<string, unknown> }
  | Promise<{ spiffeId: string; claims?: Record<string, unknown> }>;

/** Options of {@link FakeWorkloadApi.start}. */
export interface FakeWorkloadApiOptions {
  /** Listen on `127.0.0.1:<free port>` instead of a Unix socket. */
  readonly tcp?: boolean;
}

interface InjectedError {
  status: FakeStatus;
  remaining: number;
}

const HEADER = 'workload.spiffe.io';

function isFakeStatus(v: unknown): v is FakeStatus {
  return typeof v === 'object' && v !== null && typeof (v as { code?: unknown }).code === 'number';
}

function toBytesMap(map: Readonly<Record<string, Uint8Array | string>>): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(map)) out[k] = typeof v === 'string' ? Buffer.from(v) : Buffer.from(v);
  return out;
}

type AnyStream = ServerWritableStream<unknown, unknown>;

/**
 * A fake Workload API server for tests. It enforces the `workload.spiffe.io: true` header like a
 * SPIRE agent (`InvalidArgument`, `security header missing from request`), answers streams with the
 * current state at once and pushes every state change to open streams, and returns `Unimplemented`
 * for the WIT RPCs. Unset state answers `PermissionDenied` (`no identity issued`).
 *
 * @example
 * ```ts
 * const api = await FakeWorkloadApi.start();
 * api.setX509Svids([{ spiffeId, chainDer, keyDer, bundleDer }]);
 * const client = new WorkloadApiClient({ address: api.address });
 * await api.close();
 * ```
 */
export class FakeWorkloadApi {
  readonly #server: Server;
  readonly #dir: string | undefined;
  /** Endpoint URI to give a client: `unix:///tmp/…/agent.sock` or `tcp://127.0.0.1:<port>`. */
  readonly address: string;
  /** Filesystem path of the socket ('' when listening on TCP). */
  readonly socketPath: string;

  #x509: X509SVIDResponse | undefined;
  #x509Bundles: X509BundlesResponse | undefined;
  #jwtBundles: JWTBundlesResponse | undefined;
  #jwtHandler: FakeJwtSvidHandler | undefined;
  #validateHandler: FakeValidateHandler | undefined;
  readonly #errors = new Map<FakeRpc, InjectedError>();
  readonly #streams = new Map<FakeRpc, Set<AnyStream>>();
  readonly #calls = new Map<FakeRpc, number>();
  readonly #headers: { rpc: FakeRpc; values: string[] }[] = [];
  readonly #jwtRequests: JWTSVIDRequest[] = [];
  #closed = false;

  private constructor(server: Server, address: string, socketPath: string, dir: string | undefined) {
    this.#server = server;
    this.address = address;
    this.socketPath = socketPath;
    this.#dir = dir;
  }

  /**
   * Starts a fake on a fresh temporary Unix socket (or loopback TCP port).
   *
   * @example
   * ```ts
   * const api = await FakeWorkloadApi.start();
   * ```
   */
  static async start(options: FakeWorkloadApiOptions = {}): Promise<FakeWorkloadApi> {
    const server = new Server();
    let fake: FakeWorkloadApi | undefined;
    const get = (): FakeWorkloadApi => fake!;
    server.addService(SpiffeWorkloadAPIService, {
      fetchX509Svid: (call: ServerWritableStream<unknown, X509SVIDResponse>) =>
        get().#openStream('FetchX509SVID', call as AnyStream, () => get().#x509),
      fetchX509Bundles: (call: ServerWritableStream<unknown, X509BundlesResponse>) =>
        get().#openStream('FetchX509Bundles', call as AnyStream, () => get().#x509Bundles),
      fetchJwtBundles: (call: ServerWritableStream<unknown, JWTBundlesResponse>) =>
        get().#openStream('FetchJWTBundles', call as AnyStream, () => get().#jwtBundles),
      fetchJwtsvid: (
        call: ServerUnaryCall<JWTSVIDRequest, JWTSVIDResponse>,
        cb: sendUnaryData<JWTSVIDResponse>,
      ) => void get().#fetchJwtSvid(call, cb),
      validateJwtsvid: (
        call: ServerUnaryCall<ValidateJWTSVIDRequest, ValidateJWTSVIDResponse>,
        cb: sendUnaryData<ValidateJWTSVIDResponse>,
      ) => void get().#validateJwtSvid(call, cb),
      fetchWitsvid: (call: AnyStream) =>
        get().#unimplemented('FetchWITSVID', call, 'fetching WIT-SVIDs is not implemented'),
      fetchWitBundles: (call: AnyStream) =>
        get().#unimplemented('FetchWITBundles', call, 'fetching WIT bundles is not implemented'),
    });
    let dir: string | undefined;
    let socketPath = '';
    let bindTarget: string;
    if (options.tcp) {
      bindTarget = '127.0.0.1:0';
    } else {
      dir = await mkdtemp(join(tmpdir(), 'tessera-wapi-'));
      socketPath = join(dir, 'agent.sock');
      bindTarget = `unix://${socketPath}`;
    }
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(bindTarget, ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      );
    });
    const address = options.tcp ? `tcp://127.0.0.1:${port}` : `unix://${socketPath}`;
    fake = new FakeWorkloadApi(server, address, socketPath, dir);
    return fake;
  }

  /**
   * Sets the X509-SVIDs (and federated bundles) served by `FetchX509SVID` and pushes them to open
   * streams. An empty list is sent as is (an invalid response); use {@link clearX509Svids} to unset.
   */
  setX509Svids(
    svids: readonly FakeX509Svid[],
    federatedBundles: Readonly<Record<string, Uint8Array>> = {},
  ): void {
    this.#x509 = {
      svids: svids.map((s) => ({
        spiffeId: s.spiffeId,
        x509Svid: Buffer.from(s.chainDer),
        x509SvidKey: Buffer.from(s.keyDer),
        bundle: Buffer.from(s.bundleDer),
        hint: s.hint ?? '',
      })),
      crl: [],
      federatedBundles: toBytesMap(federatedBundles),
    };
    this.#push('FetchX509SVID', this.#x509);
  }

  /** Unsets the X509-SVIDs: new `FetchX509SVID` calls get `PermissionDenied`. */
  clearX509Svids(): void {
    this.#x509 = undefined;
  }

  /** Sets the X.509 bundles (TD ID → concatenated DER) of `FetchX509Bundles` and pushes them. */
  setX509Bundles(bundles: Readonly<Record<string, Uint8Array>>): void {
    this.#x509Bundles = { crl: [], bundles: toBytesMap(bundles) };
    this.#push('FetchX509Bundles', this.#x509Bundles);
  }

  /** Sets the JWT bundles (TD ID → JWKS JSON) of `FetchJWTBundles` and pushes them. */
  setJwtBundles(bundles: Readonly<Record<string, Uint8Array | string>>): void {
    this.#jwtBundles = { bundles: toBytesMap(bundles) };
    this.#push('FetchJWTBundles', this.#jwtBundles);
  }

  /**
   * Serves fixed JWT-SVIDs from `FetchJWTSVID` (filtered by the requested `spiffe_id`), and accepts
   * exactly these tokens in `ValidateJWTSVID` unless a validate handler is set.
   */
  setJwtSvids(svids: readonly FakeJwtSvid[]): void {
    const list = [...svids];
    this.#jwtHandler = (req) => list.filter((s) => req.spiffeId === '' || s.spiffeId === req.spiffeId);
    this.#validateFromList = list;
  }

  #validateFromList: readonly FakeJwtSvid[] = [];

  /** Sets the function that answers `FetchJWTSVID`. */
  setJwtSvidHandler(handler: FakeJwtSvidHandler): void {
    this.#jwtHandler = handler;
  }

  /** Sets the function that answers `ValidateJWTSVID`. */
  setValidateJwtSvidHandler(handler: FakeValidateHandler): void {
    this.#validateHandler = handler;
  }

  /**
   * Makes the next `times` calls of `rpc` (default: every call) fail with `status`;
   * `undefined` clears the failure. Open streams are not affected (see {@link endStreams}).
   */
  setError(rpc: FakeRpc, failure: FakeStatus | undefined, times = Number.POSITIVE_INFINITY): void {
    if (failure === undefined) this.#errors.delete(rpc);
    else this.#errors.set(rpc, { status: failure, remaining: times });
  }

  /** Ends every open stream of `rpc`, with `failure` or (without it) with status OK (end of stream). */
  endStreams(rpc: FakeRpc, failure?: FakeStatus): void {
    const set = this.#streams.get(rpc);
    if (!set) return;
    for (const call of [...set]) {
      set.delete(call);
      if (failure) call.emit('error', { code: failure.code, details: failure.details ?? '' });
      else call.end();
    }
  }

  /** Number of calls of `rpc` received so far (including refused ones). */
  callCount(rpc: FakeRpc): number {
    return this.#calls.get(rpc) ?? 0;
  }

  /** Number of currently open streams of `rpc`. */
  openStreamCount(rpc: FakeRpc): number {
    return this.#streams.get(rpc)?.size ?? 0;
  }

  /** The `workload.spiffe.io` header values of every call received, in order. */
  get headers(): readonly { rpc: FakeRpc; values: readonly string[] }[] {
    return this.#headers;
  }

  /** Every `FetchJWTSVID` request that passed the header check, in order. */
  get jwtSvidRequests(): readonly JWTSVIDRequest[] {
    return this.#jwtRequests;
  }

  /** Stops the server (open streams are cancelled) and removes the socket directory. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.forceShutdown();
    if (this.#dir) await rm(this.#dir, { recursive: true, force: true });
  }

  /** Counts the call, checks the security header and injected errors; returns a status to fail with. */
  #admit(rpc: FakeRpc, metadata: { get(key: string): unknown[] }): FakeStatus | undefined {
    this.#calls.set(rpc, (this.#calls.get(rpc) ?? 0) + 1);
    const values = metadata.get(HEADER).map((v) => (typeof v === 'string' ? v : `<binary>`));
    this.#headers.push({ rpc, values });
    if (values.length !== 1 || values[0] !== 'true') {
      return { code: status.INVALID_ARGUMENT, details: 'security header missing from request' };
    }
    const injected = this.#errors.get(rpc);
    if (injected) {
      injected.remaining -= 1;
      if (injected.remaining <= 0) this.#errors.delete(rpc);
      return injected.status;
    }
    return undefined;
  }

  #openStream(rpc: FakeRpc, call: AnyStream, state: () => unknown): void {
    const refused = this.#admit(rpc, call.metadata);
    if (refused) {
      call.emit('error', { code: refused.code, details: refused.details ?? '' });
      return;
    }
    const current = state();
    if (current === undefined) {
      call.emit('error', { code: status.PERMISSION_DENIED, details: 'no identity issued' });
      return;
    }
    let set = this.#streams.get(rpc);
    if (!set) {
      set = new Set();
      this.#streams.set(rpc, set);
    }
    set.add(call);
    const drop = (): void => {
      set.delete(call);
    };
    call.on('cancelled', drop);
    call.on('close', drop);
    call.write(current);
  }

  #push(rpc: FakeRpc, message: unknown): void {
    for (const call of this.#streams.get(rpc) ?? []) {
      if (!call.cancelled) call.write(message);
    }
  }

  #unimplemented(rpc: FakeRpc, call: AnyStream, details: string): void {
    const refused = this.#admit(rpc, call.metadata);
    call.emit('error', refused ?? { code: status.UNIMPLEMENTED, details });
  }

  async #fetchJwtSvid(
    call: ServerUnaryCall<JWTSVIDRequest, JWTSVIDResponse>,
    cb: sendUnaryData<JWTSVIDResponse>,
  ): Promise<void> {
    const refused = this.#admit('FetchJWTSVID', call.metadata);
    if (refused) return cb({ code: refused.code, details: refused.details ?? '' });
    this.#jwtRequests.push(call.request);
    if (call.request.audience.length === 0) {
      return cb({ code: status.INVALID_ARGUMENT, details: 'audience must be specified' });
    }
    if (!this.#jwtHandler) return cb({ code: status.PERMISSION_DENIED, details: 'no identity issued' });
    try {
      const svids = await this.#jwtHandler({
        audience: [...call.request.audience],
        spiffeId: call.request.spiffeId,
      });
      if (svids.length === 0) return cb({ code: status.PERMISSION_DENIED, details: 'no identity issued' });
      cb(null, { svids: svids.map((s) => ({ spiffeId: s.spiffeId, svid: s.token, hint: s.hint ?? '' })) });
    } catch (err) {
      cb(
        isFakeStatus(err)
          ? { code: err.code, details: err.details ?? '' }
          : { code: status.INTERNAL, details: String(err) },
      );
    }
  }

  async #validateJwtSvid(
    call: ServerUnaryCall<ValidateJWTSVIDRequest, ValidateJWTSVIDResponse>,
    cb: sendUnaryData<ValidateJWTSVIDResponse>,
  ): Promise<void> {
    const refused = this.#admit('ValidateJWTSVID', call.metadata);
    if (refused) return cb({ code: refused.code, details: refused.details ?? '' });
    const { audience, svid } = call.request;
    if (audience === '') return cb({ code: status.INVALID_ARGUMENT, details: 'audience must be specified' });
    if (svid === '') return cb({ code: status.INVALID_ARGUMENT, details: 'svid must be specified' });
    try {
      let res: { spiffeId: string; claims?: Record<string, unknown> };
      if (this.#validateHandler) {
        res = await this.#validateHandler({ audience, svid });
      } else {
        const known = this.#validateFromList.find((s) => s.token === svid);
        if (!known) return cb({ code: status.INVALID_ARGUMENT, details: 'token is not valid' });
        res = { spiffeId: known.spiffeId };
      }
      cb(null, { spiffeId: res.spiffeId, claims: res.claims ?? {} });
    } catch (err) {
      cb(
        isFakeStatus(err)
          ? { code: err.code, details: err.details ?? '' }
          : { code: status.INTERNAL, details: String(err) },
      );
    }
  }
}
