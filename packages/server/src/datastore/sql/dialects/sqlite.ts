/** SQLite through better-sqlite3: WAL, busy timeout, foreign keys on. @module */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { type Kysely, SqliteDialect, sql } from 'kysely';
import { driverErrorCode, type EngineAdapter } from './adapter.js';

/** Tail of the write queue per database file, shared by every connection of this process. */
const writeQueues = new Map<string, Promise<unknown>>();

function queueFor(key: string): <T>(fn: () => Promise<T>) => Promise<T> {
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const prev = writeQueues.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    writeQueues.set(key, tail);
    void tail.then(() => {
      if (writeQueues.get(key) === tail) writeQueues.delete(key);
    });
    return run;
  };
}

/** Options of {@link createSqliteAdapter}. */
export interface SqliteOptions {
  /** How long a writer waits for the lock held by another connection or process, in ms (default 10000). */
  readonly busyTimeoutMs?: number;
}

/** Opens the SQLite file (or `:memory:`) and returns its adapter. */
export function createSqliteAdapter(filename: string, opts: SqliteOptions = {}): EngineAdapter {
  const db = new Database(filename);
  db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs ?? 10_000)}`);
  if (filename !== ':memory:') db.pragma('journal_mode = WAL');
  // FULL: a transaction reported committed survives power loss, not only a process crash.
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  return {
    engine: 'sqlite',
    dialect: new SqliteDialect({ database: db }),
    beginWrite: 'BEGIN IMMEDIATE',
    rowLocks: false,
    exclusive: queueFor(
      filename === ':memory:' ? Symbol('memory').toString() + Math.random() : resolve(filename),
    ),
    target: filename === ':memory:' ? 'sqlite::memory:' : `sqlite file "${filename}"`,
    isUniqueViolation(err: unknown): boolean {
      const code = driverErrorCode(err);
      return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
    },
    async withMigrationLock<T>(conn: Kysely<unknown>, fn: () => Promise<T>): Promise<T> {
      // The write lock of an immediate transaction excludes other processes until commit; DDL is transactional.
      await sql.raw('BEGIN IMMEDIATE').execute(conn);
      try {
        const r = await fn();
        await sql.raw('COMMIT').execute(conn);
        return r;
      } catch (err) {
        await sql
          .raw('ROLLBACK')
          .execute(conn)
          .catch(() => {});
        throw err;
      }
    },
  };
}
