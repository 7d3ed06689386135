/** What differs between engines, behind one interface. @module */
import type { Dialect, Kysely } from 'kysely';
import type { DatastoreEngine } from '../../datastore.js';

/** One engine: its Kysely dialect and the few behaviours Kysely does not abstract. */
export interface EngineAdapter {
  readonly engine: DatastoreEngine;
  readonly dialect: Dialect;
  /** The statement that opens a write transaction (SQLite: `BEGIN IMMEDIATE`, so writers queue on the lock). */
  readonly beginWrite: string;
  /** Whether `SELECT … FOR UPDATE` exists (not in SQLite, where the write transaction already locks). */
  readonly rowLocks: boolean;
  /** Where the database is, without credentials, for error messages. */
  readonly target: string;
  /** Tells whether a driver error is a unique-constraint violation. */
  isUniqueViolation(err: unknown): boolean;
  /**
   * Runs a write (or the migration) after the previous writes of this process to the same database finished.
   * SQLite only: better-sqlite3 is synchronous, so a second in-process connection waiting on the file lock
   * would block the event loop that the lock holder needs to commit. Elsewhere it just runs `fn`.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Runs `fn` holding the cross-process migration lock on the connection `db`. */
  withMigrationLock<T>(db: Kysely<unknown>, fn: () => Promise<T>): Promise<T>;
}

/** The driver's error code (`SQLITE_BUSY`, `23505`, `ER_DUP_ENTRY`, `ECONNREFUSED`), never its message. */
export function driverErrorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && /^[A-Za-z0-9_]{1,64}$/.test(code)) return code;
  }
  return 'unknown';
}
