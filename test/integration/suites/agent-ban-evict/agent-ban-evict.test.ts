/**
 * agent-ban-evict: a banned agent stops serving at once (fail closed), says why, deletes its state and cannot
 * come back; an evicted join_token agent cannot re-attest with its used token (the documented behaviour) and
 * needs a new one.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkloadApiClient } from '@tessera/spiffe/workloadapi';
import {
  banAgent,
  createEntries,
  createJoinToken,
  evictAgent,
  listAgents,
  TesseraAgent,
  waitFor,
} from '../../harness/agent.js';
import { type ProcessResult, TesseraServer } from '../../harness/server.js';

const UID = process.getuid?.() ?? 0;
const BANNED_WL = 'spiffe://example.org/it/on-banned-agent';
const EVICTED_WL = 'spiffe://example.org/it/on-evicted-agent';

async function fetchId(address: string): Promise<string> {
  const c = new WorkloadApiClient({ address });
  try {
    return (await c.fetchX509Svid()).id.toString();
  } finally {
    c.close();
  }
}

/** Whether something accepts connections on the Unix socket. */
function accepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The agent's exit, or undefined when it is still running after `ms`. */
async function exitWithin(agent: TesseraAgent, ms: number): Promise<ProcessResult | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      agent.waitExit(),
      new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function stateFiles(agent: TesseraAgent): string[] {
  return ['agent-state.json', 'svid-cache.json'].filter((f) => existsSync(join(agent.dir, 'data', f)));
}

describe('agent-ban-evict: a ban stops the agent (fail closed); an evicted join_token agent cannot re-attest', () => {
  let server: TesseraServer;
  let banned: TesseraAgent;
  let evicted: TesseraAgent;
  const tokens = { banned: { token: '', agentId: '' }, evicted: { token: '', agentId: '' } };

  before(async () => {
    server = await TesseraServer.start();
    tokens.banned = await createJoinToken(server);
    tokens.evicted = await createJoinToken(server);
    await createEntries(server, [
      { parentId: tokens.banned.agentId, spiffeId: BANNED_WL, selectors: [`unix:uid:${UID}`] },
      { parentId: tokens.evicted.agentId, spiffeId: EVICTED_WL, selectors: [`unix:uid:${UID}`] },
    ]);
    [banned, evicted] = await Promise.all([
      TesseraAgent.start({ server, joinToken: tokens.banned.token }),
      TesseraAgent.start({ server, joinToken: tokens.evicted.token }),
    ]);
  });
  after(async () => {
    await banned?.stop();
    await evicted?.stop();
    await server?.stop();
  });

  it('01 both agents serve their workloads', async () => {
    assert.equal(await fetchId(banned.address), BANNED_WL);
    assert.equal(await fetchId(evicted.address), EVICTED_WL);
    assert.deepEqual(stateFiles(banned).sort(), ['agent-state.json', 'svid-cache.json']);
  });

  it('02 after a ban the agent stops serving at once, reports the ban, deletes its state and exits 1', async () => {
    const client = new WorkloadApiClient({ address: banned.address });
    const ac = new AbortController();
    let updates = 0;
    const watch = client
      .watchX509Context({ onX509ContextUpdate: () => void updates++ }, { signal: ac.signal })
      .catch((err: unknown) => err);
    await waitFor('the first stream message', () => (updates > 0 ? true : undefined), 10_000);
    const t0 = Date.now();
    await banAgent(server, tokens.banned.agentId);
    const exit = await exitWithin(banned, 20_000);
    const ms = Date.now() - t0;
    ac.abort();
    client.close();
    await watch;
    assert.ok(exit, `the banned agent did not exit within 20 s:\n${banned.logs().slice(-3000)}`);
    assert.equal(exit.code, 1, banned.logs().slice(-3000));
    process.stdout.write(`# agent-ban-evict: banned agent stopped ${ms} ms after the ban\n`);
    // The server ends the agent's entry watch at once; the agent asks why and stops (not at its next poll).
    assert.ok(ms < 4000, `the banned agent took ${ms} ms to stop`);
    assert.match(banned.logs(), /this agent is banned by the server/);
    assert.equal(await accepts(banned.socketPath), false, 'nothing serves on the socket any more');
    assert.deepEqual(stateFiles(banned), [], 'agent SVID, keys and SVID cache are deleted');
    const row = (await listAgents(server)).find(
      (a) => `spiffe://example.org${a.id?.path}` === tokens.banned.agentId,
    );
    assert.equal(row?.banned, true);
  });

  it('03 restarted, the banned agent refuses to run: it cannot attest again', async () => {
    await assert.rejects(
      TesseraAgent.start({
        server,
        joinToken: tokens.banned.token,
        dir: banned.dir,
        socketDir: banned.socketDir,
      }),
      /tessera-agent exited \(1\)/,
    );
    assert.equal(await accepts(banned.socketPath), false);
  });

  it('04 the other agent was not affected', async () => {
    assert.equal(await fetchId(evicted.address), EVICTED_WL);
  });

  it('05 after an eviction the join_token agent stops: it cannot re-attest with its used token', async () => {
    await evictAgent(server, tokens.evicted.agentId);
    const exit = await exitWithin(evicted, 20_000);
    assert.ok(exit, `the evicted agent did not exit within 20 s:\n${evicted.logs().slice(-3000)}`);
    assert.equal(exit.code, 1);
    assert.match(evicted.logs(), /evicted and its attestation method \(join_token\) cannot re-attest/);
    assert.equal(await accepts(evicted.socketPath), false);
    assert.deepEqual(stateFiles(evicted), []);
    const ids = (await listAgents(server)).map((a) => `spiffe://example.org${a.id?.path}`);
    assert.ok(!ids.includes(tokens.evicted.agentId));
    // Started again with the used token, it is refused.
    await assert.rejects(
      TesseraAgent.start({
        server,
        joinToken: tokens.evicted.token,
        dir: evicted.dir,
        socketDir: evicted.socketDir,
      }),
      /tessera-agent exited \(1\)/,
    );
  });

  it('06 with a new join token the node joins again, as a new agent', async () => {
    const fresh = await createJoinToken(server);
    await createEntries(server, [
      { parentId: fresh.agentId, spiffeId: EVICTED_WL, selectors: [`unix:uid:${UID}`] },
    ]);
    evicted = await TesseraAgent.start({
      server,
      joinToken: fresh.token,
      dir: evicted.dir,
      socketDir: evicted.socketDir,
    });
    assert.equal(await fetchId(evicted.address), EVICTED_WL);
    const ids = (await listAgents(server)).map((a) => `spiffe://example.org${a.id?.path}`);
    assert.ok(ids.includes(fresh.agentId));
  });
});
