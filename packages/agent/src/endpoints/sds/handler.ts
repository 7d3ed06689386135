/**
 * Envoy SDS v3 (`envoy.service.secret.v3.SecretDiscoveryService`) served from the workload's identities,
 * as SPIRE serves it (CONFORMANCE §3.2, §3.3), with two deliberate differences: unknown resource names are
 * left out of the response instead of failing the whole request, and each bundle alias (`spiffe://<td>`,
 * `ROOTCA`, `ALL`) is resolved on its own (no first-match quirk).
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData, status } from '@grpc/grpc-js';
import {
  type Any,
  type DiscoveryRequest,
  type DiscoveryResponse,
  encodeAny,
  SECRET_ANY,
  SECRET_TYPE_URL,
  type Secret,
  type SecretDiscoveryServiceServer,
  SecretDiscoveryServiceService,
  SPIFFE_CERT_VALIDATOR_CONFIG_ANY,
  SPIFFE_CERT_VALIDATOR_NAME,
} from '@tessera/common/api';
import type { SpiffeBundle } from '@tessera/spiffe/bundle';
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

/** The grpc-js service definition of SDS, re-exported for the endpoint composition. */
export const SecretDiscoveryServiceDefinition = SecretDiscoveryServiceService;

/** SDS options (SPIRE's agent `sds { … }` block). */
export interface SdsOptions {
  /** TLS-certificate name of the workload's default (first) SVID; default `default`. */
  readonly defaultSvidName?: string;
  /** Validation-context name of the agent's own trust domain bundle; default `ROOTCA`. */
  readonly defaultBundleName?: string;
  /** Validation-context name of all bundles with the SPIFFE validator; default `ALL`. */
  readonly defaultAllBundlesName?: string;
  /**
   * Turns the SPIFFE certificate validator off (per Envoy: node metadata `disable_spiffe_cert_validation`);
   * `ALL` then fails with `Internal`, as in SPIRE. Default false.
   */
  readonly disableSpiffeCertValidation?: boolean;
}

/** Options of {@link createSdsHandlers}. */
export interface SdsHandlerOptions {
  readonly provider: WorkloadIdentityProvider;
  /** Attests the caller of a call (throws when it cannot be attested). */
  readonly attestCaller: (
    call: ServerDuplexStream<unknown, unknown> | ServerUnaryCall<unknown, unknown>,
  ) => Promise<readonly WorkloadSelector[]>;
  readonly logger?: EndpointsLogger;
  readonly options?: SdsOptions;
  /** Nonce generator (default 4 random bytes as 8 hex chars); tests may inject a deterministic one. */
  readonly nonce?: () => string;
  /**
   * Whether the process that was attested for a call still runs; checked before each response of a stream, so
   * that secrets do not go on to a process that inherited the connection (default: always true).
   */
  readonly callerAlive?: (call: ServerDuplexStream<unknown, unknown>) => boolean;
}

const MSG_ATTESTATION = 'workload attestation failed';

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function certsPem(ders: readonly Buffer[]): Buffer {
  return Buffer.from(ders.map((d) => pem('CERTIFICATE', d)).join(''));
}

function splitDer(concat: Buffer): Buffer[] {
  // Concatenated DER certificates: each is a SEQUENCE with a definite length.
  const out: Buffer[] = [];
  let off = 0;
  while (off < concat.length) {
    if (concat[off] !== 0x30 || off + 2 > concat.length) throw new Error('sds: malformed certificate chain');
    let len = concat[off + 1]!;
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || off + 2 + n > concat.length)
        throw new Error('sds: malformed certificate chain');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + concat[off + 2 + i]!;
      hdr = 2 + n;
    }
    const end = off + hdr + len;
    if (end > concat.length) throw new Error('sds: malformed certificate chain');
    out.push(concat.subarray(off, end));
    off = end;
  }
  return out;
}

/** Go's strconv.ParseBool. */
function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Whether to use the SPIFFE certificate validator for this Envoy (node metadata override, version check). */
function spiffeValidatorUsable(req: DiscoveryRequest, opts: SdsOptions): boolean {
  let disabled = opts.disableSpiffeCertValidation === true;
  const meta = req.node?.metadata as Record<string, unknown> | undefined;
  const override = meta?.disable_spiffe_cert_validation;
  if (typeof override === 'boolean') disabled = override;
  else if (typeof override === 'string') disabled = parseGoBool(override) ?? disabled;
  if (disabled) return false;
  const v = req.node?.userAgentBuildVersion?.version;
  if (v === undefined) return true;
  return v.majorNumber > 1 || (v.majorNumber === 1 && v.minorNumber > 17);
}

