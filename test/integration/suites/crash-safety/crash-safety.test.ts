/**
 * crash-safety: `kill -9` of the server in the middle of a stream of entry batch creates loses no entry whose
 * creation was acknowledged, with SQLite and with PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { BatchCreateEntryRequest, Entry, ListEntriesRequest } from '@tessera/common/api';
import { adminClients } from '../../harness/api.js';
import { isPostgresUnavailable, type Postgres, startPostgres } from '../../harness/postgres.js';
import { TesseraServer, tempDir } from '../../harness/server.js';

const BATCH = 10;
const WRITERS = 4;
const RUN_MS = 1500;

/** Writes batches from several writers until the server dies; returns the acknowledged entry IDs. */
async function writeUntilKilled(server: TesseraServer): Promise<{ acked: Set<string>; failedCalls: number }> {
  const acked = new Set<string>();
  let failedCalls = 0;
  let stop = false;
  let seq = 0;
  const clients = adminClients(server);
  const writer = async (w: number) => {
    while (!stop) {
      const entries = Array.from({ length: BATCH }, () => {
        const n = seq++;
        return Entry.fromPartial({
          spiffeId: { trustDomain: 'example.org', path: `/crash/${w}/${n}` },
          parentId: { trustDomain: 'example.org', path: '/agent' },
          selectors: [{ type: 'unix', value: `uid:${n}` }],
        });
      });
      try {
        const res = await clients.entry.batchCreateEntry(BatchCreateEntryRequest.fromPartial({ entries }), {
          deadline: Date.now() + 5000,
        });
        for (const r of res.results) {
          assert.equal(r.status?.code, 0, r.status?.message);
          if (r.entry !== undefined) acked.add(r.entry.id);
        }
      } catch {
        failedCalls++;
        return; // the server is gone
      }
    }
  };
  const writers = Array.from({ length: WRITERS }, (_, w) => writer(w));
  await new Promise((r) => setTimeout(r, RUN_MS));
  server.kill('SIGKILL'); // in the middle of the batches
  stop = true;
  await Promise.all(writers);
  clients.close();
  return { acked, failedCalls };
}

async function listAllIds(server: TesseraServer): Promise<Set<string>> {
  const c = adminClients(server);
  const ids = new Set<string>();
  try {
    let pageToken = '';
    do {
      const res = await c.entry.listEntries(ListEntriesRequest.fromPartial({ pageSize: 1000, pageToken }));
      for (const e of res.entries) ids.add(e.id);
      pageToken = res.nextPageToken;
    } while (pageToken !== '');
  } finally {
    c.close();
  }
  return ids;
}

function crashSuite(engine: string, connectionString: () => Promise<string | undefined>): void {
  describe(`crash-safety (${engine})`, () => {
    let dir: { path: string; remove: () => Promise<void> } | undefined;
    let server: TesseraServer | undefined;
    let config: Record<string, unknown> = {};
    let acked = new Set<string>();

    after(async () => {
      await server?.stop();
      await dir?.remove();
    });

    it('01 starts the server', async (t) => {
      const cs = await connectionString();
      if (cs === 'skip') return t.skip('engine not available');
      config = cs === undefined ? {} : { datastore: { connection_string: cs } };
      dir = await tempDir(`crash-${engine}`);
      server = await TesseraServer.start({ dir: dir.path, config });
    });

    it('02 kill -9 while writers are creating entry batches', async (t) => {
      if (server === undefined) return t.skip('not started');
      const r = await writeUntilKilled(server);
      acked = r.acked;
      const exit = await server.waitExit();
      assert.equal(exit.signal, 'SIGKILL');
      t.diagnostic(`${acked.size} entries acknowledged; ${r.failedCalls} batch calls cut by the kill`);
      assert.ok(r.failedCalls >= 1, 'no batch was in flight when the server was killed');
      assert.ok(acked.size >= BATCH, `only ${acked.size} entries acknowledged before the kill`);
    });

    it('03 restarts on the same data and finds every acknowledged entry', async (t) => {
      if (server === undefined || dir === undefined) return t.skip('not started');
      server = await TesseraServer.start({ dir: dir.path, port: server.port, config });
      const stored = await listAllIds(server);
      const lost = [...acked].filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged entries lost`);
      const r = await server.cli(['entry', 'count', '--output', 'json']);
      assert.equal((JSON.parse(r.stdout) as { count: number }).count, stored.size);
    });
  });
}

crashSuite('sqlite', async () => undefined);

let pgServer: Postgres | undefined;
crashSuite('postgres', async () => {
  const p = startPostgres();
  if (isPostgresUnavailable(p)) {
    if (p.fail) throw new Error(p.reason);
    return 'skip';
  }
  pgServer = p;
  return p.freshDatabase();
});
after(() => pgServer?.stop());
