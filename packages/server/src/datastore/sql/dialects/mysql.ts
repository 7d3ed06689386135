/** MariaDB / MySQL through a mysql2 pool. @module */
import { type Kysely, MysqlDialect, sql } from 'kysely';
import { createPool } from 'mysql2';
import { driverErrorCode, type EngineAdapter } from './adapter.js';

const MIGRATION_LOCK = 'tessera_migrations';

/** Options of {@link createMysqlAdapter}. */
export interface MysqlOptions {
  /** Pool size (default 10). */
  readonly poolSize?: number;
  /** How long to wait for the migration lock, in seconds (default 60). */
  readonly migrationLockTimeoutSec?: number;
}

/** Creates the pool (connections open lazily) and returns its adapter. */
export function createMysqlAdapter(url: string, target: string, opts: MysqlOptions = {}): EngineAdapter {
  const pool = createPool({
    uri: url,
    connectionLimit: opts.poolSize ?? 10,
    supportBigNumbers: true,
    charset: 'utf8mb4_bin',
    timezone: 'Z',
  });
  const lockTimeout = Math.trunc(opts.migrationLockTimeoutSec ?? 60);
  return {
    engine: 'mysql',
    dialect: new MysqlDialect({ pool }),
    beginWrite: 'START TRANSACTION',
    rowLocks: true,
    exclusive: <T>(fn: () => Promise<T>): Promise<T> => fn(),
    target,
    isUniqueViolation(err: unknown): boolean {
      return driverErrorCode(err) === 'ER_DUP_ENTRY';
    },
    async withMigrationLock<T>(conn: Kysely<unknown>, fn: () => Promise<T>): Promise<T> {
      const r = await sql<{
        l: number | null;
      }>`SELECT GET_LOCK(${MIGRATION_LOCK}, ${lockTimeout}) AS l`.execute(conn);
      if (Number(r.rows[0]?.l) !== 1)
        throw Object.assign(new Error('migration lock'), { code: 'LOCK_TIMEOUT' });
      try {
        return await fn();
      } finally {
        await sql`SELECT RELEASE_LOCK(${MIGRATION_LOCK})`.execute(conn);
      }
    },
  };
}
