import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ChannelCredentials, credentials, status } from '@grpc/grpc-js';
import {
  AgentService,
  type AttestAgentResponse,
  BundleService,
  EntryService,
  makeClient,
  type ServiceDefinitionLike,
  SVIDService,
  SyncService,
  type TypedClient,
} from '@tessera/common/api';
import { createNullLogger } from '@tessera/common/log';
import { buildCsr, spkiDer } from '@tessera/common/x509';
import { validateServerConfig } from './config/load.js';
import { startServer, type TesseraServer } from './server.js';

const TD = 'example.org';

function p256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

interface Identity {
  chain: Buffer[];
  key: KeyObject;
}

function pem(der: Buffer): string {
  return new X509Certificate(der).toString();
}

describe('tessera-server API over grpc-js', () => {
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
      id === undefined ? null : Buffer.from(id.chain.map(pem).join('')),
      { checkServerIdentity: () => undefined },
    );
  }

  function tcpClient<S extends ServiceDefinitionLike>(svc: S, id?: Identity): TypedClient<S> {
    const c = makeClient(svc, `127.0.0.1:${server.tcpPort}`, tlsCreds(id), {
      'grpc.ssl_target_name_override': 'localhost',
      'grpc.use_local_subchannel_pool': 1,
    });
    clients.push(c);
    return c;
  }

  async function createToken(token: string, agentId?: string): Promise<void> {
    const agent = adminClient(AgentService);
    await agent.createJoinToken({
      ttl: 600,
      token,
      agentId: agentId === undefined ? undefined : { trustDomain: TD, path: agentId },
    });
  }

  function attest(token: string, id?: Identity): Promise<{ identity: Identity; agentId: string }> {
    const { privateKey } = p256();
    const call = tcpClient(AgentService, id).attestAgent();
    return new Promise((resolve, reject) => {
      call.on('data', (res: AttestAgentResponse) => {
        const svid = res.result?.svid;
        if (svid === undefined) return;
        resolve({
          identity: { chain: svid.certChain, key: privateKey },
          agentId: `spiffe://${svid.id?.trustDomain}${svid.id?.path}`,
        });
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

  async function createEntry(
    spiffePath: string,
    parentId: string,
    extra: { admin?: boolean } = {},
  ): Promise<string> {
    const entry = adminClient(EntryService);
    const res = await entry.batchCreateEntry({
      entries: [
        {
          id: '',
          spiffeId: { trustDomain: TD, path: spiffePath },
          parentId: { trustDomain: TD, path: new URL(parentId).pathname },
          selectors: [{ type: 'unix', value: 'uid:1000' }],
          x509SvidTtl: 0,
          federatesWith: [],
          admin: extra.admin ?? false,
          downstream: false,
          expiresAt: 0n,
          dnsNames: [],
          revisionNumber: 0n,
          storeSvid: false,
          jwtSvidTtl: 0,
          hint: '',
          createdAt: 0n,
        },
      ],
      outputMask: undefined,
    });
    const r = res.results[0];
    assert.equal(r?.status?.code, status.OK, r?.status?.message);
    return r?.entry?.id as string;
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tessera-server-test-'));
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
    server = await startServer({ config: r.config, logger: createNullLogger(), bindPort: 0 });
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

  it('creates the admin socket 0600 in a 0700 directory and the data dir 0700', () => {
    assert.equal(statSync(socketPath).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'private')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'data')).mode & 0o777, 0o700);
  });

  it('presents a server SVID spiffe://example.org/spire/server on the agent endpoint', () => {
    const leaf = server.endpoints.serverSvid()[0];
    assert.match(leaf?.subjectAltName ?? '', /URI:spiffe:\/\/example\.org\/spire\/server/);
  });

  it('attests with a join token and serves the agent its authorized entries', async () => {
    await createToken('tok-basic', '/node-group/a');
    const { identity, agentId } = await attest('tok-basic');
    assert.equal(agentId, 'spiffe://example.org/spire/agent/join_token/tok-basic');
    const direct = await createEntry('/workload/direct', agentId);
    const viaAlias = await createEntry('/workload/via-alias', 'spiffe://example.org/node-group/a');
    const res = await tcpClient(EntryService, identity).getAuthorizedEntries({ outputMask: undefined });
    const ids = res.entries.map((e) => e.id).sort();
    assert.ok(ids.includes(direct));
    assert.ok(ids.includes(viaAlias));
  });

  describe('authorization matrix', () => {
    let agent: Identity;
    let adminSvid: Identity;

    before(async () => {
      await createToken('tok-matrix');
      agent = (await attest('tok-matrix')).identity;
      await createEntry('/ops/admin', 'spiffe://example.org/spire/agent/join_token/tok-matrix', {
        admin: true,
      });
      const { privateKey } = p256();
      const minted = await adminClient(SVIDService).mintX509Svid({
        csr: buildCsr(privateKey, { uris: ['spiffe://example.org/ops/admin'] }),
        ttl: 600,
      });
      adminSvid = { chain: minted.svid?.certChain ?? [], key: privateKey };
    });

    const listEntries = (c: TypedClient<typeof EntryService>) =>
      c.listEntries({ filter: undefined, outputMask: undefined, pageSize: 1, pageToken: '' });

    it('refuses admin RPCs without a client certificate', async () => {
      await assert.rejects(listEntries(tcpClient(EntryService)), {
        code: status.PERMISSION_DENIED,
        details: /no client certificate/,
      });
    });

    it('refuses agent RPCs without a client certificate', async () => {
      await assert.rejects(tcpClient(EntryService).getAuthorizedEntries({ outputMask: undefined }), {
        code: status.PERMISSION_DENIED,
      });
    });

    it('refuses admin RPCs to an agent', async () => {
      await assert.rejects(listEntries(tcpClient(EntryService, agent)), {
        code: status.PERMISSION_DENIED,
        details: /not an admin/,
      });
    });

    it('lets an agent read the bundle', async () => {
      const b = await tcpClient(BundleService, agent).getBundle({ outputMask: undefined });
      assert.equal(b.trustDomain, TD);
      assert.ok(b.x509Authorities.length >= 1);
    });

    it('lets an admin entry SVID call admin RPCs over TCP', async () => {
      const res = await listEntries(tcpClient(EntryService, adminSvid));
      assert.equal(res.entries.length, 1);
    });

    it('refuses agent RPCs to an admin SVID', async () => {
      await assert.rejects(
        tcpClient(EntryService, adminSvid).getAuthorizedEntries({ outputMask: undefined }),
        {
          code: status.PERMISSION_DENIED,
          details: /not an agent/,
        },
      );
    });

    it('lets local callers on the admin socket call admin RPCs', async () => {
      const res = await listEntries(adminClient(EntryService));
      assert.equal(res.entries.length, 1);
    });

    it('refuses a certificate from another CA as unauthenticated', async () => {
      const { privateKey, publicKey } = p256();
      const { createCaManager } = await import('./ca/ca-manager.js');
      const { createMemoryKeyManager } = await import('./keymanager/memory.js');
      const { TrustDomain } = await import('@tessera/spiffe/spiffeid');
      const bundles = new Map<string, Uint8Array>();
      const otherCa = await createCaManager({
        trustDomain: TrustDomain.fromString(TD),
        keyManager: createMemoryKeyManager(),
        datastore: {
          createCaJournal: async (j) => ({ ...j, id: 1 }),
          updateCaJournal: async (j) => j,
          fetchCaJournalByX509AuthorityId: async () => undefined,
          fetchBundle: async () => undefined,
          appendBundle: async (td, merge) => {
            const b = merge(undefined);
            bundles.set(td, b.data);
            return b;
          },
        },
      });
      const forged = otherCa.signAgentSvid({
        agentId: 'spiffe://example.org/spire/agent/join_token/tok-matrix',
        publicKey,
        ttlSeconds: 600,
      });
      await assert.rejects(
        tcpClient(EntryService, { chain: [...forged.chain], key: privateKey }).getAuthorizedEntries({
          outputMask: undefined,
        }),
        { code: status.UNAUTHENTICATED, details: /verification failed/ },
      );
      await otherCa.close();
    });
  });

  it('lets exactly one of 20 concurrent attestations with one join token succeed', async () => {
    await createToken('tok-race');
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => attest('tok-race')));
    const ok = results.filter((r) => r.status === 'fulfilled');
    assert.equal(ok.length, 1);
    for (const r of results) {
      if (r.status === 'rejected')
        assert.equal((r.reason as { code: number }).code, status.PERMISSION_DENIED);
    }
  });

  it('refuses a banned agent at once and refuses its re-attestation', async () => {
    await createToken('tok-ban');
    const { identity, agentId } = await attest('tok-ban');
    await tcpClient(EntryService, identity).getAuthorizedEntries({ outputMask: undefined });
    await adminClient(AgentService).banAgent({ id: { trustDomain: TD, path: new URL(agentId).pathname } });
    await assert.rejects(tcpClient(EntryService, identity).getAuthorizedEntries({ outputMask: undefined }), {
      code: status.PERMISSION_DENIED,
      details: /banned/,
    });
  });

  describe('BatchNewX509SVID', () => {
    let agent: Identity;
    let agentId: string;
    let mine: string;
    let other: string;

    before(async () => {
      await createToken('tok-svid');
      ({ identity: agent, agentId } = await attest('tok-svid'));
      mine = await createEntry('/svid/mine', agentId);
      other = await createEntry('/svid/other', 'spiffe://example.org/spire/agent/join_token/someone-else');
    });

    it('signs the CSR key for an authorized entry with the entry ID', async () => {
      const { privateKey, publicKey } = p256();
      const res = await tcpClient(SVIDService, agent).batchNewX509Svid({
        params: [{ entryId: mine, csr: buildCsr(privateKey, { uris: ['spiffe://example.org/ignored'] }) }],
      });
      const r = res.results[0];
      assert.equal(r?.status?.code, status.OK);
      const leaf = new X509Certificate(r?.svid?.certChain[0] as Buffer);
      assert.match(leaf.subjectAltName ?? '', /^URI:spiffe:\/\/example\.org\/svid\/mine$/);
      assert.ok(leaf.publicKey.equals(publicKey));
      assert.ok(leaf.checkIssued(server.ca.activeX509Authority()));
    });

    it('answers PermissionDenied for an entry the agent is not authorized for', async () => {
      const res = await tcpClient(SVIDService, agent).batchNewX509Svid({
        params: [{ entryId: other, csr: buildCsr(p256().privateKey) }],
      });
      assert.equal(res.results[0]?.status?.code, status.PERMISSION_DENIED);
      assert.equal(res.results[0]?.svid, undefined);
    });

    it('answers InvalidArgument for a CSR signed by another key', async () => {
      const a = p256();
      const b = p256();
      const csr = buildCsr(a.privateKey);
      const forged = Buffer.from(csr);
      const at = forged.indexOf(spkiDer(a.publicKey));
      assert.ok(at > 0);
      spkiDer(b.publicKey).copy(forged, at);
      const res = await tcpClient(SVIDService, agent).batchNewX509Svid({
        params: [{ entryId: mine, csr: forged }],
      });
      assert.equal(res.results[0]?.status?.code, status.INVALID_ARGUMENT);
      assert.match(res.results[0]?.status?.message ?? '', /invalid csr/);
    });

    it('pushes a new revision on the watch stream when an authorized entry is added', async () => {
      const stream = tcpClient(SyncService, agent).watchAuthorizedEntries({});
      const revisions: bigint[] = [];
      const second = new Promise<void>((resolve) => {
        stream.on('data', (m: { revision: bigint }) => {
          revisions.push(m.revision);
          if (revisions.length === 2) resolve();
        });
      });
      await new Promise((r) => setTimeout(r, 50));
      await createEntry('/svid/added-later', agentId);
      await second;
      assert.deepEqual(revisions, [1n, 2n]);
      stream.on('error', () => {});
      stream.cancel();
    });
  });

  describe('entry validation', () => {
    const base = {
      id: '',
      spiffeId: { trustDomain: TD, path: '/valid' },
      parentId: { trustDomain: TD, path: '/spire/agent/join_token/x' },
      selectors: [{ type: 'unix', value: 'uid:1' }],
      x509SvidTtl: 0,
      federatesWith: [],
      admin: false,
      downstream: false,
      expiresAt: 0n,
      dnsNames: [],
      revisionNumber: 0n,
      storeSvid: false,
      jwtSvidTtl: 0,
      hint: '',
      createdAt: 0n,
    };
    const cases = [
      {
        name: 'a SPIFFE ID of another trust domain',
        patch: { spiffeId: { trustDomain: 'other.org', path: '/x' } },
        field: 'spiffe_id',
      },
      {
        name: 'a parent ID with a dot segment',
        patch: { parentId: { trustDomain: TD, path: '/a/../b' } },
        field: 'parent_id',
      },
      { name: 'no selectors', patch: { selectors: [] }, field: 'selectors' },
      {
        name: 'a selector type with a colon',
        patch: { selectors: [{ type: 'a:b', value: 'c' }] },
        field: 'selectors',
      },
      { name: 'a negative TTL', patch: { x509SvidTtl: -1 }, field: 'x509_svid_ttl' },
      { name: 'a hint over 1024 bytes', patch: { hint: 'h'.repeat(1025) }, field: 'hint' },
      { name: 'a bad DNS name', patch: { dnsNames: ['bad name'] }, field: 'dns_names' },
      {
        name: 'a bad federated trust domain',
        patch: { federatesWith: ['Bad Domain'] },
        field: 'federates_with',
      },
    ];
    for (const tc of cases) {
      it(`refuses ${tc.name} with InvalidArgument naming ${tc.field} and stores nothing`, async () => {
        const entry = adminClient(EntryService);
        const before = (await entry.countEntries({ filter: undefined })).count;
        const res = await entry.batchCreateEntry({
          entries: [{ ...base, ...tc.patch }],
          outputMask: undefined,
        });
        assert.equal(res.results[0]?.status?.code, status.INVALID_ARGUMENT);
        assert.match(res.results[0]?.status?.message ?? '', new RegExp(`invalid ${tc.field}:`));
        assert.equal((await entry.countEntries({ filter: undefined })).count, before);
      });
    }

    it('refuses a duplicate entry with AlreadyExists', async () => {
      const entry = adminClient(EntryService);
      const dup = { ...base, spiffeId: { trustDomain: TD, path: '/dup' } };
      const first = await entry.batchCreateEntry({ entries: [dup], outputMask: undefined });
      assert.equal(first.results[0]?.status?.code, status.OK);
      const second = await entry.batchCreateEntry({ entries: [dup], outputMask: undefined });
      assert.equal(second.results[0]?.status?.code, status.ALREADY_EXISTS);
    });
  });
});
