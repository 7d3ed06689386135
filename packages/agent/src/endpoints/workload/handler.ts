/**
 * The SPIFFE Workload API served by the agent (SPIFFE_Workload_API.md, CONFORMANCE §1.5, §1.6, §3.1):
 * the security header is checked before anything else, the caller is attested from the kernel (never from
 * the request), streams send the full state at once and on every change.
 *
 * @module
 */
import {
  type Metadata,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import { BundleSet, type SpiffeBundle } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId } from '@tessera/spiffe/spiffeid';
import { JwtSvid } from '@tessera/spiffe/svid';
import type {
  JWTBundlesRequest,
  JWTBundlesResponse,
  JWTSVIDRequest,
  JWTSVIDResponse,
  SpiffeWorkloadAPIServer,
  ValidateJWTSVIDRequest,
  ValidateJWTSVIDResponse,
  X509BundlesRequest,
  X509BundlesResponse,
  X509SVIDRequest,
  X509SVIDResponse,
} from '@tessera/spiffe/workloadapi';
import type {
  IdentitySnapshot,
  IdentitySubscription,
  WorkloadIdentityProvider,
  WorkloadSelector,
} from '../../manager/provider.js';
import {
  type EndpointsLogger,
  type GrpcStatusError,
  grpcError,
  isGrpcStatusError,
  LatestStatePump,
  MSG_CALLER_EXITED,
  malformedRequestError,
  nullLogger,
} from '../stream.js';

/** The metadata key every Workload API request must carry with the single value `true`. */
export const SECURITY_HEADER = 'workload.spiffe.io';

/** A call as the attestation step sees it (grpc-js server call of any kind). */
export type AttestableCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

/**
 * Attests the caller of `call` from the kernel (peer credentials, /proc) and returns its selectors.
 * Throws when the caller cannot be attested (the endpoint answers `Unavailable`).
 */
export type CallerAttestation = (call: AttestableCall) => Promise<readonly WorkloadSelector[]>;

/** Options of {@link createWorkloadApiHandlers}. */
export interface WorkloadApiHandlerOptions {
  /** The identity manager. */
  readonly provider: WorkloadIdentityProvider;
  /** Attests the caller of a call. */
  readonly attestCaller: CallerAttestation;
  /** Where to log; default: nothing. */
  readonly logger?: EndpointsLogger;
  /** Clock for JWT-SVID validation; default the system clock. */
  readonly now?: () => Date;
  /**
   * Claims kept (besides the registered JWT claims) when `ValidateJWTSVID` returns the claims of a token
   * from a foreign trust domain (SPIRE's `allowed_foreign_jwt_claims`); default none.
   */
  readonly allowedForeignJwtClaims?: readonly string[];
  /**
   * Serve bundles (FetchX509Bundles, FetchJWTBundles) to callers without an identity: the trust domain's own
   * bundle, as no entry of theirs federates (SPIRE's `allow_unauthenticated_verifiers`); default false.
   */
  readonly allowUnauthenticatedVerifiers?: boolean;
  /**
   * Whether the process that was attested for a call still runs; checked before each stream message that an
   * update (not the admission) sends, so that SVIDs do not go on to a process that inherited the connection
   * (default: always true).
   */
  readonly callerAlive?: (call: AttestableCall) => boolean;
}

const MSG_HEADER = 'security header missing from request';
const MSG_ATTESTATION = 'workload attestation failed';
const MSG_NO_IDENTITY = 'no identity issued';
/** Registered JWT claims, always kept in `ValidateJWTSVID` responses. */
const REGISTERED_CLAIMS: ReadonlySet<string> = new Set(['aud', 'exp', 'iat', 'iss', 'jti', 'nbf', 'sub']);

/**
 * Tells whether the metadata carries exactly one `workload.spiffe.io` value, `true` (case-sensitive).
 *
 * @example
 * ```ts
 * if (!hasSecurityHeader(call.metadata)) fail();
 * ```
 */
export function hasSecurityHeader(metadata: Metadata): boolean {
  const values = metadata.get(SECURITY_HEADER);
  return values.length === 1 && values[0] === 'true';
}

