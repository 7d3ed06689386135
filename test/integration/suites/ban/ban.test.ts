/** ban: `agent ban` takes effect at once: the banned agent's very next call on its open connection fails. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { GetAuthorizedEntriesRequest } from '@tessera/common/api';
import type { X509Bundle } from '@tessera/spiffe/bundle';
import type { X509Svid } from '@tessera/spiffe/svid';
import { agentClient, agentEntryClient, attestJoinToken, currentBundle } from '../../harness/api.js';
import { TesseraServer } from '../../harness/server.js';

describe('ban: a ban takes effect at once', () => {
  let server: TesseraServer;
  let bundle: X509Bundle;
  let svid: X509Svid;
  let entries: ReturnType<typeof agentEntryClient> | undefined;

  before(async () => {
    server = await TesseraServer.start();
    bundle = await currentBundle(server);
  });
  after(async () => {
    entries?.close();
    await server?.stop();
  });

  it('01 attests an agent with a join token', async () => {
    const r = await server.cli(['token', 'generate']);
    assert.equal(r.code, 0, r.stderr);
    const token = /^Token: (\S+)$/m.exec(r.stdout)?.[1] ?? '';
    const c = agentClient(server, bundle);
    try {
      svid = await attestJoinToken(c, token);
    } finally {
      c.close();
    }
    assert.match(svid.id.toString(), /^spiffe:\/\/example\.org\/spire\/agent\/join_token\//);
  });

  it('02 the agent calls the agent API over mTLS with its SVID', async () => {
    entries = agentEntryClient(server, bundle, svid);
    const res = await entries.getAuthorizedEntries(GetAuthorizedEntriesRequest.fromPartial({}));
    assert.ok(Array.isArray(res.entries));
  });

  it('03 agent ban succeeds through the CLI', async () => {
    const r = await server.cli(['agent', 'ban', '--spiffe-id', svid.id.toString()]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Agent banned successfully/);
  });

  it("04 the agent's next call on the same connection is denied", async () => {
    assert.ok(entries);
    await assert.rejects(
      entries.getAuthorizedEntries(GetAuthorizedEntriesRequest.fromPartial({})),
      (err: { code?: number }) => {
        assert.equal(err.code, status.PERMISSION_DENIED, String(err));
        return true;
      },
    );
  });

  it('05 agent show reports the agent as banned', async () => {
    const r = await server.cli(['agent', 'show', '--spiffe-id', svid.id.toString(), '--output', 'json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { banned: boolean }).banned, true);
  });
});
