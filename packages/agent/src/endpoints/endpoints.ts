/**
 * The agent's public endpoints: the SPIFFE Workload API and Envoy SDS v3 on one grpc-js server, reached
 * through the peer tracker's Unix socket so that every call is attested from the kernel.
 *
 * @module
 */
import { type ChannelOptions, Server, type ServerInterceptor } from '@grpc/grpc-js';
import { SpiffeWorkloadAPIService } from '@tessera/spiffe/workloadapi';
import type { WorkloadSelector } from '../attestor/workload/workload-attestor.js';
import type { WorkloadIdentityProvider } from '../manager/provider.js';
import {
  createPeerTrackingServer,
  type PeerCredentialReader,
  type PeerInfo,
  type PeerTrackingServer,
  peerInfoOf,
} from '../peertracker/index.js';

import { createSdsHandlers, type SdsOptions, SecretDiscoveryServiceDefinition } from './sds/handler.js';

import { type EndpointsLogger, markMalformedRequests, nullLogger } from './stream.js';
import {
  type AttestableCall,
  type CallerAttestation,
  createWorkloadApiHandlers,
} from './workload/handler.js';

/** What the endpoints need to attest a caller: the agent's workload attestor (see attestor/workload). */
export interface EndpointsAttestor {
  /** Selectors of the peer process; throws when it cannot be attested (exited, /proc unreadable). */
  attest(peer: PeerInfo): Promise<readonly WorkloadSelector[]>;
}

/** Options of {@link createWorkloadEndpoints}. */
export interface WorkloadEndpointsConfig {
  /** The identity manager (SVIDs, bundles, JWT-SVIDs). */
  readonly provider: WorkloadIdentityProvider;
  /** The workload attestor (unix, docker … plugins combined). */
  readonly attestors: EndpointsAttestor;
  /** Path of the public Unix socket. */
  readonly socketPath: string;
  /** Where to log (a pino logger fits); default: nothing. */
  readonly logger?: EndpointsLogger;
  /** Envoy SDS options; SDS is served unless `disabled` is true. */
  readonly sds?: SdsOptions & { readonly disabled?: boolean };
  /** Permission bits of the socket file (default 0o777: workloads of any user must reach it). */
  readonly socketMode?: number;
  /** Clock (JWT-SVID validation); default the system clock. */
  readonly now?: () => Date;
  /** Claims kept for foreign-trust-domain tokens in `ValidateJWTSVID` (SPIRE `allowed_foreign_jwt_claims`). */
  readonly allowedForeignJwtClaims?: readonly string[];
  /**
   * Serve the trust domain's own bundle on FetchX509Bundles and FetchJWTBundles to callers without an identity
   * (SPIRE `allow_unauthenticated_verifiers`); default false: they get PermissionDenied.
   */
  readonly allowUnauthenticatedVerifiers?: boolean;
  /** Peer credential reader (default: the platform's); tests may inject one. */
  readonly peerReader?: PeerCredentialReader;
  /** Largest request message accepted, in bytes (default 1 MiB); larger ones get `ResourceExhausted`. */
  readonly maxReceiveMessageBytes?: number;
  /**
   * How long an attestation started when a connection is accepted may serve the connection's first call, in ms
   * (default 100; 0: callers are attested only when their calls arrive; tests lengthen it).
   */
  readonly earlyAttestationMaxAgeMs?: number;
  /** Called when a call's caller cannot be attested (the agent's failure counter). */
  readonly onAttestationFailed?: (err: unknown) => void;
  /** grpc-js server interceptors run on every call (the agent's call metrics); default none. */
  readonly interceptors?: readonly ServerInterceptor[];
}

/** The running endpoints. */
export interface WorkloadEndpoints {
  /** Listens on the socket. */
  start(): Promise<void>;
  /** Stops listening and ends every call and connection (after `graceMs`, default 0). Idempotent. */
  close(graceMs?: number): Promise<void>;
  /** Number of open client connections (0 before start). */
  readonly connectionCount: number;
}

/** Request/response size limits and liveness checks of the public server. */
function serverOptions(maxReceive: number): ChannelOptions {
  return {
    'grpc.max_receive_message_length': maxReceive,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    // A client that stops answering HTTP/2 pings (hung or frozen) has its connection closed, which ends its
    // streams and subscriptions. Vanished clients are seen at once: the kernel closes their socket.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.max_concurrent_streams': 2048,
    // No channelz: nothing reads it (the agent reports Prometheus metrics), and it tracks every connection and
    // call, which is per-caller work on the path of a new workload's first SVID.
    'grpc.enable_channelz': 0,
  };
}

