/**
 * agent-uid: a workload started under another uid (setpriv) gets its own identity from the kernel's peer
 * credentials, never the first workload's, and the public socket's directory lets it connect.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  createEntries,
  createJoinToken,
  runWorkload,
  TesseraAgent,
  writeWorkloadScript,
} from '../../harness/agent.js';
import { TesseraServer } from '../../harness/server.js';

const OWN_UID = process.getuid?.() ?? 0;
const OTHER_UID = 65534;
const FIRST_ID = 'spiffe://example.org/it/uid-first';
const SECOND_ID = 'spiffe://example.org/it/uid-second';
const AUDIENCE = 'spiffe://example.org/it/backend';

interface X509Out {
  readonly ids: string[];
  readonly serials: string[];
  readonly uid: number;
}

describe('agent-uid: a workload under another uid gets its own identity, not the first one', {
  skip: OWN_UID !== 0 && 'needs root to run setpriv',
}, () => {
  let server: TesseraServer;
  let agent: TesseraAgent;
  let workload: Awaited<ReturnType<typeof writeWorkloadScript>>;

  before(async () => {
    server = await TesseraServer.start();
    const t = await createJoinToken(server);
    await createEntries(server, [
      { parentId: t.agentId, spiffeId: FIRST_ID, selectors: [`unix:uid:${OWN_UID}`] },
      { parentId: t.agentId, spiffeId: SECOND_ID, selectors: [`unix:uid:${OTHER_UID}`] },
    ]);
    agent = await TesseraAgent.start({ server, joinToken: t.token });
    workload = await writeWorkloadScript();
  });
  after(async () => {
    await agent?.stop();
    await server?.stop();
    await workload?.remove();
  });

  it("01 the public socket's directory is world-accessible with the sticky bit; the admin socket's is not", async () => {
    const pub = await stat(dirname(agent.socketPath));
    assert.equal(pub.mode & 0o7777, 0o1777);
    const admin = await stat(dirname(agent.adminSocketPath));
    assert.equal(admin.mode & 0o777, 0o700);
  });

  it('02 the first workload (this uid) gets only its own identity', async () => {
    const r = await runWorkload(workload.script, [agent.address, 'x509']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.json as X509Out;
    assert.equal(out.uid, OWN_UID);
    assert.deepEqual(out.ids, [FIRST_ID]);
  });

  it('03 the second workload, started with setpriv as uid 65534, gets its own identity and not the first one', async () => {
    const r = await runWorkload(workload.script, [agent.address, 'x509'], { uid: OTHER_UID });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const out = r.json as X509Out;
    assert.equal(out.uid, OTHER_UID);
    assert.deepEqual(out.ids, [SECOND_ID]);
    assert.ok(!out.ids.includes(FIRST_ID));
  });

  it('04 the JWT-SVIDs follow the caller too', async () => {
    const mine = await runWorkload(workload.script, [agent.address, 'jwt', AUDIENCE]);
    const other = await runWorkload(workload.script, [agent.address, 'jwt', AUDIENCE], { uid: OTHER_UID });
    assert.equal(mine.code, 0, mine.stdout + mine.stderr);
    assert.equal(other.code, 0, other.stdout + other.stderr);
    assert.equal((mine.json as { id: string }).id, FIRST_ID);
    assert.equal((other.json as { id: string }).id, SECOND_ID);
  });

  it('05 another uid without an entry gets PermissionDenied, not a neighbour identity', async () => {
    const r = await runWorkload(workload.script, [agent.address, 'x509'], { uid: 65533 });
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.equal((r.json as { error: string }).error, 'ERR_WORKLOADAPI_PERMISSION_DENIED');
  });
});
