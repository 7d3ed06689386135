/**
 * The agent's client of the tessera-server agent API (TCP + TLS): node attestation (no client certificate),
 * then mTLS with the agent SVID for renewal, authorized entries, SVID signing, bundles and the Tessera
 * entry watch. The server is authenticated as `spiffe://<td>/spire/server` against the trust domain's latest
 * bundle at every handshake (CA rotation does not break new connections).
 *
 * @module
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import {
  type ChannelCredentials,
  Client,
  type ClientReadableStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  AgentService,
  type AttestAgentResponse,
  type BatchNewX509SVIDResponse_Result,
  type Bundle,
  BundleService,
  Entry,
  type EntryMask,
  EntryService,
  GetAuthorizedEntriesRequest,
  type JWTSVID,
  makeClient,
  type NewX509SVIDParams,
  SVIDService,
  SyncService,
  type TypedClient,
  type WatchAuthorizedEntriesResponse,
  type X509SVID,
} from '@tessera/common/api';
import { SpiffeBundle } from '@tessera/spiffe/bundle';
import { SpiffeError } from '@tessera/spiffe/errors';
import { SpiffeId, TrustDomain } from '@tessera/spiffe/spiffeid';
import type { X509Svid } from '@tessera/spiffe/svid';
import { authorizeId, type TlsBundleSource } from '@tessera/spiffe/tls';
import { createSpiffeGrpcChannelCredentials } from '@tessera/spiffe/tls/grpc';
import type { AgentNodeAttestor } from '../attestor/node/node-attestor.js';

/** Default deadline of unary calls to the server. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** How the server's certificate is checked. */
export type ServerTrust =
  /** Verify the server's SVID against the trust domain's latest bundle (returned by the function). */
  | { readonly type: 'bundle'; readonly bundle: () => SpiffeBundle }
  /** Do not verify the server (trust on first use with `insecure_bootstrap`): only for first contact. */
  | { readonly type: 'insecure' };

/** Options of {@link ServerClient}. */
export interface ServerClientConfig {
  /** Server host (IP or DNS name). */
  readonly address: string;
  readonly port: number;
  readonly trustDomain: TrustDomain;
  readonly trust: ServerTrust;
  /** The agent SVID presented as client certificate; absent for attestation. */
  readonly agentSvid?: () => X509Svid;
  /** Deadline of unary calls (default {@link DEFAULT_CALL_TIMEOUT_MS}). */
  readonly callTimeoutMs?: number;
}

/** The result of a node attestation. */
export interface AttestationResult {
  readonly svid: X509SVID;
  readonly reattestable: boolean;
}

/** The ID of the server's own SVID in `td`. */
export function serverIdOf(td: TrustDomain): SpiffeId {
  return SpiffeId.fromSegments(td, 'spire', 'server');
}

/** `host:port` for grpc-js, with IPv6 literals bracketed. */
export function serverTarget(address: string, port: number): string {
  const host = address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
  return `${host}:${port}`;
}