/**
 * A copy of a grpc-js service definition as the agent serves it:
 * - request deserializers never throw: undecodable bytes reach the handler as a marker it answers with
 *   `InvalidArgument` (see {@link markMalformedRequests}), where grpc-js would answer `Internal`;
 * - response serializers remember the encoding of each response object (weakly): a message built once for a
 *   snapshot and written to many streams is encoded once. grpc-js copies the bytes into each stream's own
 *   frame, so sharing them is safe.
 */
function forServing<S extends object>(definition: S): S {
  const out: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition) as [
    string,
    { requestDeserialize: unknown; responseSerialize: unknown },
  ][]) {
    const serialize = method.responseSerialize as (value: object) => Buffer;
    const encoded = new WeakMap<object, Buffer>();
    out[name] = {
      ...method,
      requestDeserialize: markMalformedRequests(method.requestDeserialize as (bytes: Buffer) => unknown),
      responseSerialize: (value: object): Buffer => {
        let bytes = encoded.get(value);
        if (bytes === undefined) {
          bytes = serialize(value);
          encoded.set(value, bytes);
        }
        return bytes;
      },
    };
  }
  return out as S;
}

/**
 * How long an attestation started when a connection was accepted may serve its first call, by default. Clients
 * send their first request within a millisecond or two of connecting; a caller that waits longer (and may have
 * changed in between: setuid, exec) is attested again.
 */
const EARLY_ATTESTATION_MAX_AGE_MS = 100;

/**
 * Attestations started at accept time, before grpc-js has read a byte of the connection: the kernel and /proc
 * are read while the caller's HTTP/2 preface and request are still on their way, so a new caller's first call
 * does not wait for them. Each serves only the first call of its connection that gets to attestation (calls
 * refused for their header come before it), and only within `maxAgeMs`; every other call is attested when it
 * arrives. A failure is counted only for calls: an early attestation that failed is made again by its call.
 */
class EarlyAttestations {
  readonly #attestors: EndpointsAttestor;
  readonly #maxAgeMs: number;
  readonly #onFailure: ((err: unknown) => void) | undefined;
  readonly #pending = new WeakMap<
    PeerInfo,
    { at: number; selectors: Promise<readonly WorkloadSelector[]> }
  >();
  /** Peers that had a call attested: an early attestation is never started for them, nor used. */
  readonly #called = new WeakSet<PeerInfo>();

  constructor(attestors: EndpointsAttestor, maxAgeMs: number, onFailure?: (err: unknown) => void) {
    this.#attestors = attestors;
    this.#maxAgeMs = maxAgeMs;
    this.#onFailure = onFailure;
  }