const derCache = new WeakMap<SpiffeBundle, Buffer>();
const jwksCache = new WeakMap<SpiffeBundle, Buffer>();

/** The bundle's X.509 authorities as concatenated DER (cached per bundle object). */
export function bundleDer(bundle: SpiffeBundle): Buffer {
  let der = derCache.get(bundle);
  if (der === undefined) {
    der = Buffer.concat(bundle.x509Authorities().map((c) => c.raw));
    derCache.set(bundle, der);
  }
  return der;
}

/** The bundle's JWT authorities as a plain JWKS document (no `use`, no `spiffe_*`), cached per bundle. */
export function bundleJwks(bundle: SpiffeBundle): Buffer {
  let jwks = jwksCache.get(bundle);
  if (jwks === undefined) {
    jwks = Buffer.from(bundle.jwtBundle().marshal());
    jwksCache.set(bundle, jwks);
  }
  return jwks;
}

/** The snapshot's SVIDs with duplicate hints removed (the first, i.e. oldest in provider order, wins). */
function uniqueHintSvids(snap: IdentitySnapshot, log: EndpointsLogger): IdentitySnapshot['svids'] {
  const seen = new Set<string>();
  const out: IdentitySnapshot['svids'][number][] = [];
  for (const svid of snap.svids) {
    if (svid.hint !== '') {
      if (seen.has(svid.hint)) {
        log.warn(
          { spiffe_id: svid.spiffeId, entry_id: svid.entryId, hint: svid.hint },
          'Ignoring X509-SVID with duplicate hint',
        );
        continue;
      }
      seen.add(svid.hint);
    }
    out.push(svid);
  }
  return out;
}

/**
 * Builds the `FetchX509SVID` message of a snapshot (undefined when it holds no SVID). Federated bundles
 * without X.509 authorities are left out: an empty value is not a valid bundle.
 */
export function x509SvidResponse(
  snap: IdentitySnapshot,
  log: EndpointsLogger = nullLogger,
): X509SVIDResponse | undefined {
  const svids = uniqueHintSvids(snap, log);
  if (svids.length === 0) return undefined;
  const own = bundleDer(snap.bundle);
  const federatedBundles: Record<string, Buffer> = {};
  for (const b of [...snap.federatedBundles.values()].sort((x, y) => x.trustDomain.compare(y.trustDomain))) {
    if (b.trustDomain.equals(snap.bundle.trustDomain)) continue;
    const der = bundleDer(b);
    if (der.length > 0) federatedBundles[b.trustDomain.idString()] = der;
  }
  return {
    svids: svids.map((s) => ({
      spiffeId: s.spiffeId,
      x509Svid: s.chainDer,
      x509SvidKey: s.keyDer,
      bundle: own,
      hint: s.hint,
    })),
    crl: [],
    federatedBundles,
  };
}

function snapshotBundles(snap: IdentitySnapshot): SpiffeBundle[] {
  const out = [snap.bundle];
  for (const b of snap.federatedBundles.values()) {
    if (!b.trustDomain.equals(snap.bundle.trustDomain)) out.push(b);
  }
  return out.sort((x, y) => x.trustDomain.compare(y.trustDomain));
}

/** Builds the `FetchX509Bundles` message of a snapshot: own + federated bundles keyed by trust domain ID. */
export function x509BundlesResponse(snap: IdentitySnapshot): X509BundlesResponse {
  const bundles: Record<string, Buffer> = {};
  for (const b of snapshotBundles(snap)) {
    const der = bundleDer(b);
    if (der.length > 0 || b === snap.bundle) bundles[b.trustDomain.idString()] = der;
  }
  return { crl: [], bundles };
}

/** Builds the `FetchJWTBundles` message of a snapshot: JWKS of the JWT authorities keyed by trust domain ID. */
export function jwtBundlesResponse(snap: IdentitySnapshot): JWTBundlesResponse {
  const bundles: Record<string, Buffer> = {};
  for (const b of snapshotBundles(snap)) bundles[b.trustDomain.idString()] = bundleJwks(b);
  return { bundles };
}

