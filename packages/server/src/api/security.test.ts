import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type ChannelCredentials,
  Client,
  type ClientDuplexStream,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from '@grpc/grpc-js';
import {
  AgentService,
  type AttestAgentResponse,
  BundleService,
  EntryService,
  LocalAuthorityService,
  makeClient,
  type ServiceDefinitionLike,
  SVIDService,
  SyncService,
  TrustDomainService,
  type TypedClient,
} from '@tessera/common/api';
import { createNullLogger } from '@tessera/common/log';
import { buildCsr } from '@tessera/common/x509';
import { validateServerConfig } from '../config/load.js';
import { prepareSocketPath } from '../endpoints/endpoints.js';
import { startServer, type TesseraServer } from '../server.js';
import { accessOf } from './middleware/auth.js';
import { MAX_WATCHES_PER_AGENT } from './sync/v1/service.js';

const TD = 'example.org';

interface Identity {
  chain: Buffer[];
  key: KeyObject;
}

const SERVICES: Record<string, ServiceDefinitionLike> = {
  AgentService,
  BundleService,
  EntryService,
  LocalAuthorityService,
  SVIDService,
  SyncService,
  TrustDomainService,
};

interface MethodDef {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

function allMethods(): MethodDef[] {
  const out: MethodDef[] = [];
  for (const svc of Object.values(SERVICES)) {
    for (const def of Object.values(svc)) out.push(def as unknown as MethodDef);
  }
  return out;
}

/** Every method reachable by a non-admin; everything else must be admin-only. */
const NON_ADMIN: Record<string, 'any' | 'agent' | 'agent_or_admin'> = {
  '/spire.api.server.agent.v1.Agent/AttestAgent': 'any',
  '/spire.api.server.agent.v1.Agent/RenewAgent': 'agent',
  '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries': 'agent',
  '/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries': 'agent',
  '/spire.api.server.svid.v1.SVID/BatchNewX509SVID': 'agent',
  '/spire.api.server.svid.v1.SVID/NewJWTSVID': 'agent',
  '/tessera.api.server.sync.v1.Sync/WatchAuthorizedEntries': 'agent',
  '/spire.api.server.bundle.v1.Bundle/GetBundle': 'agent_or_admin',
  '/spire.api.server.bundle.v1.Bundle/ListFederatedBundles': 'agent_or_admin',
  '/spire.api.server.bundle.v1.Bundle/GetFederatedBundle': 'agent_or_admin',
};

/** Bytes that are not a valid protobuf message of any type (a truncated length-delimited field). */
const GARBAGE = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);

/** Calls `method` with raw request bytes and resolves with the final status. */
function rawCall(client: Client, m: MethodDef): Promise<ServiceError | undefined> {
  const ser = (b: Buffer) => b;
  const de = (b: Buffer) => b;
  const deadline = Date.now() + 5000;
  return new Promise((resolve) => {
    if (!m.requestStream && !m.responseStream) {
      client.makeUnaryRequest(m.path, ser, de, GARBAGE, new Metadata(), { deadline }, (err) =>
        resolve(err ?? undefined),
      );
      return;
    }
    const call = m.requestStream
      ? m.responseStream
        ? client.makeBidiStreamRequest(m.path, ser, de, new Metadata(), { deadline })
        : client.makeClientStreamRequest(m.path, ser, de, new Metadata(), { deadline }, (err) =>
            resolve(err ?? undefined),
          )
      : client.makeServerStreamRequest(m.path, ser, de, GARBAGE, new Metadata(), { deadline });
    call.on('error', (err: ServiceError) => resolve(err));
    call.on('data', () => {});
    call.on('end', () => resolve(undefined));
    if (m.requestStream) {
      const w = call as ClientDuplexStream<Buffer, Buffer>;
      w.write(GARBAGE);
      w.end();
    }
  });
}

describe('API authorization is deny by default', () => {
  it('classifies every RPC of every service, and only the listed ones are open to non-admins', () => {
    const methods = allMethods();
    assert.ok(methods.length > 40, `only ${methods.length} methods found`);
    for (const m of methods) {
      assert.equal(accessOf(m.path), NON_ADMIN[m.path] ?? 'admin', m.path);
    }
    for (const path of Object.keys(NON_ADMIN)) {
      assert.ok(
        methods.some((m) => m.path === path),
        `${path} is classified but not served`,
      );
    }
    assert.equal(accessOf('/spire.api.server.entry.v1.Entry/NotAMethod'), 'admin');
  });
});

