/**
 * kill -9 in the middle of a batch of writes loses no committed entry (SQLite and PostgreSQL): a child writes
 * batches of entries in transactions and reports each commit; the parent kills it with SIGKILL, reopens the
 * database and checks that every reported entry is present and that no batch is half-stored.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatastore } from './index.js';
import { isUnavailable, startEngine, type TestEngine } from './test-support/engines.js';

const CHILD = fileURLToPath(new URL('./test-support/crash-writer.js', import.meta.url));
const PER_BATCH = 20;

/** Runs the writer until it reported `batches` commits, kills it with SIGKILL, returns what it reported. */
async function runAndKill(url: string, batches: number, round: number): Promise<Map<number, string[]>> {
  const child = spawn(process.execPath, [CHILD, url, String(PER_BATCH), String(round)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const committed = new Map<number, string[]>();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const m = /^committed (\d+) (.+)$/.exec(line);
    if (m === null) continue;
    committed.set(Number(m[1]), (m[2] as string).split(' '));
    if (committed.size >= batches) {
      child.kill('SIGKILL');
      break;
    }
  }
  await exited;
  assert.equal(child.signalCode, 'SIGKILL', `writer did not run until killed: ${stderr.slice(-500)}`);
  return committed;
}

for (const engineName of ['sqlite', 'postgres'] as const) {
  describe(`kill -9 during writes on ${engineName}`, () => {
    let engine: TestEngine | undefined;
    after(async () => engine?.stop());

    it('loses no committed entry and stores no half batch', async (t) => {
      const e = await startEngine(engineName);
      if (isUnavailable(e)) {
        if (e.fail) assert.fail(`${engineName} is required here: ${e.reason}`);
        return t.skip(e.reason);
      }
      engine = e;
      const url = await e.freshDatabase();
      for (let round = 0; round < 2; round++) {
        const reported = await runAndKill(url, 15 + round * 10, round);
        const ds = await openDatastore(url);
        try {
          const all = new Map<string, string>();
          for await (const batch of ds.listAllEntriesForIndex(1000))
            for (const x of batch) all.set(x.id, x.hint);
          for (const [batch, ids] of reported) {
            for (const id of ids)
              assert.equal(all.get(id), `r${round}-batch-${batch}`, `entry ${id} of batch ${batch} lost`);
          }
          const perHint = new Map<string, number>();
          for (const hint of all.values()) perHint.set(hint, (perHint.get(hint) ?? 0) + 1);
          for (const [hint, n] of perHint)
            assert.equal(n % PER_BATCH, 0, `${hint} is half-stored (${n} rows)`);
          const events = await ds.listEventsSince(0, 10_000);
          assert.equal(events.length, all.size);
        } finally {
          await ds.close();
        }
      }
    });
  });
}