function sameBundleMap(a: Record<string, Buffer>, b: Record<string, Buffer>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const vb = b[k];
    if (vb === undefined || !a[k]!.equals(vb)) return false;
  }
  return true;
}

/** A JSON value fit for a protobuf Struct (numbers, strings, booleans, null, lists, objects). */
type StructValue = null | boolean | number | string | StructValue[] | { [k: string]: StructValue };

function toStructValue(v: unknown): StructValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(toStructValue);
  if (typeof v === 'object') {
    const out: Record<string, StructValue> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = toStructValue(x);
    return out;
  }
  return null;
}

/**
 * The claims of a validated JWT-SVID as returned by `ValidateJWTSVID`: `aud` always a list; for a token
 * of a foreign trust domain only registered claims and `allowed` ones are kept.
 */
export function validatedClaims(
  svid: JwtSvid,
  foreign: boolean,
  allowed: ReadonlySet<string>,
): Record<string, StructValue> {
  const out: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(svid.claims)) {
    if (foreign && !REGISTERED_CLAIMS.has(k) && !allowed.has(k)) continue;
    out[k] = toStructValue(v);
  }
  out.aud = [...svid.audience];
  return out;
}

type StreamCall<Res> = ServerWritableStream<unknown, Res>;

/**
 * Creates the grpc-js implementation of the `SpiffeWorkloadAPI` service.
 *
 * @example
 * ```ts
 * server.addService(SpiffeWorkloadAPIService, createWorkloadApiHandlers({ provider, attestCaller }));
 * ```
 */
