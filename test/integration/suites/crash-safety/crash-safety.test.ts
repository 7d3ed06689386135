/**
 * crash-safety: `kill -9` of the server in the middle of a stream of entry batch creates loses no entry whose
 * creation was acknowledged, nor any entry the datastore had committed, with SQLite and with PostgreSQL.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { BatchCreateEntryRequest, Entry, ListEntriesRequest } from '@tessera/common/api';
import Database from 'better-sqlite3';
import pg from 'pg';
import { adminClients } from '../../harness/api.js';
import { isPostgresUnavailable, type Postgres, startPostgres } from '../../harness/postgres.js';
import { TesseraServer, tempDir } from '../../harness/server.js';

const BATCH = 10;
const WRITERS = 4;
/** Batches acknowledged before the kill is armed, so that the restarted server has entries to find. */
const MIN_ACKED_BATCHES = 20;
/** Batches acknowledged while looking for a half-written batch before the test gives up. */
const MAX_PROBING_BATCHES = 300;
/** SPIFFE IDs of the entries written here: `<prefix><writer>/<batch>/<index in the batch>`. */
const CRASH_ID_PREFIX = 'spiffe://example.org/crash/';

/** An entry as the datastore holds it. */
interface StoredEntry {
  readonly id: string;
  readonly spiffeId: string;
}

/**
 * The datastore read from outside the server (its `entries` table), so that it can be read while the server is
 * paused: what it holds then is exactly what the server had committed.
 */
interface StoreReader {
  /** The entries written by this test. */
  crashEntries(): Promise<StoredEntry[]>;
  close(): Promise<void>;
}

function sqliteStore(file: string): StoreReader {
  // Read-only; the server's database is in WAL mode, where a reader never waits for the writer.
  const db = new Database(file, { readonly: true, fileMustExist: true });
  const query = db.prepare<[string], { id: string; spiffe_id: string }>(
    'SELECT id, spiffe_id FROM entries WHERE spiffe_id LIKE ?',
  );
  return {
    crashEntries: async () =>
      query.all(`${CRASH_ID_PREFIX}%`).map((r) => ({ id: r.id, spiffeId: r.spiffe_id })),
    close: async () => {
      db.close();
    },
  };
}

async function postgresStore(connectionString: string): Promise<StoreReader> {
  const c = new pg.Client({ connectionString });
  await c.connect();
  return {
    async crashEntries() {
      const r = await c.query<{ id: string; spiffe_id: string }>(
        'SELECT id, spiffe_id FROM entries WHERE spiffe_id LIKE $1',
        [`${CRASH_ID_PREFIX}%`],
      );
      return r.rows.map((row) => ({ id: row.id, spiffeId: row.spiffe_id }));
    },
    close: () => c.end(),
  };
}

/** `<writer>/<batch>` of an entry written by {@link writeUntilKilled}. */
function batchOf(spiffeId: string): string {
  return spiffeId.slice(CRASH_ID_PREFIX.length).split('/').slice(0, 2).join('/');
}

/** A batch of which the store holds some entries but not all, if there is one. */
function halfWrittenBatch(stored: readonly StoredEntry[]): string | undefined {
  const counts = new Map<string, number>();
  for (const e of stored) counts.set(batchOf(e.spiffeId), (counts.get(batchOf(e.spiffeId)) ?? 0) + 1);
  for (const [batch, n] of counts) if (n < BATCH) return batch;
  return undefined;
}

/** What {@link writeUntilKilled} saw. */
interface CrashRun {
  /** IDs of the entries whose creation was acknowledged. */
  readonly acked: ReadonlySet<string>;
  /** IDs of the entries the datastore held when the server was killed. */
  readonly committed: ReadonlySet<string>;
  /** The batch (`<writer>/<batch>`) the kill cut halfway through its entries. */
  readonly halfWritten: string;
  /** The batches whose call failed because of the kill. */
  readonly cut: ReadonlySet<string>;
  /** How many times the server was paused to find the half-written batch. */
  readonly pauses: number;
}

/**
 * Keeps several writers sending entry batches without pause, and SIGKILLs the server while it is in the middle of
 * one: after each acknowledgement the server is paused (SIGSTOP) and the datastore read; if it holds part of a
 * batch, the server was inside that batch's call (the reply comes after the last entry), and it is killed as it
 * stands; otherwise it resumes and the next acknowledgement is awaited.
 */
