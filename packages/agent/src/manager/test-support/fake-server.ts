/**
 * A small in-process tessera-server stand-in for agent tests: the agent API over TLS (server SVID
 * `spiffe://<td>/spire/server`), join_token attestation, renewal, authorized entries, batch X509-SVID signing,
 * JWT-SVID minting, bundles and the entry watch, with ban/evict and call counters. Not a real server: it
 * implements only what the agent uses, with the same status codes and messages as packages/server.
 *
 * @module
 */
import {
  createHash,
  sign as cryptoSign,
  verify as cryptoVerify,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  X509Certificate,
} from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import {
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  status,
} from '@grpc/grpc-js';
import {
  AgentService,
  type AttestAgentRequest,
  type AttestAgentResponse,
  type Bundle,
  BundleService,
  type Entry,
  EntryService,
  SVIDService,
  SyncService,
  type WatchAuthorizedEntriesResponse,
  type X509SVID,
} from '@tessera/common/api';
import { parseCsr } from '@tessera/common/x509';
import { TestCa } from '@tessera/testing';

/** A registration entry of the fake server. */
export interface FakeEntry {
  readonly id: string;
  readonly spiffeId: string;
  readonly selectors: readonly { type: string; value: string }[];
  readonly hint?: string;
  readonly federatesWith?: readonly string[];
  readonly revision?: bigint;
  readonly createdAt?: bigint;
}

/** A JWT signing key of the fake server (ES256), published in the bundle as a JWT authority. */
export interface FakeJwtKey {
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  tainted: boolean;
}

/** A new ES256 JWT key named `keyId`. */
export function newFakeJwtKey(keyId: string): FakeJwtKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { keyId, privateKey, publicKey, tainted: false };
}

type Err = Error & { code: status; details: string };
const grpcErr = (code: status, details: string): Err => Object.assign(new Error(details), { code, details });

/** The fake server; see the module comment. */
export class FakeAgentServer {
  readonly trustDomain: string;
  ca: TestCa;
  /** Extra authorities published in the bundle (CA rotation). */
  readonly extraAuthorities: { cert: X509Certificate; tainted: boolean }[] = [];
  readonly tokens = new Set<string>();
  /** JWT authorities of the bundle; JWT-SVIDs are signed with the last one (the newest). */
  jwtKeys: FakeJwtKey[] = [newFakeJwtKey('jwt-key-1')];
  /**
   * CA trusted for x509pop node attestation (undefined: x509pop refused). The agent proves possession of the
   * key of a leaf that chains to it (directly or through intermediates in the payload), as on the real server;
   * x509pop agents are re-attestable.
   */
  x509PopCa: TestCa | undefined;
  readonly agents = new Map<string, { serial: string; banned: boolean }>();
  entries: FakeEntry[] = [];
  /** Clock used for issued SVIDs. */
  now: () => Date = () => new Date();
  x509TtlMs = 3600_000;
  /** How far workload X509-SVIDs' notBefore is set in the past (the real server backdates 10 s). */
  x509BackdateMs = 0;
  agentTtlMs = 3600_000;
  jwtTtlS = 300;
  readonly calls = {
    attest: 0,
    renew: 0,
    entries: 0,
    /** GetAuthorizedEntries calls whose output mask asks for the revision number only. */
    entryRevisions: 0,
    batch: 0,
    batchCsrs: 0,
    jwt: 0,
    bundle: 0,
  };
  #revision = 1n;
  readonly #watchers = new Set<ServerWritableStream<unknown, WatchAuthorizedEntriesResponse>>();
  #server: Server | undefined;
  #tls: TlsServer | undefined;
  readonly #peers = new Map<string, Buffer>();
  #injector: { destroy(): void } | undefined;
  port = 0;

  constructor(trustDomain = 'example.org') {
    this.trustDomain = trustDomain;
    this.ca = TestCa.create({ trustDomain });
  }

  /** The bundle PEM (bootstrap bundle file content). */
  bundlePem(): string {
    return this.ca.rootPem();
  }