export function createWorkloadApiHandlers(options: WorkloadApiHandlerOptions): SpiffeWorkloadAPIServer {
  const { provider, attestCaller } = options;
  const log = options.logger ?? nullLogger;
  const now = options.now ?? (() => new Date());
  const allowedForeign = new Set(options.allowedForeignJwtClaims ?? []);
  const callerAlive = options.callerAlive ?? (() => true);

  /** The InvalidArgument status for a call without the security header or with an undecodable request. */
  function refuseRequest(call: AttestableCall): GrpcStatusError | undefined {
    if (!hasSecurityHeader(call.metadata)) return grpcError(status.INVALID_ARGUMENT, MSG_HEADER);
    return malformedRequestError(call.request);
  }

  /** Header check then attestation; on failure the status to end the call with. */
  async function admit(
    call: AttestableCall,
    method: string,
  ): Promise<{ selectors: readonly WorkloadSelector[] } | { error: GrpcStatusError }> {
    const refused = refuseRequest(call);
    if (refused !== undefined) return { error: refused };
    try {
      return { selectors: await attestCaller(call) };
    } catch (err) {
      log.error({ method, err }, 'Workload attestation failed');
      return { error: grpcError(status.UNAVAILABLE, MSG_ATTESTATION) };
    }
  }

  /**
   * Runs a subscription-backed stream: `render` turns a snapshot into the message to send, a status to end
   * the stream with, or undefined to send nothing yet (an SVID is being issued); `same` suppresses messages
   * equal to the last one sent.
   */
  function serveStream<Res>(
    call: StreamCall<Res>,
    method: string,
    render: (snap: IdentitySnapshot) => Res | GrpcStatusError | undefined,
    same?: (a: Res, b: Res) => boolean,
  ): void {
    void (async () => {
      const admitted = await admit(call as AttestableCall, method);
      if ('error' in admitted) {
        call.emit('error', admitted.error);
        return;
      }
      if (call.cancelled) return;
      const pump = new LatestStatePump<Res>(call);
      let sub: IdentitySubscription | undefined;
      let done = false;
      let last: Res | undefined;
      const finish = (err?: GrpcStatusError): void => {
        if (done) return;
        done = true;
        pump.stop();
        sub?.close();
        sub = undefined;
        if (err !== undefined && !call.cancelled) call.emit('error', err);
      };
      /** `initial`: the send right after admission (the attestation just checked the caller is alive). */
      const send = (snap: IdentitySnapshot, initial = false): void => {
        if (done) return;
        let msg: Res | GrpcStatusError | undefined;
        try {
          msg = render(snap);
        } catch (err) {
          log.error({ method, err }, 'Cannot build Workload API response');
          finish(grpcError(status.INTERNAL, 'internal error'));
          return;
        }
        if (msg === undefined) return;
        if (isGrpcStatusError(msg)) {
          finish(msg);
          return;
        }
        if (same !== undefined && last !== undefined && same(last, msg)) return;
        if (!initial && !callerAlive(call as AttestableCall)) {
          finish(grpcError(status.UNAVAILABLE, MSG_CALLER_EXITED));
          return;
        }
        last = msg;
        pump.push(msg);
      };
      call.on('cancelled', () => finish());
      call.on('close', () => finish());
      call.on('error', () => finish());
      try {
        sub = provider.subscribe(admitted.selectors, send);
      } catch (err) {
        log.error({ method, err }, 'Cannot subscribe to workload identities');
        finish(grpcError(status.UNAVAILABLE, 'identities are not available'));
        return;
      }
      if (done) {
        sub.close();
        return;
      }
      send(sub.current(), true);
    })();
  }

  const noIdentity = (): GrpcStatusError => grpcError(status.PERMISSION_DENIED, MSG_NO_IDENTITY);
  /** What a stream answers a snapshot without an SVID: nothing yet while one is being issued, else refused. */
  const noSvidYet = (snap: IdentitySnapshot): GrpcStatusError | undefined =>
    snap.pending ? undefined : noIdentity();
  /** The bundle streams' rule: bundles for a caller with an identity (or any caller, when so configured). */
  const bundlesFor = <Res>(build: (snap: IdentitySnapshot) => Res) =>
    options.allowUnauthenticatedVerifiers === true
      ? build
      : (snap: IdentitySnapshot): Res | GrpcStatusError | undefined =>
          snap.svids.length > 0 ? build(snap) : noSvidYet(snap);
  const x509Messages = new WeakMap<IdentitySnapshot, X509SVIDResponse>();

  return {
    fetchX509Svid(call: ServerWritableStream<X509SVIDRequest, X509SVIDResponse>): void {
      serveStream(call as StreamCall<X509SVIDResponse>, 'FetchX509SVID', (snap) => {
        // Nothing is sent while an SVID of the caller's entries is being issued: a message without it could name
        // another SVID as the default (first) one, and change it again a moment later (SPIRE holds updates until
        // the set is complete, too). While the server cannot be reached or refuses it, the SVIDs there are go out.
        if (snap.pending && (snap.svids.length === 0 || snap.issuing)) return undefined;
        // Every cache update is sent (SPIRE): the message is the complete state. Built once per snapshot: all
        // streams of a workload (and a rotation fanned out to them) share the object, and so its encoding.
        let msg = x509Messages.get(snap);
        if (msg === undefined) {
          msg = x509SvidResponse(snap, log);
          if (msg === undefined) return noIdentity();
          x509Messages.set(snap, msg);
        }
        return msg;
      });
    },

    fetchX509Bundles(call: ServerWritableStream<X509BundlesRequest, X509BundlesResponse>): void {
      serveStream(
        call as StreamCall<X509BundlesResponse>,
        'FetchX509Bundles',
        bundlesFor(x509BundlesResponse),
        (a, b) => sameBundleMap(a.bundles, b.bundles),
      );
    },

    fetchJwtBundles(call: ServerWritableStream<JWTBundlesRequest, JWTBundlesResponse>): void {
      serveStream(
        call as StreamCall<JWTBundlesResponse>,
        'FetchJWTBundles',
        bundlesFor(jwtBundlesResponse),
        (a, b) => sameBundleMap(a.bundles, b.bundles),
      );
    },

    fetchJwtsvid(
      call: ServerUnaryCall<JWTSVIDRequest, JWTSVIDResponse>,
      callback: sendUnaryData<JWTSVIDResponse>,
    ): void {
      void (async () => {
        const refused = refuseRequest(call);
        if (refused !== undefined) return callback(refused);
        const { audience, spiffeId } = call.request;
        if (audience.length === 0 || audience.some((a) => a === '')) {
          return callback(grpcError(status.INVALID_ARGUMENT, 'audience must be specified'));
        }
        let requested: string | undefined;
        if (spiffeId !== '') {
          try {
            requested = SpiffeId.fromString(spiffeId).toString();
          } catch (err) {
            const msg = err instanceof SpiffeError ? err.message : String(err);
            return callback(grpcError(status.INVALID_ARGUMENT, `invalid requested SPIFFE ID: ${msg}`));
          }
        }
        const admitted = await admit(call as AttestableCall, 'FetchJWTSVID');
        if ('error' in admitted) return callback(admitted.error);
        let svids: Awaited<ReturnType<WorkloadIdentityProvider['fetchJwtSvids']>>;
        try {
          svids = await provider.fetchJwtSvids(admitted.selectors, audience, requested);
        } catch (err) {
          log.error({ method: 'FetchJWTSVID', err }, 'Could not fetch JWT-SVID');
          const msg = err instanceof Error ? err.message : 'internal error';
          return callback(grpcError(status.UNAVAILABLE, `could not fetch JWT-SVID: ${msg}`));
        }
        // Fail closed: never hand out a token for an identity other than the one asked for.
        if (requested !== undefined) svids = svids.filter((s) => s.spiffeId === requested);
        if (svids.length === 0) return callback(noIdentity());
        callback(null, { svids: svids.map((s) => ({ spiffeId: s.spiffeId, svid: s.token, hint: s.hint })) });
      })();
    },

    validateJwtsvid(
      call: ServerUnaryCall<ValidateJWTSVIDRequest, ValidateJWTSVIDResponse>,
      callback: sendUnaryData<ValidateJWTSVIDResponse>,
    ): void {
      void (async () => {
        const refused = refuseRequest(call);
        if (refused !== undefined) return callback(refused);
        const { audience, svid } = call.request;
        if (audience === '')
          return callback(grpcError(status.INVALID_ARGUMENT, 'audience must be specified'));
        if (svid === '') return callback(grpcError(status.INVALID_ARGUMENT, 'svid must be specified'));
        const admitted = await admit(call as AttestableCall, 'ValidateJWTSVID');
        if ('error' in admitted) return callback(admitted.error);
        // The caller trusts the agent's own bundle and the bundles its entries federate with (SPIRE).
        let snap: IdentitySnapshot;
        try {
          const sub = provider.subscribe(admitted.selectors, () => {});
          snap = sub.current();
          sub.close();
        } catch (err) {
          log.error({ method: 'ValidateJWTSVID', err }, 'Cannot read workload bundles');
          return callback(grpcError(status.UNAVAILABLE, 'bundles are not available'));
        }
        const set = new BundleSet(...snapshotBundles(snap));
        let validated: JwtSvid;
        try {
          validated = await JwtSvid.parseAndValidate(svid, set, [audience], { now: now() });
        } catch (err) {
          const msg = err instanceof SpiffeError ? err.message : 'token is not valid';
          log.debug(
            { method: 'ValidateJWTSVID', err_code: (err as { code?: unknown }).code },
            'JWT-SVID refused',
          );
          return callback(grpcError(status.INVALID_ARGUMENT, msg));
        }
        const foreign = !validated.id.memberOf(snap.bundle.trustDomain);
        callback(null, {
          spiffeId: validated.id.toString(),
          claims: validatedClaims(validated, foreign, allowedForeign),
        });
      })();
    },

    fetchWitsvid(call: ServerWritableStream<unknown, unknown>): void {
      call.emit(
        'error',
        hasSecurityHeader(call.metadata)
          ? grpcError(status.UNIMPLEMENTED, 'fetching WIT-SVIDs is not implemented')
          : grpcError(status.INVALID_ARGUMENT, MSG_HEADER),
      );
    },

    fetchWitBundles(call: ServerWritableStream<unknown, unknown>): void {
      call.emit(
        'error',
        hasSecurityHeader(call.metadata)
          ? grpcError(status.UNIMPLEMENTED, 'fetching WIT bundles is not implemented')
          : grpcError(status.INVALID_ARGUMENT, MSG_HEADER),
      );
    },
  };
}
