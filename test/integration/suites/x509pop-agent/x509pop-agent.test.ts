/**
 * x509pop-agent: the built agent attests to the built server by proof of possession of a key certified by a CA
 * the server trusts, a workload gets its SVID, and after an eviction the agent re-attests on its own.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Agent, AgentMask, GetAgentRequest } from '@tessera/common/api';
import { verifyX509SvidSync } from '@tessera/spiffe/svid';
import { WorkloadApiClient } from '@tessera/spiffe/workloadapi';
import { TestCa } from '@tessera/testing';
import { createEntries, evictAgent, TesseraAgent, waitFor } from '../../harness/agent.js';
import { adminClients, currentBundle } from '../../harness/api.js';
import { TesseraServer, tempDir } from '../../harness/server.js';

const UID = process.getuid?.() ?? 0;
const TD = 'example.org';
const WORKLOAD = `spiffe://${TD}/it/x509pop-workload`;
const LATE_WORKLOAD = `spiffe://${TD}/it/x509pop-after-evict`;

async function fetchSvid(address: string) {
  const c = new WorkloadApiClient({ address });
  try {
    return await c.fetchX509Svid();
  } finally {
    c.close();
  }
}

/** The agent as the server knows it (undefined when it does not). */
async function getAgent(server: TesseraServer, agentId: string): Promise<Agent | undefined> {
  const c = adminClients(server);
  try {
    return await c.agent.getAgent(
      GetAgentRequest.fromPartial({
        id: { trustDomain: TD, path: new URL(agentId).pathname },
        outputMask: AgentMask.fromPartial({
          attestationType: true,
          x509svidSerialNumber: true,
          selectors: true,
          banned: true,
          canReattest: true,
        }),
      }),
    );
  } catch (err) {
    if ((err as { code?: unknown }).code === 5) return undefined;
    throw err;
  } finally {
    c.close();
  }
}

describe('x509pop-agent: x509pop attestation with the built server and agent, and re-attestation after evict', () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let agentId: string;
  let removeFiles: () => Promise<void> = async () => {};
  let firstSerial = '';

  before(async () => {
    const files = await tempDir('x509pop');
    removeFiles = files.remove;
    const root = TestCa.create({ trustDomain: 'pop.example', subjectSpiffeId: null });
    const intermediate = root.createIntermediate({ subjectSpiffeId: null });
    const node = intermediate.issueX509Svid({
      spiffeId: 'spiffe://pop.example/node-1',
      subject: { commonName: 'node-1' },
    });
    const paths = {
      ca: join(files.path, 'ca.pem'),
      cert: join(files.path, 'node.pem'),
      key: join(files.path, 'node-key.pem'),
      intermediates: join(files.path, 'intermediates.pem'),
    };
    await writeFile(paths.ca, root.rootPem());
    await writeFile(paths.cert, node.leaf.toString());
    await writeFile(paths.key, node.keyPem, { mode: 0o600 });
    await writeFile(paths.intermediates, intermediate.certificate.toString());
    agentId = `spiffe://${TD}/spire/agent/x509pop/${createHash('sha1').update(node.leaf.raw).digest('hex')}`;

    server = await TesseraServer.start({
      config: { node_attestors: { x509pop: { ca_bundle_path: paths.ca } } },
    });
    await createEntries(server, [{ parentId: agentId, spiffeId: WORKLOAD, selectors: [`unix:uid:${UID}`] }]);
    agent = await TesseraAgent.start({
      server,
      joinToken: '',
      config: {
        join_token: undefined,
        node_attestor: {
          x509pop: {
            private_key_path: paths.key,
            certificate_path: paths.cert,
            intermediates_path: paths.intermediates,
          },
        },
      },
    });
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
    await removeFiles();
  });

  it('01 the agent attests with x509pop: SPIRE-style agent ID, re-attestable, selectors from the certificate', async () => {
    const a = await getAgent(server, agentId);
    assert.ok(a, `the server does not know ${agentId}:\n${agent.logs().slice(-3000)}`);
    assert.equal(a.attestationType, 'x509pop');
    assert.equal(a.banned, false);
    assert.equal(a.canReattest, true);
    const selectors = a.selectors.map((s) => `${s.type}:${s.value}`);
    assert.ok(selectors.includes('x509pop:subject:cn:node-1'), selectors.join(', '));
    assert.equal(
      selectors.filter((s) => s.startsWith('x509pop:ca:fingerprint:')).length,
      2,
      selectors.join(', '),
    );
    firstSerial = a.x509svidSerialNumber;
    assert.notEqual(firstSerial, '');
  });

  it('02 a workload under the x509pop agent gets an SVID that verifies against the server bundle', async () => {
    const svid = await fetchSvid(agent.address);
    assert.equal(svid.id.toString(), WORKLOAD);
    const bundle = await currentBundle(server);
    const r = verifyX509SvidSync([...svid.certificates], bundle);
    assert.equal(r.id.toString(), WORKLOAD);
  });

  it('03 after `agent evict` the agent re-attests by itself and keeps serving', async () => {
    await evictAgent(server, agentId);
    await agent.waitForLog(/The server no longer knows this agent; re-attesting/, 20_000);
    const back = await waitFor(
      're-attested agent',
      async () => {
        const a = await getAgent(server, agentId);
        return a !== undefined && a.x509svidSerialNumber !== firstSerial ? a : undefined;
      },
      20_000,
    );
    assert.equal(back.attestationType, 'x509pop');
    assert.equal(back.banned, false);
    assert.equal(agent.exited, false, 'the agent is still running');
    // The re-attested agent syncs again: a new entry under it reaches the workload.
    await createEntries(server, [
      { parentId: agentId, spiffeId: LATE_WORKLOAD, selectors: [`unix:uid:${UID}`] },
    ]);
    const ids = await waitFor(
      'both SVIDs after re-attestation',
      async () => {
        const c = new WorkloadApiClient({ address: agent.address });
        try {
          const ctx = await c.fetchX509Context();
          const got = ctx.svids.map((s) => s.id.toString()).sort();
          return got.length === 2 ? got : undefined;
        } finally {
          c.close();
        }
      },
      20_000,
      200,
    );
    assert.deepEqual(ids, [LATE_WORKLOAD, WORKLOAD].sort());
  });
});
