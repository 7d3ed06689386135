/**
 * agent-attest-fetch: the built agent attests with a join token; this process (a workload) fetches its
 * X509-SVID and JWT-SVID through the Workload API and verifies them; a call without the security header is
 * refused with InvalidArgument and a caller without an entry with PermissionDenied.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import type { X509Bundle } from '@tessera/spiffe/bundle';
import { JwtSvid, verifyX509SvidSync } from '@tessera/spiffe/svid';
import { SpiffeWorkloadAPIService, WorkloadApiClient } from '@tessera/spiffe/workloadapi';
import {
  createEntries,
  createJoinToken,
  listAgents,
  runWorkload,
  TesseraAgent,
  writeWorkloadScript,
} from '../../harness/agent.js';
import { currentBundle } from '../../harness/api.js';
import { TesseraServer } from '../../harness/server.js';

const WORKLOAD_ID = 'spiffe://example.org/it/attest-fetch';
const AUDIENCE = 'spiffe://example.org/it/backend';

/** Calls a Workload API RPC with plain grpc-js (no library), optionally without the security header. */
function rawCall(address: string, rpc: 'x509' | 'jwt', header: boolean): Promise<ServiceError | 'ok'> {
  const client = new Client(address, credentials.createInsecure());
  const md = new Metadata();
  if (header) md.set('workload.spiffe.io', 'true');
  return new Promise((resolve) => {
    if (rpc === 'jwt') {
      const d = SpiffeWorkloadAPIService.fetchJwtsvid;
      client.makeUnaryRequest(
        d.path,
        d.requestSerialize,
        d.responseDeserialize,
        { audience: [AUDIENCE], spiffeId: '' },
        md,
        (err) => {
          client.close();
          resolve(err ?? 'ok');
        },
      );
      return;
    }
    const d = SpiffeWorkloadAPIService.fetchX509Svid;
    const call = client.makeServerStreamRequest(d.path, d.requestSerialize, d.responseDeserialize, {}, md);
    call.once('data', () => {
      call.cancel();
      client.close();
      resolve('ok');
    });
    call.once('error', (err: ServiceError) => {
      client.close();
      resolve(err);
    });
  });
}

describe('agent-attest-fetch: join-token attestation, then a workload fetches and verifies its SVIDs', () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let bundle: X509Bundle;
  let agentId: string;
  let client: WorkloadApiClient;
  let workload: Awaited<ReturnType<typeof writeWorkloadScript>>;

  before(async () => {
    server = await TesseraServer.start();
    bundle = await currentBundle(server);
    const t = await createJoinToken(server);
    agentId = t.agentId;
    await createEntries(server, [
      { parentId: agentId, spiffeId: WORKLOAD_ID, selectors: [`unix:uid:${process.getuid?.() ?? 0}`] },
    ]);
    agent = await TesseraAgent.start({ server, joinToken: t.token });
    client = new WorkloadApiClient({ address: agent.address });
    workload = await writeWorkloadScript();
  });
  after(async () => {
    client?.close();
    await agent?.stop();
    await server?.stop();
    await workload?.remove();
  });

  it('01 the server lists exactly one agent, attested with the join token', async () => {
    const agents = await listAgents(server);
    assert.equal(agents.length, 1);
    const a = agents[0];
    assert.equal(`spiffe://${a?.id?.trustDomain}${a?.id?.path}`, agentId);
    assert.equal(a?.attestationType, 'join_token');
    assert.equal(a?.banned, false);
    assert.match(agent.logs(), /Node attested/);
  });

  it('02 the workload fetches its X509-SVID and it verifies against the server bundle', async () => {
    const ctx = await client.fetchX509Context();
    assert.equal(ctx.svids.length, 1);
    const svid = ctx.svids[0];
    assert.ok(svid);
    assert.equal(svid.id.toString(), WORKLOAD_ID);
    // Verified against the bundle read independently from the server's admin socket, not the agent's copy.
    const verified = verifyX509SvidSync([...svid.certificates], bundle);
    assert.equal(verified.id.toString(), WORKLOAD_ID);
    // The agent's bundle is the server's bundle.
    const served = ctx.bundles.getX509BundleForTrustDomain(svid.id.trustDomain);
    assert.ok(served.equals(bundle));
    // The private key matches the leaf certificate.
    assert.ok(svid.certificates[0]?.checkPrivateKey(svid.privateKey));
  });

  it('03 the workload fetches a JWT-SVID; the agent and the JWT bundle both validate it', async () => {
    const svid = await client.fetchJwtSvid({ audience: AUDIENCE });
    assert.equal(svid.id.toString(), WORKLOAD_ID);
    assert.deepEqual(svid.audience, [AUDIENCE]);
    const validated = await client.validateJwtSvid(svid.marshal(), AUDIENCE);
    assert.equal(validated.id.toString(), WORKLOAD_ID);
    const jwtBundles = await client.fetchJwtBundles();
    const local = await JwtSvid.parseAndValidate(svid.marshal(), jwtBundles, [AUDIENCE]);
    assert.equal(local.id.toString(), WORKLOAD_ID);
    await assert.rejects(
      client.validateJwtSvid(svid.marshal(), 'spiffe://example.org/other'),
      (err: unknown) => {
        assert.equal((err as { code?: string }).code, 'ERR_WORKLOADAPI_INVALID_ARGUMENT');
        return true;
      },
    );
  });

  it('04 a raw grpc-js call without the workload.spiffe.io header gets InvalidArgument', async () => {
    for (const rpc of ['x509', 'jwt'] as const) {
      const err = await rawCall(agent.address, rpc, false);
      assert.notEqual(err, 'ok', rpc);
      if (err === 'ok') continue;
      assert.equal(err.code, status.INVALID_ARGUMENT, `${rpc}: ${err.message}`);
      assert.match(err.details, /security header/i);
    }
    // The same raw call with the header succeeds: the refusal is about the header only.
    assert.equal(await rawCall(agent.address, 'x509', true), 'ok');
  });

  it('05 a caller with no entry (another uid) gets PermissionDenied', async () => {
    for (const action of ['x509', 'jwt']) {
      const r = await runWorkload(workload.script, [agent.address, action, AUDIENCE], { uid: 65534 });
      assert.equal(r.code, 3, `${action}: ${r.stdout}${r.stderr}`);
      const out = r.json as { error: string; message: string; uid: number };
      assert.equal(out.uid, 65534);
      assert.equal(out.error, 'ERR_WORKLOADAPI_PERMISSION_DENIED', out.message);
      assert.match(out.message, /PERMISSION_DENIED/);
    }
    // The agent is still serving the entitled workload.
    const svid = await client.fetchX509Svid();
    assert.equal(svid.id.toString(), WORKLOAD_ID);
  });
});
