import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatchDeleteEntryRequest, EntryService } from '@tessera/common/api';
import { isUnavailable, startEngine, type TestEngine } from '../datastore/test-support/engines.js';
import { type LiveServer, startLiveServer } from '../testing/live-server.js';

/** Milliseconds until `check` holds, polling every 10 ms; fails after `limitMs`. */
async function timeUntil(check: () => boolean, limitMs: number, what: string): Promise<number> {
  const start = performance.now();
  while (!check()) {
    const waited = performance.now() - start;
    if (waited > limitMs) assert.fail(`${what}: not seen within ${limitMs} ms`);
    await sleep(10);
  }
  return performance.now() - start;
}

// Two servers (one trust domain) on one PostgreSQL database: what one writes reaches the other's entry/node
// index through the change events within a second (the bound), with the default 100 ms poll.
describe('two servers sharing one PostgreSQL', () => {
  let engine: TestEngine | undefined;
  let skipReason: string | undefined;
  let a: LiveServer | undefined;
  let b: LiveServer | undefined;

  before(async () => {
    const e = await startEngine('postgres');
    if (isUnavailable(e)) {
      if (e.fail) throw new Error(`postgres is required under CI=true: ${e.reason}`);
      skipReason = e.reason;
      return;
    }
    engine = e;
    const url = await e.freshDatabase();
    const config = { datastore: { connection_string: url } };
    a = await startLiveServer({ config });
    b = await startLiveServer({ config });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await engine?.stop();
  });

  it("sees the other server's agent, entries and deletions in its index within a second", async (t) => {
    if (a === undefined || b === undefined) return t.skip(skipReason ?? 'postgres unavailable');
    const one = a;
    const two = b;

    await one.createJoinToken('shared-pg-token');
    const agent = await one.attestJoinToken('shared-pg-token');
    const nodeMs = await timeUntil(() => two.server.index.node(agent.agentId) !== undefined, 1000, 'agent');

    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await one.createEntry(`/shared/w${i}`, agent.agentId));
    const last = ids.at(-1) as string;
    const entryMs = await timeUntil(() => two.server.index.entry(last) !== undefined, 1000, 'entry');
    assert.deepEqual(
      two.server.index
        .authorizedEntries(agent.agentId)
        .map((e) => e.id)
        .sort(),
      [...ids].sort(),
    );

    // A write on the second server reaches the first as well.
    const back = await two.createEntry('/shared/from-b', agent.agentId);
    const backMs = await timeUntil(() => one.server.index.entry(back) !== undefined, 1000, 'entry from b');

    await one
      .admin(EntryService)
      .batchDeleteEntry(BatchDeleteEntryRequest.fromPartial({ ids: [ids[0] as string] }));
    const deleteMs = await timeUntil(
      () => two.server.index.entry(ids[0] as string) === undefined,
      1000,
      'deletion',
    );
    t.diagnostic(
      `propagation ms: node ${nodeMs.toFixed(0)}, entry ${entryMs.toFixed(0)}, reverse ${backMs.toFixed(0)}, delete ${deleteMs.toFixed(0)}`,
    );
  });
});
