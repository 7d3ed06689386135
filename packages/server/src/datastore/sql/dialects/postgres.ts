/** PostgreSQL through a pg Pool. @module */
import { type Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { driverErrorCode, type EngineAdapter } from './adapter.js';

/** Advisory lock key of the migration lock ("tessera" as a number). */
const MIGRATION_LOCK_KEY = 7_465_737_365_7261;

/** Options of {@link createPostgresAdapter}. */
export interface PostgresOptions {
  /** Pool size (default 10). */
  readonly poolSize?: number;
}

/** Creates the pool (connections open lazily) and returns its adapter. */
export function createPostgresAdapter(
  url: string,
  target: string,
  opts: PostgresOptions = {},
): EngineAdapter {
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10 });
  // An idle client's error (server restart) must not crash the process; the next query reports it.
  pool.on('error', () => {});
  return {
    engine: 'postgres',
    dialect: new PostgresDialect({ pool }),
    beginWrite: 'BEGIN',
    rowLocks: true,
    exclusive: <T>(fn: () => Promise<T>): Promise<T> => fn(),
    target,
    isUniqueViolation: (err: unknown) => driverErrorCode(err) === '23505',
    async withMigrationLock<T>(conn: Kysely<unknown>, fn: () => Promise<T>): Promise<T> {
      await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn);
      try {
        return await fn();
      } finally {
        await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn);
      }
    },
  };
}