function tlsCertificateSecret(name: string, chainDer: Buffer, keyDer: Buffer): Secret {
  return {
    name,
    tlsCertificate: {
      certificateChain: { inlineBytes: certsPem(splitDer(chainDer)) },
      privateKey: { inlineBytes: Buffer.from(pem('PRIVATE KEY', keyDer)) },
    },
  };
}

/**
 * A validation context of one trust domain: the SPIFFE certificate validator for it when Envoy can use that
 * validator (it also refuses CA leaves and checks the leaf's trust domain), else the bundle as `trusted_ca`.
 */
function bundleSecret(name: string, bundle: SpiffeBundle, spiffeValidator: boolean): Secret {
  if (spiffeValidator) return spiffeValidatorSecret(name, [bundle]);
  return {
    name,
    validationContext: {
      trustedCa: { inlineBytes: certsPem(bundle.x509Authorities().map((c) => c.raw)) },
      customValidatorConfig: undefined,
    },
  };
}

function spiffeValidatorSecret(name: string, bundles: readonly SpiffeBundle[]): Secret {
  const sorted = [...bundles].sort((a, b) => a.trustDomain.compare(b.trustDomain));
  return {
    name,
    validationContext: {
      trustedCa: undefined,
      customValidatorConfig: {
        name: SPIFFE_CERT_VALIDATOR_NAME,
        typedConfig: encodeAny(SPIFFE_CERT_VALIDATOR_CONFIG_ANY, {
          trustDomains: sorted.map((b) => ({
            name: b.trustDomain.name,
            trustBundle: { inlineBytes: certsPem(b.x509Authorities().map((c) => c.raw)) },
          })),
        }),
      },
    },
  };
}

/**
 * Resolves the requested resource names against a snapshot into secrets (in SPIRE's order: own bundle,
 * federated bundles, SVIDs). An empty name list returns every bundle by trust domain ID and every SVID by
 * SPIFFE ID. Unknown names are left out.
 *
 * @throws a gRPC `Internal` status error when `ALL` is requested but the SPIFFE validator cannot be used.
 */
export function buildSecrets(
  req: DiscoveryRequest,
  snap: IdentitySnapshot,
  opts: Required<Omit<SdsOptions, 'disableSpiffeCertValidation'>> & SdsOptions,
): Secret[] | GrpcStatusError {
  const names = new Set(req.resourceNames.filter((n) => n !== ''));
  const all = names.size === 0;
  const secrets: Secret[] = [];
  const own = snap.bundle;
  const ownId = own.trustDomain.idString();
  const federated = [...snap.federatedBundles.values()]
    .filter((b) => !b.trustDomain.equals(own.trustDomain))
    .sort((a, b) => a.trustDomain.compare(b.trustDomain));

  const spiffe = spiffeValidatorUsable(req, opts);
  if (all || names.has(ownId)) secrets.push(bundleSecret(ownId, own, spiffe));
  if (!all && names.has(opts.defaultBundleName))
    secrets.push(bundleSecret(opts.defaultBundleName, own, spiffe));
  if (!all && names.has(opts.defaultAllBundlesName)) {
    if (!spiffe) {
      return grpcError(status.INTERNAL, 'unable to use "SPIFFE validator" on Envoy below 1.17');
    }
    secrets.push(spiffeValidatorSecret(opts.defaultAllBundlesName, [own, ...federated]));
  }
  for (const b of federated) {
    const id = b.trustDomain.idString();
    if (all || names.has(id)) secrets.push(bundleSecret(id, b, spiffe));
  }
  const seen = new Set<string>();
  snap.svids.forEach((svid, i) => {
    if ((all || names.has(svid.spiffeId)) && !seen.has(svid.spiffeId)) {
      seen.add(svid.spiffeId);
      secrets.push(tlsCertificateSecret(svid.spiffeId, svid.chainDer, svid.keyDer));
    }
    if (i === 0 && !all && names.has(opts.defaultSvidName)) {
      secrets.push(tlsCertificateSecret(opts.defaultSvidName, svid.chainDer, svid.keyDer));
    }
  });
  return secrets;
}

/**
 * The caller's first identity snapshot that is `ready` (at once, usually: it waits only while an SVID is being
 * issued); undefined when the call is cancelled first.
 */
