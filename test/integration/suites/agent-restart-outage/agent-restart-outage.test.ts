/**
 * agent-restart-outage: an agent restart keeps serving without re-attestation, and while the server is stopped
 * workloads keep receiving their still-valid SVIDs, also across an agent crash and restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { X509Bundle } from '@tessera/spiffe/bundle';
import { verifyX509SvidSync } from '@tessera/spiffe/svid';
import { WorkloadApiClient, type X509Context } from '@tessera/spiffe/workloadapi';
import { createEntries, createJoinToken, listAgents, TesseraAgent, waitFor } from '../../harness/agent.js';
import { currentBundle } from '../../harness/api.js';
import { TesseraServer } from '../../harness/server.js';

const UID = process.getuid?.() ?? 0;
const WORKLOAD_ID = 'spiffe://example.org/it/outage';
const LATER_ID = 'spiffe://example.org/it/after-outage';

/** Fetches the X.509 context over a new connection. */
async function fetchContext(address: string): Promise<X509Context> {
  const c = new WorkloadApiClient({ address });
  try {
    return await c.fetchX509Context();
  } finally {
    c.close();
  }
}

function leafSerial(ctx: X509Context, id = WORKLOAD_ID): string {
  const svid = ctx.svids.find((s) => s.id.toString() === id);
  assert.ok(svid, `no SVID for ${id} in ${ctx.svids.map((s) => s.id.toString()).join(', ')}`);
  return svid.certificates[0]?.serialNumber ?? '';
}

function agentIds(agents: Awaited<ReturnType<typeof listAgents>>): string[] {
  return agents.map((a) => `spiffe://${a.id?.trustDomain}${a.id?.path}`);
}

describe('agent-restart-outage: restarts without re-attestation; serves valid SVIDs while the server is down', () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let bundle: X509Bundle;
  let agentId: string;
  let token: string;
  let serial: string;
  let agentSerial: string;
  const watch = {
    client: undefined as WorkloadApiClient | undefined,
    updates: [] as X509Context[],
    errors: 0,
  };
  const abort = new AbortController();

  before(async () => {
    server = await TesseraServer.start();
    bundle = await currentBundle(server);
    const t = await createJoinToken(server);
    agentId = t.agentId;
    token = t.token;
    await createEntries(server, [
      { parentId: agentId, spiffeId: WORKLOAD_ID, selectors: [`unix:uid:${UID}`] },
    ]);
    agent = await TesseraAgent.start({ server, joinToken: token });
  });
  after(async () => {
    abort.abort();
    watch.client?.close();
    await agent?.stop();
    await server?.stop();
  });

  it('01 the workload gets its SVID; the server lists one join_token agent', async () => {
    serial = leafSerial(await fetchContext(agent.address));
    const agents = await listAgents(server);
    assert.deepEqual(agentIds(agents), [agentId]);
    agentSerial = agents[0]?.x509svidSerialNumber ?? '';
    assert.notEqual(agentSerial, '');
  });

  it('02 after a graceful restart the agent serves again without attesting (its token is already used)', async () => {
    const exit = await agent.terminate();
    assert.equal(exit.code, 0, exit.stdout.slice(-2000));
    agent = await TesseraAgent.start({
      server,
      joinToken: token,
      dir: agent.dir,
      socketDir: agent.socketDir,
    });
    assert.match(agent.logs(), /Using the stored agent SVID \(no re-attestation\)/);
    assert.doesNotMatch(agent.logs(), /Node attested/);
    const agents = await listAgents(server);
    assert.deepEqual(agentIds(agents), [agentId], 'still exactly one agent, with the same ID');
    assert.equal(agents[0]?.x509svidSerialNumber, agentSerial, 'same agent SVID');
    assert.equal(
      leafSerial(await fetchContext(agent.address)),
      serial,
      'the persisted workload SVID is served',
    );
  });

  it('03 with the server stopped, an open stream stays up and new callers still get the valid SVID', async () => {
    watch.client = new WorkloadApiClient({ address: agent.address });
    void watch.client.watchX509Context(
      {
        onX509ContextUpdate: (ctx) => watch.updates.push(ctx),
        onX509ContextWatchError: () => {
          watch.errors++;
        },
      },
      { signal: abort.signal },
    );
    await waitFor('the first stream message', () => (watch.updates.length > 0 ? true : undefined), 10_000);
    await server.stop();
    // Let the agent notice: its entry watch to the server breaks and its sync fails.
    await agent.waitForLog(/Server (unavailable|call failed)|Entry watch closed/, 20_000);
    const ctx = await fetchContext(agent.address);
    assert.equal(leafSerial(ctx), serial);
    const svid = ctx.svids[0];
    assert.ok(svid);
    assert.equal(verifyX509SvidSync([...svid.certificates], bundle).id.toString(), WORKLOAD_ID);
    assert.equal(watch.errors, 0, 'the open stream did not fail');
  });

  it('04 after an agent crash (SIGKILL) during the outage, the restarted agent still serves the valid SVID', async () => {
    agent.kill('SIGKILL');
    await agent.waitExit();
    const updatesBefore = watch.updates.length;
    agent = await TesseraAgent.start({
      server,
      joinToken: token,
      dir: agent.dir,
      socketDir: agent.socketDir,
      waitFor: 'serving',
    });
    // A caller may see UNAVAILABLE while grpc-js's shared subchannel to the socket is still in backoff from the
    // crash (the open watch above keeps it); a workload retries, as this does.
    const ctx = await waitFor('a served X.509 context', () => fetchContext(agent.address), 15_000, 250);
    assert.equal(leafSerial(ctx), serial);
    // The stream opened before the crash reconnected by itself and got the same SVID again.
    await waitFor(
      'the open watch to reconnect',
      () => (watch.updates.length > updatesBefore ? true : undefined),
      30_000,
    );
    assert.equal(leafSerial(watch.updates.at(-1) as X509Context), serial);
    const svid = ctx.svids[0];
    assert.ok(svid);
    assert.equal(verifyX509SvidSync([...svid.certificates], bundle).id.toString(), WORKLOAD_ID);
    assert.match(agent.logs(), /Using the stored agent SVID \(no re-attestation\)/);
  });

  it('05 when the server is back, the agent resyncs (a new entry arrives) and is still the same single agent', async () => {
    server = await TesseraServer.start({ dir: server.dir, port: server.port });
    await agent.waitReady(30_000);
    await createEntries(server, [{ parentId: agentId, spiffeId: LATER_ID, selectors: [`unix:uid:${UID}`] }]);
    const ctx = await waitFor(
      `an SVID for ${LATER_ID}`,
      async () => {
        const c = await fetchContext(agent.address);
        return c.svids.some((s) => s.id.toString() === LATER_ID) ? c : undefined;
      },
      30_000,
      250,
    );
    assert.equal(leafSerial(ctx), serial, 'the old SVID is still the valid one');
    assert.deepEqual(agentIds(await listAgents(server)), [agentId]);
  });
});
