/**
 * Test support: an in-process tessera-server on a temp admin socket and free TCP ports, with its log lines
 * captured, and small clients for admin (Unix socket) and agent (mTLS) calls. Used by the server's tests only.
 *
 * @module
 */
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChannelCredentials, credentials, status } from '@grpc/grpc-js';
import {
  AgentService,
  type AttestAgentResponse,
  BatchCreateEntryRequest,
  CreateJoinTokenRequest,
  EntryService,
  makeClient,
  type ServiceDefinitionLike,
  type TypedClient,
} from '@tessera/common/api';
import { createLogger } from '@tessera/common/log';
import { buildCsr } from '@tessera/common/x509';
import { validateServerConfig } from '../config/load.js';
import { startServer, type TesseraServer } from '../server.js';

/** An agent's identity: its SVID chain (DER, leaf first) and key. */
export interface AgentIdentity {
  readonly chain: readonly Buffer[];
  readonly key: KeyObject;
  readonly agentId: string;
}

/** A running in-process server with helpers. */
export interface LiveServer {
  readonly server: TesseraServer;
  readonly dir: string;
  readonly socketPath: string;
  readonly trustDomain: string;
  /** Every log line written so far (JSON, one object per line). */
  readonly logLines: readonly string[];
  /** A client on the admin socket (closed by `close`). */
  admin<S extends ServiceDefinitionLike>(svc: S): TypedClient<S>;
  /** A client on the agent endpoint over TLS, with the agent's SVID when given (closed by `close`). */
  tcp<S extends ServiceDefinitionLike>(svc: S, id?: AgentIdentity): TypedClient<S>;
  /** Attests over TCP with a join token; the attestation's error when the server refuses it. */
  attestJoinToken(token: string): Promise<AgentIdentity>;
  /** Creates a join token through the admin API. */
  createJoinToken(token: string): Promise<void>;
  /** Creates one entry (selector unix:uid:1000); returns its ID. */
  createEntry(spiffePath: string, parentId: string): Promise<string>;
  /** Closes the clients and the server, and removes the temp directory. */
  close(): Promise<void>;
}

/** Options of {@link startLiveServer}. */
export interface LiveServerOptions {
  /** Configuration keys added to the defaults (SPIRE spelling, as in server.yaml). */
  readonly config?: Readonly<Record<string, unknown>>;
  readonly trustDomain?: string;
  /** Clock of the rate limiters (freeze it to make limits exact). */
  readonly rateLimitNowMs?: () => number;
  /** Clock of the server (CA, index, readiness); default the system clock. */
  readonly now?: () => Date;
}

/**
 * Starts a server with a memory key manager and SQLite under a temp directory. Its TCP listeners (agent API,
 * and health and metrics when configured) bind free ports chosen by the system, whatever ports the config
 * names: read them from `server.tcpPort`, `server.healthPort` and `server.metricsPort`. (A port picked free
 * beforehand can be taken by another process before the server binds it.)
 *
 * @throws {Error} when the configuration is invalid or the server cannot start
 */
export async function startLiveServer(opts: LiveServerOptions = {}): Promise<LiveServer> {
  const td = opts.trustDomain ?? 'example.org';
  const dir = await mkdtemp(join(tmpdir(), 'tessera-live-'));
  const socketPath = join(dir, 'private', 'api.sock');
  const r = validateServerConfig({
    trust_domain: td,
    bind_address: '127.0.0.1',
    bind_port: 18999,
    socket_path: socketPath,
    data_dir: join(dir, 'data'),
    key_manager: { type: 'memory' },
    rate_limit: { attestation: 1000, signing: 1000 },
    ...opts.config,
  });
  if (!('config' in r)) throw new Error(`invalid test config: ${JSON.stringify(r.errors)}`);
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (l: string) => logLines.push(l) } });
  let server: TesseraServer;
  try {
    server = await startServer({
      config: r.config,
      logger,
      bindPort: 0,
      healthPort: 0,
      metricsPort: 0,
      ...(opts.rateLimitNowMs === undefined ? {} : { rateLimitNowMs: opts.rateLimitNowMs }),
      ...(opts.now === undefined ? {} : { now: opts.now }),
    });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const bundlePem = () =>
    server.ca
      .bundle()
      .x509Authorities()
      .map((c) => c.toString())
      .join('');
  const clients: { close(): void }[] = [];
  const admin = <S extends ServiceDefinitionLike>(svc: S): TypedClient<S> => {
    const c = makeClient(svc, `unix://${socketPath}`, credentials.createInsecure());
    clients.push(c);
    return c;
  };
  const tlsCreds = (id?: AgentIdentity): ChannelCredentials =>
    credentials.createSsl(
      Buffer.from(bundlePem()),
      id === undefined ? null : Buffer.from(id.key.export({ format: 'pem', type: 'pkcs8' })),
      id === undefined ? null : Buffer.from(id.chain.map((d) => new X509Certificate(d).toString()).join('')),
      { checkServerIdentity: () => undefined },
    );
  const tcp = <S extends ServiceDefinitionLike>(svc: S, id?: AgentIdentity): TypedClient<S> => {
    const c = makeClient(svc, `127.0.0.1:${server.tcpPort}`, tlsCreds(id), {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.use_local_subchannel_pool': 1,
    });
    clients.push(c);
    return c;
  };
  return {
    server,
    dir,
    socketPath,
    trustDomain: td,
    logLines,
    admin,
    tcp,
    async createJoinToken(token) {
      await admin(AgentService).createJoinToken(CreateJoinTokenRequest.fromPartial({ ttl: 600, token }));
    },
    attestJoinToken(token) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const call = tcp(AgentService).attestAgent();
      return new Promise((resolve, reject) => {
        call.on('data', (res: AttestAgentResponse) => {
          const svid = res.result?.svid;
          if (svid === undefined) return;
          resolve({
            chain: svid.certChain,
            key: privateKey,
            agentId: `spiffe://${svid.id?.trustDomain}${svid.id?.path}`,
          });
          call.end();
        });
        call.on('error', reject);
        call.write({
          params: {
            data: { type: 'join_token', payload: Buffer.from(token) },
            params: { csr: buildCsr(privateKey) },
          },
        });
      });
    },
    async createEntry(spiffePath, parentId) {
      const res = await admin(EntryService).batchCreateEntry(
        BatchCreateEntryRequest.fromPartial({
          entries: [
            {
              spiffeId: { trustDomain: td, path: spiffePath },
              parentId: { trustDomain: td, path: new URL(parentId).pathname },
              selectors: [{ type: 'unix', value: 'uid:1000' }],
            },
          ],
        }),
      );
      const e = res.results[0];
      if (e?.status?.code !== status.OK || e.entry === undefined)
        throw new Error(`entry not created: ${e?.status?.message}`);
      return e.entry.id;
    },
    async close() {
      for (const c of clients) c.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