function channelCredentials(config: ServerClientConfig): ChannelCredentials {
  const svid = config.agentSvid;
  if (config.trust.type === 'insecure') {
    let key: Buffer | null = null;
    let chain: Buffer | null = null;
    if (svid !== undefined) {
      const pem = svid().marshal();
      key = Buffer.from(pem.privateKey);
      chain = Buffer.from(pem.certificates);
    }
    return credentials.createSsl(null, key, chain, {
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
  }
  const bundle = config.trust.bundle;
  return createSpiffeGrpcChannelCredentials(
    svid === undefined ? undefined : { getX509Svid: () => svid() },
    // A live view of the latest bundle: roots are re-read for every handshake (CA rotation).
    {
      getX509BundleForTrustDomain: (td) => bundle().getX509BundleForTrustDomain(td),
      x509Authorities: () => bundle().x509Authorities(),
    } as TlsBundleSource,
    authorizeId(serverIdOf(config.trustDomain)),
  );
}

/** The entry fields the agent uses (IdentityManager), asked for in `GetAuthorizedEntries`. */
const AUTHORIZED_ENTRY_MASK: EntryMask = {
  spiffeId: true,
  parentId: false,
  selectors: true,
  x509SvidTtl: true,
  federatesWith: true,
  admin: false,
  downstream: false,
  expiresAt: false,
  dnsNames: false,
  revisionNumber: true,
  storeSvid: true,
  jwtSvidTtl: true,
  hint: true,
  createdAt: true,
};

/** Only the revision number (the entry ID is always returned). */
const REVISIONS_ONLY_MASK: EntryMask = {
  ...Object.fromEntries(Object.keys(AUTHORIZED_ENTRY_MASK).map((k) => [k, false])),
  revisionNumber: true,
} as EntryMask;

/**
 * A client of the server's agent API. One instance uses one set of credentials: build a new one when the
 * agent SVID changes (the server only accepts the current SVID of an agent).
 *
 * @example
 * ```ts
 * const client = new ServerClient({ address: 'server', port: 8081, trustDomain: td,
 *   trust: { type: 'bundle', bundle: () => bundle }, agentSvid: () => svid });
 * const entries = await client.getAuthorizedEntries();
 * ```
 */
export class ServerClient {
  readonly #agent: TypedClient<typeof AgentService>;
  readonly #entry: TypedClient<typeof EntryService>;
  readonly #svid: TypedClient<typeof SVIDService>;
  readonly #bundle: TypedClient<typeof BundleService>;
  readonly #sync: TypedClient<typeof SyncService>;
  /** Untyped client on the same connection, for calls with a per-call response decoder. */
  readonly #raw: Client;
  readonly #timeoutMs: number;
  #closed = false;

  constructor(config: ServerClientConfig) {
    const target = serverTarget(config.address, config.port);
    const creds = channelCredentials(config);
    // One credentials object: grpc-js shares the connection between the service clients.
    const options = {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5_000,
    };
    this.#agent = makeClient(AgentService, target, creds, options);
    this.#entry = makeClient(EntryService, target, creds, options);
    this.#svid = makeClient(SVIDService, target, creds, options);
    this.#bundle = makeClient(BundleService, target, creds, options);
    this.#sync = makeClient(SyncService, target, creds, options);
    this.#raw = new Client(target, creds, options);
    this.#timeoutMs = config.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  #deadline(): Date {
    return new Date(Date.now() + this.#timeoutMs);
  }

  /**
   * Attests the node over `Agent/AttestAgent`, answering challenges with `attestor`.
   *
   * @param csr - DER CSR of the agent SVID key.
   * @throws the grpc-js ServiceError of the server (PermissionDenied when attestation fails or the agent is
   * banned), or a SpiffeError ERR_NODE_ATTESTATION_INVALID when the exchange is malformed
   */
  async attestAgent(attestor: AgentNodeAttestor, csr: Buffer): Promise<AttestationResult> {
    const payload = await attestor.payload();
    const call = this.#agent.attestAgent({ deadline: this.#deadline() });
    return new Promise<AttestationResult>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        call.cancel();
        reject(err);
      };
      call.on('data', (res: AttestAgentResponse) => {
        if (res.result !== undefined) {
          if (settled) return;
          if (res.result.svid === undefined) {
            fail(new SpiffeError('ERR_NODE_ATTESTATION_INVALID', 'agent: attestation result has no svid'));
            return;
          }
          settled = true;
          call.end();
          resolve({ svid: res.result.svid, reattestable: res.result.reattestable });
        } else if (res.challenge !== undefined) {
          attestor.respond(res.challenge).then(
            (challengeResponse) => {
              if (!settled) call.write({ challengeResponse });
            },
            (err: unknown) => fail(err),
          );
        }
      });
      call.on('error', (err) => fail(err));
      call.on('end', () =>
        fail(
          new SpiffeError('ERR_NODE_ATTESTATION_INVALID', 'agent: server ended attestation without a result'),
        ),
      );
      call.write({ params: { data: { type: attestor.type, payload }, params: { csr } } });
    });
  }

  /** Renews the agent SVID (`Agent/RenewAgent`) for the key of `csr`. */
  async renewAgent(csr: Buffer): Promise<X509SVID> {
    const res = await this.#agent.renewAgent({ params: { csr } }, { deadline: this.#deadline() });
    if (res.svid === undefined)
      throw new SpiffeError('ERR_X509SVID_INVALID', 'agent: renewal returned no svid');
    return res.svid;
  }

  /**
   * The entries this agent is authorized for (`Entry/GetAuthorizedEntries`), with the fields the agent uses
   * only (no parent ID, DNS names, admin/downstream flags or expiry: a smaller message to send and decode).
   */
  async getAuthorizedEntries(): Promise<Entry[]> {
    const res = await this.#entry.getAuthorizedEntries(
      { outputMask: AUTHORIZED_ENTRY_MASK },
      { deadline: this.#deadline() },
    );
    return res.entries;
  }

  /**
   * Like {@link getAuthorizedEntries}, but `map` converts each entry while the response is decoded, so that
   * only the mapped values outlive the decoding (10,000 decoded entries at once grew V8's young generation).
   */
  getAuthorizedEntriesMapped<T>(map: (e: Entry) => T, mask: EntryMask = AUTHORIZED_ENTRY_MASK): Promise<T[]> {
    const request = GetAuthorizedEntriesRequest.encode({ outputMask: mask }).finish();
    return new Promise<T[]>((resolve, reject) => {
      this.#raw.makeUnaryRequest(
        EntryService.getAuthorizedEntries.path,
        () => Buffer.from(request.buffer, request.byteOffset, request.byteLength),
        (buf: Buffer) => decodeEntriesMapped(buf, map),
        undefined,
        new Metadata(),
        { deadline: this.#deadline() },
        (err: ServiceError | null, value?: T[]) => {
          if (err !== null || value === undefined) reject(err ?? new Error('agent: empty response'));
          else resolve(value);
        },
      );
    });
  }

  /**
   * The ID and revision number of every entry this agent is authorized for, and nothing else (an output mask
   * of `revision_number` only): a cheap check of whether anything changed since the last full fetch.
   */
  async getAuthorizedEntryRevisions(): Promise<Map<string, bigint>> {
    const list = await this.getAuthorizedEntriesMapped(
      (e) => [e.id, e.revisionNumber] as const,
      REVISIONS_ONLY_MASK,
    );
    return new Map(list);
  }

  /** Signs workload CSRs (`SVID/BatchNewX509SVID`); results are in request order. */
  async batchNewX509Svid(params: NewX509SVIDParams[]): Promise<BatchNewX509SVIDResponse_Result[]> {
    const res = await this.#svid.batchNewX509Svid({ params }, { deadline: this.#deadline() });
    if (res.results.length !== params.length) {
      throw new SpiffeError(
        'ERR_X509SVID_INVALID',
        `agent: server returned ${res.results.length} results for ${params.length} csrs`,
      );
    }
    return res.results;
  }

  /** Mints a JWT-SVID for an entry (`SVID/NewJWTSVID`). */
  async newJwtSvid(entryId: string, audience: readonly string[]): Promise<JWTSVID> {
    const res = await this.#svid.newJwtsvid(
      { entryId, audience: [...audience] },
      { deadline: this.#deadline() },
    );
    if (res.svid === undefined)
      throw new SpiffeError('ERR_JWTSVID_INVALID', 'agent: server returned no jwt-svid');
    return res.svid;
  }

  /** The trust domain's bundle (`Bundle/GetBundle`). */
  async getBundle(): Promise<Bundle> {
    return this.#bundle.getBundle({ outputMask: undefined }, { deadline: this.#deadline() });
  }

  /** Every federated bundle (`Bundle/ListFederatedBundles`, all pages). */
  async listFederatedBundles(): Promise<Bundle[]> {
    const out: Bundle[] = [];
    let pageToken = '';
    for (let page = 0; page < 1000; page++) {
      const res = await this.#bundle.listFederatedBundles(
        { outputMask: undefined, pageSize: 0, pageToken },
        { deadline: this.#deadline() },
      );
      out.push(...res.bundles);
      if (res.nextPageToken === '' || res.nextPageToken === pageToken) return out;
      pageToken = res.nextPageToken;
    }
    return out;
  }

  /** Opens `Sync/WatchAuthorizedEntries`; the caller listens for `data`, `error` and `end`. */
  watchAuthorizedEntries(): ClientReadableStream<WatchAuthorizedEntriesResponse> {
    return this.#sync.watchAuthorizedEntries({});
  }

  /** Closes the connections; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [this.#agent, this.#entry, this.#svid, this.#bundle, this.#sync, this.#raw]) c.close();
  }
}

function readVarint(buf: Uint8Array, at: { pos: number }): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[at.pos++];
    if (b === undefined) throw new RangeError('agent: truncated varint');
    v += (b & 0x7f) * mul;
    if (b < 0x80) return v;
    mul *= 128;
  }
  throw new RangeError('agent: varint too long');
}

/** Decodes a `GetAuthorizedEntriesResponse`, mapping each entry as soon as it is decoded. */
function decodeEntriesMapped<T>(buf: Uint8Array, map: (e: Entry) => T): T[] {
  const out: T[] = [];
  const at = { pos: 0 };
  while (at.pos < buf.length) {
    const tag = readVarint(buf, at);
    const wire = tag & 7;
    if (wire === 2) {
      const len = readVarint(buf, at);
      const end = at.pos + len;
      if (end > buf.length) throw new RangeError('agent: truncated message');
      if (tag >>> 3 === 1) out.push(map(Entry.decode(buf.subarray(at.pos, end))));
      at.pos = end;
    } else if (wire === 0) readVarint(buf, at);
    else if (wire === 1) at.pos += 8;
    else if (wire === 5) at.pos += 4;
    else throw new RangeError(`agent: unsupported wire type ${wire}`);
  }
  if (at.pos !== buf.length) throw new RangeError('agent: truncated message');
  return out;
}

/** What a failed server call means for the agent. */
export type ServerErrorKind = 'banned' | 'not_attested' | 'unavailable' | 'other';

/** Node system error codes of a connection that failed or broke: the server may come back. */
const TRANSPORT_ERRNO: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

/**
 * Classifies an error of a server call: `banned` and `not_attested` (evicted, or an SVID the server no longer
 * accepts) come from PermissionDenied; `unavailable` covers transport failures and deadlines (gRPC statuses, and
 * Node connection errors such as ECONNREFUSED). Everything else is `other`, in particular errors without a gRPC
 * status: a {@link SpiffeError} (a bad bundle, an unexpected SVID), a file that cannot be read or written
 * (ENOENT, ENOSPC) or a plain Error. Those are local or permanent: retrying as if the server were away hides them.
 *
 * @example
 * ```ts
 * if (classifyServerError(err) === 'banned') stop();
 * ```
 */
export function classifyServerError(err: unknown): ServerErrorKind {
  if (err instanceof SpiffeError) return 'other';
  const e = err as { code?: unknown; details?: unknown; message?: unknown } | null;
  if (typeof e?.code === 'string') return TRANSPORT_ERRNO.has(e.code) ? 'unavailable' : 'other';
  if (typeof e?.code !== 'number') return 'other';
  const code = e.code;
  const text = `${typeof e?.details === 'string' ? e.details : ''} ${typeof e?.message === 'string' ? e.message : ''}`;
  if (code === status.PERMISSION_DENIED || code === status.UNAUTHENTICATED) {
    if (/\bbanned\b/.test(text)) return 'banned';
    if (/not attested|not its current|agent not found/.test(text)) return 'not_attested';
    return 'other';
  }
  if (code === status.NOT_FOUND && /agent not found/.test(text)) return 'not_attested';
  if (
    code === status.UNAVAILABLE ||
    code === status.DEADLINE_EXCEEDED ||
    code === status.CANCELLED ||
    code === status.RESOURCE_EXHAUSTED
  ) {
    return 'unavailable';
  }
  return 'other';
}

/**
 * A bundle from the wire plus what is tainted in it: the fingerprints (SHA-256 of the DER) of its tainted X.509
 * authorities and the key IDs of its tainted JWT authorities.
 */
export interface ConvertedBundle {
  readonly bundle: SpiffeBundle;
  readonly taintedX509: ReadonlySet<string>;
  readonly taintedJwt: ReadonlySet<string>;
}

/**
 * Converts a `spire.api.types.Bundle` to a {@link SpiffeBundle}.
 *
 * @throws {SpiffeError} ERR_BUNDLE_INVALID when a certificate or key cannot be parsed, or the trust domain
 * is invalid
 */
export function bundleFromApi(b: Bundle): ConvertedBundle {
  let td: TrustDomain;
  try {
    td = TrustDomain.fromString(b.trustDomain);
  } catch (err) {
    throw new SpiffeError(
      'ERR_BUNDLE_INVALID',
      `agent: bundle has an invalid trust domain "${b.trustDomain}"`,
      {
        cause: err,
      },
    );
  }
  const tainted = new Set<string>();
  const x509: X509Certificate[] = [];
  for (const [i, a] of b.x509Authorities.entries()) {
    try {
      const cert = new X509Certificate(a.asn1);
      x509.push(cert);
      if (a.tainted) tainted.add(cert.fingerprint256);
    } catch (err) {
      throw new SpiffeError(
        'ERR_BUNDLE_INVALID',
        `agent: bundle "${b.trustDomain}" x509 authority ${i} is invalid`,
        {
          cause: err,
        },
      );
    }
  }
  const jwt = new Map<string, KeyObject>();
  const taintedJwt = new Set<string>();
  for (const k of b.jwtAuthorities) {
    try {
      jwt.set(k.keyId, createPublicKey({ key: k.publicKey, format: 'der', type: 'spki' }));
      if (k.tainted) taintedJwt.add(k.keyId);
    } catch (err) {
      throw new SpiffeError(
        'ERR_BUNDLE_INVALID',
        `agent: bundle "${b.trustDomain}" jwt authority "${k.keyId}" is invalid`,
        {
          cause: err,
        },
      );
    }
  }
  const bundle = SpiffeBundle.fromAuthorities(td, {
    x509Authorities: x509,
    jwtAuthorities: jwt,
    ...(b.sequenceNumber > 0n ? { sequenceNumber: b.sequenceNumber } : {}),
    ...(b.refreshHint > 0n ? { refreshHint: Number(b.refreshHint) } : {}),
  });
  return { bundle, taintedX509: tainted, taintedJwt };
}