function completeSnapshot(
  provider: WorkloadIdentityProvider,
  selectors: readonly WorkloadSelector[],
  call: ServerUnaryCall<DiscoveryRequest, DiscoveryResponse>,
  ready: (snap: IdentitySnapshot) => boolean,
): Promise<IdentitySnapshot | undefined> {
  return new Promise((resolve, reject) => {
    let sub: IdentitySubscription | undefined;
    let settled = false;
    const settle = (snap: IdentitySnapshot | undefined): void => {
      if (settled) return;
      settled = true;
      sub?.close();
      call.off('cancelled', onCancel);
      resolve(snap);
    };
    const onCancel = (): void => settle(undefined);
    call.on('cancelled', onCancel);
    try {
      sub = provider.subscribe(selectors, (next) => {
        if (ready(next)) settle(next);
      });
    } catch (err) {
      call.off('cancelled', onCancel);
      reject(err);
      return;
    }
    const current = sub.current();
    if (ready(current) || call.cancelled) settle(call.cancelled ? undefined : current);
  });
}

function encodeResources(secrets: readonly Secret[]): Any[] {
  return secrets.map((s) => encodeAny(SECRET_ANY, s));
}

function sameResources(a: readonly Any[], b: readonly Any[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i]!.typeUrl !== b[i]!.typeUrl || !a[i]!.value.equals(b[i]!.value)) return false;
  }
  return true;
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a.filter((n) => n !== ''));
  const sb = new Set(b.filter((n) => n !== ''));
  if (sa.size !== sb.size) return false;
  for (const n of sa) if (!sb.has(n)) return false;
  return true;
}

/**
 * Creates the grpc-js implementation of `SecretDiscoveryService` (StreamSecrets, FetchSecrets).
 *
 * Stream protocol: the version counter increments whenever the content sent changes; every response carries a
 * fresh 8-hex-character nonce; a request whose `response_nonce` is not the last nonce is ignored (stale); a
 * request with the last nonce and unchanged names is an ACK (or, with another version or an error detail, a
 * NACK: logged) and gets no response; changed names get a response at once; identity updates are sent only
 * when the requested secrets actually changed.
 *
 * @example
 * ```ts
 * server.addService(SecretDiscoveryServiceDefinition, createSdsHandlers({ provider, attestCaller }));
 * ```
 */