describe('tessera-server security', () => {
  let dir: string;
  let server: TesseraServer;
  let socketPath: string;
  let bundlePem: string;
  const clients: { close(): void }[] = [];

  function adminClient<S extends ServiceDefinitionLike>(svc: S): TypedClient<S> {
    const c = makeClient(svc, `unix://${socketPath}`, credentials.createInsecure());
    clients.push(c);
    return c;
  }

  function tlsCreds(id?: Identity): ChannelCredentials {
    return credentials.createSsl(
      Buffer.from(bundlePem),
      id === undefined ? null : Buffer.from(id.key.export({ format: 'pem', type: 'pkcs8' })),
      id === undefined ? null : Buffer.from(id.chain.map((d) => new X509Certificate(d).toString()).join('')),
      { checkServerIdentity: () => undefined },
    );
  }

  const tcpOptions = { 'grpc.ssl_target_name_override': 'localhost', 'grpc.use_local_subchannel_pool': 1 };

  function tcpClient<S extends ServiceDefinitionLike>(svc: S, id?: Identity): TypedClient<S> {
    const c = makeClient(svc, `127.0.0.1:${server.tcpPort}`, tlsCreds(id), tcpOptions);
    clients.push(c);
    return c;
  }

  function rawTcpClient(id?: Identity): Client {
    const c = new Client(`127.0.0.1:${server.tcpPort}`, tlsCreds(id), tcpOptions);
    clients.push(c);
    return c;
  }

  async function attest(token: string): Promise<Identity> {
    await adminClient(AgentService).createJoinToken({ ttl: 600, token, agentId: undefined });
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const call = tcpClient(AgentService).attestAgent();
    return new Promise((resolve, reject) => {
      call.on('data', (res: AttestAgentResponse) => {
        const svid = res.result?.svid;
        if (svid !== undefined) resolve({ chain: svid.certChain, key: privateKey });
      });
      call.on('error', reject);
      call.write({
        params: {
          data: { type: 'join_token', payload: Buffer.from(token) },
          params: { csr: buildCsr(privateKey) },
        },
      });
    });
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-security-test-'));
    socketPath = join(dir, 'private', 'api.sock');
    const r = validateServerConfig({
      trust_domain: TD,
      bind_address: '127.0.0.1',
      bind_port: 18999,
      socket_path: socketPath,
      data_dir: join(dir, 'data'),
      key_manager: { type: 'memory' },
      rate_limit: { attestation: 1000, signing: 1000 },
    });
    if (!('config' in r)) throw new Error(JSON.stringify(r.errors));
    server = await startServer({
      config: r.config,
      logger: createNullLogger(),
      bindPort: 0,
      attestationTimeoutMs: 300,
    });
    bundlePem = server.ca
      .bundle()
      .x509Authorities()
      .map((c) => c.toString())
      .join('');
  });

  after(async () => {
    for (const c of clients) c.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses every admin RPC over TCP, to anonymous callers and to agents, before reading the request', async () => {
    const agent = await attest('tok-deny-all');
    const anonymous = rawTcpClient();
    const asAgent = rawTcpClient(agent);
    const admin = allMethods().filter((m) => accessOf(m.path) === 'admin');
    // Control: an admin's garbage request is read, and fails to decode.
    const local = new Client(`unix://${socketPath}`, credentials.createInsecure());
    clients.push(local);
    const control = await rawCall(local, {
      path: '/spire.api.server.entry.v1.Entry/CountEntries',
      requestStream: false,
      responseStream: false,
    });
    assert.equal(control?.code, status.INTERNAL, control?.details);
    for (const m of admin) {
      for (const [who, c] of [
        ['anonymous', anonymous],
        ['agent', asAgent],
      ] as const) {
        const err = await rawCall(c, m);
        // A request that had been read would fail to decode (Internal); a denial never looks at it.
        assert.equal(err?.code, status.PERMISSION_DENIED, `${who} ${m.path}: ${err?.details}`);
      }
    }
  });

  it('refuses every agent RPC to an anonymous TCP caller before reading the request', async () => {
    const anonymous = rawTcpClient();
    for (const m of allMethods().filter((x) => accessOf(x.path).startsWith('agent'))) {
      const err = await rawCall(anonymous, m);
      assert.equal(err?.code, status.PERMISSION_DENIED, `${m.path}: ${err?.details}`);
    }
  });

  it('refuses a join token whose alias is in the reserved /spire namespace and stores no token', async () => {
    const agent = adminClient(AgentService);
    for (const path of ['/spire/server', '/spire/agent/join_token/other', '/spire']) {
      await assert.rejects(
        agent.createJoinToken({ ttl: 600, token: 'tok-reserved', agentId: { trustDomain: TD, path } }),
        { code: status.INVALID_ARGUMENT, details: /agent_id.*reserved "\/spire" namespace/ },
      );
    }
    const entries = await adminClient(EntryService).countEntries({ filter: undefined });
    assert.equal(entries.count, 0);
    // The token was not stored: attesting with it fails.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const call = tcpClient(AgentService).attestAgent();
    const err = await new Promise<ServiceError>((resolve) => {
      call.on('error', resolve);
      call.write({
        params: {
          data: { type: 'join_token', payload: Buffer.from('tok-reserved') },
          params: { csr: buildCsr(privateKey) },
        },
      });
    });
    assert.equal(err.code, status.PERMISSION_DENIED);
  });

  it('refuses to mint X509-SVIDs and JWT-SVIDs for the server or agent IDs', async () => {
    const svid = adminClient(SVIDService);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (const id of ['spiffe://example.org/spire/server', 'spiffe://example.org/spire/agent/x509pop/ab']) {
      await assert.rejects(svid.mintX509Svid({ csr: buildCsr(privateKey, { uris: [id] }), ttl: 60 }), {
        code: status.INVALID_ARGUMENT,
        details: /csr.*reserved "\/spire" namespace/,
      });
      await assert.rejects(
        svid.mintJwtsvid({ id: { trustDomain: TD, path: new URL(id).pathname }, audience: ['a'], ttl: 60 }),
        { code: status.INVALID_ARGUMENT, details: /id.*reserved "\/spire" namespace/ },
      );
    }
  });

  it('ends an attestation whose caller never sends its params with DeadlineExceeded', async () => {
    const call = tcpClient(AgentService).attestAgent();
    const err = await new Promise<ServiceError>((resolve) => {
      call.on('error', resolve);
      call.on('data', () => {});
    });
    assert.equal(err.code, status.DEADLINE_EXCEEDED);
    assert.match(err.details, /attestation timed out/);
  });

  it(`lets one agent hold at most ${MAX_WATCHES_PER_AGENT} watch streams at once`, async () => {
    const agent = await attest('tok-watch-cap');
    const sync = tcpClient(SyncService, agent);
    const open = Array.from({ length: MAX_WATCHES_PER_AGENT }, () => sync.watchAuthorizedEntries({}));
    await Promise.all(open.map((s) => new Promise((resolve) => s.once('data', resolve))));
    const extra = sync.watchAuthorizedEntries({});
    const err = await new Promise<ServiceError>((resolve) => {
      extra.on('error', resolve);
      extra.on('data', () => {});
    });
    assert.equal(err.code, status.RESOURCE_EXHAUSTED);
    assert.match(err.details, /too many watch streams/);
    // A closed stream frees its place.
    const first = open[0];
    first?.on('error', () => {});
    first?.cancel();
    await new Promise((r) => setTimeout(r, 100));
    const again = sync.watchAuthorizedEntries({});
    await new Promise((resolve, reject) => {
      again.once('data', resolve);
      again.once('error', reject);
    });
    for (const s of [...open.slice(1), again]) {
      s.on('error', () => {});
      s.cancel();
    }
  });
});

describe('admin socket directory', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-sockdir-test-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a missing directory 0700', async () => {
    await prepareSocketPath(join(dir, 'new', 'api.sock'));
    assert.equal(statSync(join(dir, 'new')).mode & 0o7777, 0o700);
  });

  it('refuses a directory other users may write to and leaves its mode alone', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    await assert.rejects(prepareSocketPath(join(shared, 'api.sock')), {
      code: 'ERR_CONFIG_INVALID',
      message: /socket directory ".*shared" is writable by other users \(mode 1777\)/,
    });
    assert.equal(statSync(shared).mode & 0o7777, 0o1777);
  });

  it('never changes the mode of an existing directory it did not create', async () => {
    const existing = join(dir, 'existing');
    mkdirSync(existing);
    chmodSync(existing, 0o755);
    await prepareSocketPath(join(existing, 'api.sock'));
    assert.equal(statSync(existing).mode & 0o7777, 0o755);
  });
});