  /** Starts listening on 127.0.0.1 on a free port. */
  async start(port = 0): Promise<void> {
    const serverSvid = this.ca.issueX509Svid({ spiffeId: `spiffe://${this.trustDomain}/spire/server` });
    const server = new Server();
    this.#addServices(server);
    // Client certificates are requested but optional (AttestAgent has none), as on the real server.
    const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
    const tlsServer = createTlsServer(
      {
        key: serverSvid.keyPem,
        cert: serverSvid.certPem,
        requestCert: true,
        rejectUnauthorized: false,
        ALPNProtocols: ['h2'],
      },
      (socket) => {
        // grpc-js has no auth context for injected connections: remember the peer certificate by address.
        const key = `${socket.remoteAddress}:${socket.remotePort}`;
        const raw = socket.getPeerCertificate().raw as Buffer | undefined;
        if (raw !== undefined) this.#peers.set(key, raw);
        socket.once('close', () => this.#peers.delete(key));
        injector.injectConnection(socket);
      },
    );
    this.port = await new Promise<number>((resolve, reject) => {
      tlsServer.once('error', reject);
      tlsServer.listen(port, '127.0.0.1', () => resolve((tlsServer.address() as AddressInfo).port));
    });
    this.#tls = tlsServer;
    this.#injector = injector;
    this.#server = server;
  }

  /** Stops at once (connections are dropped). */
  stop(): void {
    for (const w of this.#watchers) w.end();
    this.#watchers.clear();
    this.#tls?.close();
    this.#injector?.destroy();
    this.#server?.forceShutdown();
    this.#server = undefined;
    this.#tls = undefined;
  }

  /** Ends every open entry watch with a gRPC error, as the real server does when it bans or evicts an agent. */
  failWatchers(code: status, message: string): void {
    for (const w of this.#watchers) w.emit('error', grpcErr(code, message));
    this.#watchers.clear();
  }

  /** Replaces the entries and notifies watchers (unless `quietly`: then agents see it on their next resync). */
  setEntries(entries: FakeEntry[], quietly = false): void {
    this.entries = entries;
    if (!quietly) this.bump();
  }

  /** Announces a new revision to watchers. */
  bump(): void {
    this.#revision++;
    for (const w of this.#watchers) w.write({ revision: this.#revision });
  }

  #issue(spiffeId: string, csr: Buffer, ttlMs: number, backdateMs = 0): X509SVID {
    const now = this.now();
    const { publicKey } = parseCsr(csr);
    const issued = this.ca.issueX509Svid({
      publicKey,
      spiffeId,
      now,
      notBefore: new Date(now.getTime() - backdateMs),
      notAfter: new Date(now.getTime() + ttlMs),
    });
    return {
      certChain: issued.certificates.map((c) => c.raw),
      id: { trustDomain: this.trustDomain, path: new URL(spiffeId).pathname },
      expiresAt: BigInt(Math.floor((now.getTime() + ttlMs) / 1000)),
      hint: '',
    };
  }

  #agentOf(call: { getPeer(): string }): string {
    const raw = this.#peers.get(call.getPeer());
    if (raw === undefined || raw.length === 0)
      throw grpcErr(status.PERMISSION_DENIED, 'authorization denied: no client certificate');
    const cert = new X509Certificate(raw);
    // As the real server: a client certificate that is no longer valid is refused before the agent is looked up.
    if (this.now().getTime() > Date.parse(cert.validTo)) {
      throw grpcErr(
        status.UNAUTHENTICATED,
        'client certificate verification failed: x509svid: certificate has expired',
      );
    }
    const id = /URI:([^,\s]+)/.exec(cert.subjectAltName ?? '')?.[1] ?? '';
    const node = this.agents.get(id);
    if (node === undefined)
      throw grpcErr(status.PERMISSION_DENIED, `authorization denied: agent "${id}" is not attested`);
    if (node.banned) throw grpcErr(status.PERMISSION_DENIED, `authorization denied: agent "${id}" is banned`);
    if (node.serial !== cert.serialNumber) {
      throw grpcErr(
        status.PERMISSION_DENIED,
        `authorization denied: agent "${id}" presented an SVID that is not its current one`,
      );
    }
    return id;
  }

  /** The leaf of an x509pop payload when it chains to {@link x509PopCa}; undefined otherwise. */
  #x509PopLeaf(payload: Buffer): X509Certificate | undefined {
    const ca = this.x509PopCa;
    if (ca === undefined) return undefined;
    let chain: X509Certificate[];
    try {
      const doc = JSON.parse(payload.toString('utf8')) as { certificates?: unknown };
      if (!Array.isArray(doc.certificates)) return undefined;
      chain = doc.certificates.map((c) => new X509Certificate(Buffer.from(String(c), 'base64')));
    } catch {
      return undefined;
    }
    const leaf = chain[0];
    if (leaf === undefined) return undefined;
    const now = this.now().getTime();
    let current = leaf;
    for (let i = 0; i <= chain.length; i++) {
      if (now < Date.parse(current.validFrom) || now > Date.parse(current.validTo)) return undefined;
      if (current.checkIssued(ca.certificate) && current.verify(ca.certificate.publicKey)) return leaf;
      const next = chain.slice(1).find((c) => c.ca && current.checkIssued(c) && current.verify(c.publicKey));
      if (next === undefined) return undefined;
      current = next;
    }
    return undefined;
  }

  #bundle(): Bundle {
    return {
      trustDomain: this.trustDomain,
      x509Authorities: [
        { asn1: this.ca.rootDer(), tainted: false, hint: '' },
        ...this.extraAuthorities.map((a) => ({ asn1: a.cert.raw, tainted: a.tainted, hint: '' })),
      ],
      jwtAuthorities: this.jwtKeys.map((k) => ({
        publicKey: k.publicKey.export({ type: 'spki', format: 'der' }),
        keyId: k.keyId,
        expiresAt: 0n,
        tainted: k.tainted,
        hint: '',
      })),
      refreshHint: 0n,
      sequenceNumber: 1n,
    };
  }