export function createSdsHandlers(options: SdsHandlerOptions): SecretDiscoveryServiceServer {
  const log = options.logger ?? nullLogger;
  const o = options.options ?? {};
  const opts = {
    ...o,
    defaultSvidName: o.defaultSvidName ?? 'default',
    defaultBundleName: o.defaultBundleName ?? 'ROOTCA',
    defaultAllBundlesName: o.defaultAllBundlesName ?? 'ALL',
  };
  const nonce = options.nonce ?? (() => randomBytes(4).toString('hex'));
  const callerAlive = options.callerAlive ?? (() => true);
  /** Whether the answer to `req` waits for `snap` to be complete: an SVID is being issued and `default` (or every secret) is asked for. */
  const holdsFor = (req: DiscoveryRequest, snap: IdentitySnapshot): boolean =>
    snap.pending === true &&
    snap.issuing === true &&
    (req.resourceNames.every((n) => n === '') || req.resourceNames.includes(opts.defaultSvidName));

  return {
    streamSecrets(call: ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>): void {
      let sub: IdentitySubscription | undefined;
      let done = false;
      let attesting = false;
      let snap: IdentitySnapshot | undefined;
      let lastReq: DiscoveryRequest | undefined;
      let lastNode: DiscoveryRequest['node'];
      let lastNonce = '';
      let lastSent: Any[] | undefined;
      let version = 0;
      /** A request arrived while its answer was held back (see `respond`): it is answered even if unchanged. */
      let forceDue = false;
      const queued: DiscoveryRequest[] = [];
      const pump = new LatestStatePump<DiscoveryResponse>(call);

      const finish = (err?: GrpcStatusError): void => {
        if (done) return;
        done = true;
        pump.stop();
        sub?.close();
        sub = undefined;
        if (err !== undefined && !call.cancelled) call.emit('error', err);
        else if (!call.cancelled) call.end();
      };

      const respond = (force: boolean): void => {
        if (done || lastReq === undefined || snap === undefined) return;
        // While an SVID of the caller's entries is being issued, a request for `default` (the first SVID) or for
        // everything waits: `default` could otherwise name another SVID for a moment. The update that completes
        // the set answers it (with the response a forced answer was owed, if any).
        if (holdsFor(lastReq, snap)) {
          forceDue ||= force;
          return;
        }
        const forced = force || forceDue;
        forceDue = false;
        if (!callerAlive(call as ServerDuplexStream<unknown, unknown>)) {
          finish(grpcError(status.UNAVAILABLE, MSG_CALLER_EXITED));
          return;
        }
        const built = buildSecrets(lastReq, snap, opts);
        if (isGrpcStatusError(built)) {
          finish(built);
          return;
        }
        const resources = encodeResources(built);
        const changed = lastSent === undefined || !sameResources(lastSent, resources);
        if (!changed && !forced) return;
        if (changed) version += 1;
        lastSent = resources;
        lastNonce = nonce();
        pump.push({
          versionInfo: String(version),
          resources,
          typeUrl: lastReq.typeUrl === '' ? SECRET_TYPE_URL : lastReq.typeUrl,
          nonce: lastNonce,
        });
      };

      const onRequest = (req: DiscoveryRequest): void => {
        if (done) return;
        const malformed = malformedRequestError(req);
        if (malformed !== undefined) {
          finish(malformed);
          return;
        }
        if (req.node !== undefined) lastNode = req.node;
        else req.node = lastNode;
        if (req.errorDetail !== undefined) {
          log.warn(
            { method: 'StreamSecrets', nonce: req.responseNonce, error: req.errorDetail.message },
            'Envoy reported errors applying secrets',
          );
        }
        if (lastNonce !== '') {
          if (req.responseNonce !== lastNonce) {
            log.debug(
              { method: 'StreamSecrets', nonce: req.responseNonce },
              'Ignoring request with a stale nonce',
            );
            return;
          }
          if (req.versionInfo !== String(version)) {
            log.warn(
              { method: 'StreamSecrets', version: req.versionInfo, expected: String(version) },
              'Envoy rejected the last secrets (NACK)',
            );
          }
          if (lastReq !== undefined && sameNames(lastReq.resourceNames, req.resourceNames)) {
            lastReq = req;
            return; // ACK (or NACK of the same names): nothing new to send.
          }
        }
        lastReq = req;
        respond(true);
      };

      call.on('data', (req: DiscoveryRequest) => {
        if (snap === undefined) {
          queued.push(req);
          if (attesting) return;
          attesting = true;
          void (async () => {
            let selectors: readonly WorkloadSelector[];
            try {
              selectors = await options.attestCaller(call as ServerDuplexStream<unknown, unknown>);
            } catch (err) {
              log.error({ method: 'StreamSecrets', err }, 'Workload attestation failed');
              finish(grpcError(status.UNAVAILABLE, MSG_ATTESTATION));
              return;
            }
            if (done) return;
            try {
              sub = options.provider.subscribe(selectors, (s) => {
                snap = s;
                respond(false);
              });
            } catch (err) {
              log.error({ method: 'StreamSecrets', err }, 'Cannot subscribe to workload identities');
              finish(grpcError(status.UNAVAILABLE, 'identities are not available'));
              return;
            }
            if (done) {
              sub.close();
              return;
            }
            snap = sub.current();
            for (const r of queued.splice(0)) onRequest(r);
          })();
          return;
        }
        onRequest(req);
      });
      call.on('end', () => finish());
      call.on('cancelled', () => finish());
      call.on('close', () => finish());
      call.on('error', () => finish());
    },

    fetchSecrets(
      call: ServerUnaryCall<DiscoveryRequest, DiscoveryResponse>,
      callback: sendUnaryData<DiscoveryResponse>,
    ): void {
      void (async () => {
        let selectors: readonly WorkloadSelector[];
        try {
          selectors = await options.attestCaller(call as ServerUnaryCall<unknown, unknown>);
        } catch (err) {
          log.error({ method: 'FetchSecrets', err }, 'Workload attestation failed');
          return callback(grpcError(status.UNAVAILABLE, MSG_ATTESTATION));
        }
        const malformed = malformedRequestError(call.request);
        if (malformed !== undefined) return callback(malformed);
        let snap: IdentitySnapshot | undefined;
        try {
          snap = await completeSnapshot(options.provider, selectors, call, (s) => !holdsFor(call.request, s));
        } catch (err) {
          log.error({ method: 'FetchSecrets', err }, 'Cannot read workload identities');
          return callback(grpcError(status.UNAVAILABLE, 'identities are not available'));
        }
        if (snap === undefined) return callback(grpcError(status.CANCELLED, 'cancelled'));
        const built = buildSecrets(call.request, snap, opts);
        if (isGrpcStatusError(built)) return callback(built);
        callback(null, {
          versionInfo: '',
          resources: encodeResources(built),
          typeUrl: call.request.typeUrl === '' ? SECRET_TYPE_URL : call.request.typeUrl,
          nonce: '',
        });
      })();
    },
  };
}