async function writeUntilKilled(server: TesseraServer, store: StoreReader): Promise<CrashRun> {
  const acked = new Set<string>();
  const cut = new Set<string>();
  let ackedBatches = 0;
  let killed = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const progress = () => new Promise<void>((resolve) => (wake = resolve));
  const signal = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let seq = 0;
  const clients = adminClients(server);
  const writer = async (w: number) => {
    for (let b = 0; !killed; b++) {
      const entries = Array.from({ length: BATCH }, (_, i) =>
        Entry.fromPartial({
          spiffeId: { trustDomain: 'example.org', path: `/crash/${w}/${b}/${i}` },
          parentId: { trustDomain: 'example.org', path: '/agent' },
          selectors: [{ type: 'unix', value: `uid:${seq++}` }],
        }),
      );
      const res = await clients.entry
        .batchCreateEntry(BatchCreateEntryRequest.fromPartial({ entries }))
        .catch((err: unknown) => {
          if (!killed) throw err; // the server is up: a failed call fails the test
          return undefined;
        });
      if (res === undefined) {
        cut.add(`${w}/${b}`);
        return;
      }
      for (const r of res.results) {
        assert.equal(r.status?.code, status.OK, r.status?.message);
        assert.ok(r.entry !== undefined, 'an entry created without the entry in the result');
        acked.add(r.entry.id);
      }
      ackedBatches++;
      signal();
    }
  };
  const writers = Array.from({ length: WRITERS }, (_, w) =>
    writer(w)
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(signal),
  );

  let halfWritten: string | undefined;
  let committed = new Set<string>();
  let pauses = 0;
  try {
    while (ackedBatches < MIN_ACKED_BATCHES && failure === undefined) await progress();
    const giveUpAt = ackedBatches + MAX_PROBING_BATCHES;
    while (halfWritten === undefined && failure === undefined && ackedBatches < giveUpAt) {
      // The evidence that the server is inside a batch: the store holds part of one.
      if (halfWrittenBatch(await store.crashEntries()) === undefined) {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      // Pause the server and look again (it may have finished the batch meanwhile): what the store holds now is
      // what it holds at the kill.
      await server.pause();
      pauses++;
      const stored = await store.crashEntries();
      halfWritten = halfWrittenBatch(stored);
      if (halfWritten === undefined) server.resume();
      else committed = new Set(stored.map((e) => e.id));
    }
  } finally {
    killed = true;
    server.kill('SIGKILL'); // paused in the middle of a batch, unless the test has failed
    await Promise.all(writers);
    clients.close();
  }
  if (failure !== undefined) throw failure;
  assert.ok(
    halfWritten !== undefined,
    `no batch found half-written with the server paused while ${MAX_PROBING_BATCHES} batches were acknowledged`,
  );
  return { acked, committed, halfWritten, cut, pauses };
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
    let openStore: () => Promise<StoreReader> = () => Promise.reject(new Error('not started'));
    let run: CrashRun | undefined;

    after(async () => {
      await server?.stop();
      await dir?.remove();
    });

    it('01 starts the server', async (t) => {
      const cs = await connectionString();
      if (cs === 'skip') return t.skip('engine not available');
      config = cs === undefined ? {} : { datastore: { connection_string: cs } };
      dir = await tempDir(`crash-${engine}`);
      // Without a connection string, the datastore is the default SQLite file in the data directory.
      const sqliteFile = join(dir.path, 'data', 'datastore.sqlite3');
      openStore = async () => (cs === undefined ? sqliteStore(sqliteFile) : postgresStore(cs));
      server = await TesseraServer.start({ dir: dir.path, config });
    });

    it('02 kill -9 in the middle of a batch while writers are creating entry batches', async (t) => {
      if (server === undefined) return t.skip('not started');
      const store = await openStore();
      try {
        run = await writeUntilKilled(server, store);
      } finally {
        await store.close();
      }
      const exit = await server.waitExit();
      assert.equal(exit.signal, 'SIGKILL');
      t.diagnostic(
        `${run.acked.size} entries acknowledged, ${run.committed.size} stored at the kill; batch ` +
          `${run.halfWritten} half-written (found in pause ${run.pauses}); ${run.cut.size} batch calls cut by the kill`,
      );
      assert.ok(run.cut.has(run.halfWritten), `batch ${run.halfWritten} was acknowledged while half-written`);
      const unstored = [...run.acked].filter((id) => !run?.committed.has(id));
      assert.deepEqual(unstored, [], 'entries acknowledged but not in the datastore');
    });

    it('03 restarts on the same data and finds every acknowledged and every committed entry', async (t) => {
      if (server === undefined || dir === undefined || run === undefined) return t.skip('not started');
      server = await TesseraServer.start({ dir: dir.path, port: server.port, config });
      const stored = await listAllIds(server);
      const lost = [...run.acked].filter((id) => !stored.has(id));
      assert.deepEqual(lost, [], `${lost.length} of ${run.acked.size} acknowledged entries lost`);
      const lostCommitted = [...run.committed].filter((id) => !stored.has(id));
      assert.deepEqual(
        lostCommitted,
        [],
        `${lostCommitted.length} of ${run.committed.size} committed entries lost`,
      );
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