  #unary<Q, R>(
    fn: (req: Q, call: ServerUnaryCall<Q, R>) => R,
  ): (call: ServerUnaryCall<Q, R>, cb: sendUnaryData<R>) => void {
    return (call, cb) => {
      try {
        cb(null, fn(call.request, call));
      } catch (err) {
        cb(err as Err);
      }
    };
  }

  #addServices(server: Server): void {
    const td = this.trustDomain;
    const unimplemented = (_c: unknown, cb: sendUnaryData<unknown>) =>
      cb(grpcErr(status.UNIMPLEMENTED, 'unimplemented'));
    const fill = (def: object, impl: Record<string, unknown>) => {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(def)) out[k] = impl[k] ?? unimplemented;
      return out;
    };
    server.addService(
      AgentService,
      fill(AgentService, {
        attestAgent: (call: ServerDuplexStream<AttestAgentRequest, AttestAgentResponse>) => {
          const refuse = (details: string) => call.emit('error', grpcErr(status.PERMISSION_DENIED, details));
          const admit = (agentId: string, csr: Buffer, reattestable: boolean) => {
            const existing = this.agents.get(agentId);
            if (existing?.banned) {
              refuse('failed to attest: agent is banned');
              return;
            }
            const svid = this.#issue(agentId, csr, this.agentTtlMs);
            this.agents.set(agentId, {
              serial: new X509Certificate(svid.certChain[0] as Buffer).serialNumber,
              banned: false,
            });
            call.write({ result: { svid, reattestable } });
            call.end();
          };
          call.once('data', (req: AttestAgentRequest) => {
            this.calls.attest++;
            const p = req.params;
            const csr = p?.params?.csr ?? Buffer.alloc(0);
            const payload = p?.data?.payload ?? Buffer.alloc(0);
            if (p?.data?.type === 'x509pop') {
              const leaf = this.#x509PopLeaf(payload);
              if (leaf === undefined) {
                refuse('failed to attest: x509pop: certificate does not chain to a trusted CA');
                return;
              }
              const nonce = randomBytes(32);
              call.once('data', (answer: AttestAgentRequest) => {
                let signature = Buffer.alloc(0);
                try {
                  const doc = JSON.parse(answer.challengeResponse?.toString('utf8') ?? '') as {
                    signature?: unknown;
                  };
                  if (typeof doc.signature === 'string') signature = Buffer.from(doc.signature, 'base64');
                } catch {
                  // an unparsable answer fails the signature check below
                }
                if (!cryptoVerify('sha256', nonce, leaf.publicKey, signature)) {
                  refuse('failed to attest: x509pop: challenge response does not verify');
                  return;
                }
                const fp = createHash('sha1').update(leaf.raw).digest('hex');
                admit(`spiffe://${td}/spire/agent/x509pop/${fp}`, csr, true);
              });
              call.write({ challenge: Buffer.from(JSON.stringify({ nonce: nonce.toString('base64') })) });
              return;
            }
            const token = payload.toString('utf8');
            if (p?.data?.type !== 'join_token' || !this.tokens.has(token)) {
              refuse('failed to attest: join token does not exist, has expired or has already been used');
              return;
            }
            const agentId = `spiffe://${td}/spire/agent/join_token/${token}`;
            if (this.agents.get(agentId)?.banned) {
              refuse('failed to attest: agent is banned');
              return;
            }
            this.tokens.delete(token);
            admit(agentId, csr, false);
          });
        },
        renewAgent: this.#unary((req: { params?: { csr: Buffer } }, call) => {
          const id = this.#agentOf(call);
          this.calls.renew++;
          const svid = this.#issue(id, req.params?.csr ?? Buffer.alloc(0), this.agentTtlMs);
          (this.agents.get(id) as { serial: string }).serial = new X509Certificate(
            svid.certChain[0] as Buffer,
          ).serialNumber;
          return { svid };
        }),
      }) as never,
    );
    server.addService(
      EntryService,
      fill(EntryService, {
        getAuthorizedEntries: this.#unary((req: { outputMask?: Record<string, boolean> }, call) => {
          this.#agentOf(call);
          this.calls.entries++;
          const mask = req.outputMask;
          if (mask !== undefined && mask.revisionNumber === true && !mask.spiffeId && !mask.selectors)
            this.calls.entryRevisions++;
          const entries: Entry[] = this.entries.map((e, i) => ({
            id: e.id,
            spiffeId: { trustDomain: td, path: new URL(e.spiffeId).pathname },
            parentId: undefined,
            selectors: e.selectors.map((s) => ({ ...s })),
            x509SvidTtl: 0,
            federatesWith: [...(e.federatesWith ?? [])],
            admin: false,
            downstream: false,
            expiresAt: 0n,
            dnsNames: [],
            revisionNumber: e.revision ?? 1n,
            storeSvid: false,
            jwtSvidTtl: 0,
            hint: e.hint ?? '',
            createdAt: e.createdAt ?? BigInt(i + 1),
          }));
          return { entries };
        }),
      }) as never,
    );
    server.addService(
      SVIDService,
      fill(SVIDService, {
        batchNewX509Svid: this.#unary((req: { params: { entryId: string; csr: Buffer }[] }, call) => {
          this.#agentOf(call);
          this.calls.batch++;
          this.calls.batchCsrs += req.params.length;
          return {
            results: req.params.map((p) => {
              const e = this.entries.find((x) => x.id === p.entryId);
              if (e === undefined)
                return { status: { code: status.NOT_FOUND, message: 'entry not found' }, svid: undefined };
              return {
                status: { code: 0, message: 'OK' },
                svid: this.#issue(e.spiffeId, p.csr, this.x509TtlMs, this.x509BackdateMs),
              };
            }),
          };
        }),
        newJwtsvid: this.#unary((req: { entryId: string; audience: string[] }, call) => {
          this.#agentOf(call);
          this.calls.jwt++;
          const e = this.entries.find((x) => x.id === req.entryId);
          if (e === undefined) throw grpcErr(status.NOT_FOUND, 'entry not found');
          const iat = Math.floor(this.now().getTime() / 1000);
          const key = this.jwtKeys.at(-1);
          if (key === undefined) throw grpcErr(status.INTERNAL, 'no jwt key');
          const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
          const signed = `${part({ alg: 'ES256', kid: key.keyId, typ: 'JWT' })}.${part({
            sub: e.spiffeId,
            aud: req.audience,
            iat,
            exp: iat + this.jwtTtlS,
            jti: `${this.calls.jwt}`,
          })}`;
          const signature = cryptoSign('sha256', Buffer.from(signed), {
            key: key.privateKey,
            dsaEncoding: 'ieee-p1363',
          });
          return {
            svid: {
              token: `${signed}.${signature.toString('base64url')}`,
              id: { trustDomain: td, path: new URL(e.spiffeId).pathname },
              issuedAt: BigInt(iat),
              expiresAt: BigInt(iat + this.jwtTtlS),
              hint: '',
            },
          };
        }),
      }) as never,
    );
    server.addService(
      BundleService,
      fill(BundleService, {
        getBundle: this.#unary((_req: unknown, call) => {
          this.#agentOf(call);
          this.calls.bundle++;
          return this.#bundle();
        }),
        listFederatedBundles: this.#unary((_req: unknown, call) => {
          this.#agentOf(call);
          return { bundles: [], nextPageToken: '' };
        }),
      }) as never,
    );
    server.addService(
      SyncService,
      fill(SyncService, {
        watchAuthorizedEntries: (call: ServerWritableStream<unknown, WatchAuthorizedEntriesResponse>) => {
          try {
            this.#agentOf(call);
          } catch (err) {
            call.emit('error', err);
            return;
          }
          this.#watchers.add(call);
          call.on('cancelled', () => this.#watchers.delete(call));
          call.write({ revision: this.#revision });
        },
      }) as never,
    );
  }
}