  /** Starts attesting a newly accepted peer (unless disabled, or a call of it was already attested). */
  start(peer: PeerInfo): void {
    // No liveness check here: the attestation checks it before and after reading /proc.
    if (this.#maxAgeMs === 0 || this.#called.has(peer)) return;
    // A failure is reported by the call that would have used it (it attests again and gets the error itself).
    const selectors = (async () => this.#attestors.attest(peer))();
    selectors.catch(() => {});
    this.#pending.set(peer, { at: performance.now(), selectors });
  }

  /** The peer's selectors: its early attestation when this is its first call and it is fresh, else a new one. */
  async attest(peer: PeerInfo): Promise<readonly WorkloadSelector[]> {
    this.#called.add(peer);
    const early = this.#pending.get(peer);
    if (early !== undefined) {
      this.#pending.delete(peer);
      if (performance.now() - early.at <= this.#maxAgeMs) {
        try {
          const selectors = await early.selectors;
          if (peer.isAlive()) return selectors;
        } catch {
          // attested again below, which reports the failure
        }
      }
    }
    try {
      return await this.#attestors.attest(peer);
    } catch (err) {
      this.#onFailure?.(err);
      throw err;
    }
  }
}

/**
 * Creates the Workload API + SDS endpoints on `socketPath`. Every call is attested: the peer tracker reads
 * the caller's credentials from the kernel when it connects, and `attestors` turns them into selectors.
 *
 * @throws {RangeError} when `maxReceiveMessageBytes` is not a positive integer, or `earlyAttestationMaxAgeMs` not a
 * non-negative integer.
 * @example
 * ```ts
 * const endpoints = createWorkloadEndpoints({ provider, attestors, socketPath: '/tmp/tessera-agent/public/api.sock', logger });
 * await endpoints.start();
 * ```
 */
export function createWorkloadEndpoints(config: WorkloadEndpointsConfig): WorkloadEndpoints {
  const log = config.logger ?? nullLogger;
  const maxReceive = config.maxReceiveMessageBytes ?? 1024 * 1024;
  if (!Number.isInteger(maxReceive) || maxReceive <= 0) {
    throw new RangeError(
      `endpoints: maxReceiveMessageBytes must be a positive integer, got ${String(maxReceive)}`,
    );
  }
  const earlyMaxAge = config.earlyAttestationMaxAgeMs ?? EARLY_ATTESTATION_MAX_AGE_MS;
  if (!Number.isInteger(earlyMaxAge) || earlyMaxAge < 0) {
    throw new RangeError(
      `endpoints: earlyAttestationMaxAgeMs must be a non-negative integer, got ${String(earlyMaxAge)}`,
    );
  }
  const early = new EarlyAttestations(config.attestors, earlyMaxAge, config.onAttestationFailed);
  const attestCaller: CallerAttestation = async (call: AttestableCall) => {
    const peer = peerInfoOf(call);
    if (peer === undefined) throw new Error('endpoints: call did not arrive through the peer tracker');
    return early.attest(peer);
  };
  // The pinned peer (pidfd) of a call's connection still runs: a process that inherited the connection from the
  // attested one, which exited, gets no further SVIDs on its streams.
  const callerAlive = (call: { getPeer(): string }): boolean => peerInfoOf(call)?.isAlive() ?? false;
  const grpcServer = new Server({
    ...serverOptions(maxReceive),
    ...(config.interceptors === undefined || config.interceptors.length === 0
      ? {}
      : { interceptors: [...config.interceptors] }),
  });
  grpcServer.addService(
    forServing(SpiffeWorkloadAPIService),
    createWorkloadApiHandlers({
      provider: config.provider,
      attestCaller,
      logger: log,
      ...(config.now !== undefined ? { now: config.now } : {}),
      ...(config.allowedForeignJwtClaims !== undefined
        ? { allowedForeignJwtClaims: config.allowedForeignJwtClaims }
        : {}),
      allowUnauthenticatedVerifiers: config.allowUnauthenticatedVerifiers === true,
      callerAlive,
    }),
  );
  if (config.sds?.disabled !== true) {
    grpcServer.addService(
      forServing(SecretDiscoveryServiceDefinition),
      createSdsHandlers({
        provider: config.provider,
        attestCaller: (call) => attestCaller(call as AttestableCall),
        callerAlive,
        logger: log,
        ...(config.sds !== undefined ? { options: config.sds } : {}),
      }),
    );
  }

  let tracker: PeerTrackingServer | undefined;
  let closing: Promise<void> | undefined;
  return {
    async start() {
      if (tracker !== undefined) throw new Error('endpoints: already started');
      if (closing !== undefined) throw new Error('endpoints: closed');
      tracker = await createPeerTrackingServer({
        socketPath: config.socketPath,
        mode: config.socketMode ?? 0o777,
        grpcServer,
        ...(config.peerReader !== undefined ? { reader: config.peerReader } : {}),
        onRefused: (err) => log.warn({ err }, 'Refused a connection whose peer credentials cannot be read'),
        // After grpc-js has written its HTTP/2 SETTINGS (a native immediate queued by the injection): grpc-js
        // clients wait for them before sending their request, so the attestation runs while both travel.
        onAccepted: (peer) => setImmediate(() => early.start(peer)),
      });
      log.info(
        { socket_path: config.socketPath, sds: config.sds?.disabled !== true },
        'Workload API listening',
      );
    },
    async close(graceMs = 0) {
      closing ??= (async () => {
        const t = tracker;
        if (t !== undefined) await t.close(graceMs);
        await new Promise<void>((resolve) => {
          if (graceMs === 0) {
            grpcServer.forceShutdown();
            resolve();
          } else {
            const timer = setTimeout(() => grpcServer.forceShutdown(), graceMs);
            grpcServer.tryShutdown(() => {
              clearTimeout(timer);
              resolve();
            });
          }
        });
      })();
      return closing;
    },
    get connectionCount() {
      return tracker?.connectionCount ?? 0;
    },
  };
}
