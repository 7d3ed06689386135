/** Opening a datastore from a connection string. @module */
import { DatastoreError } from '@tessera/spiffe/errors';
import { Kysely } from 'kysely';
import { parseConnectionString } from '../connection-string.js';
import type { Datastore } from '../datastore.js';
import { driverErrorCode, type EngineAdapter } from './dialects/adapter.js';
import { createMysqlAdapter } from './dialects/mysql.js';
import { createPostgresAdapter } from './dialects/postgres.js';
import { createSqliteAdapter } from './dialects/sqlite.js';
import { MIGRATIONS } from './migrations/index.js';
import { migrate } from './migrator.js';
import type { DatabaseSchema } from './schema.js';
import { SqlDatastore } from './sql-datastore.js';

/** Options of {@link openDatastore}. */
export interface OpenDatastoreOptions {
  /** Connections in the pool (PostgreSQL, MariaDB); default 10. */
  readonly poolSize?: number;
  /** SQLite busy timeout in ms; default 10000. */
  readonly busyTimeoutMs?: number;
  /** Clock for `createdAt` and event times (tests). */
  readonly now?: () => number;
}

/**
 * Opens the datastore named by a connection string (a file path or `sqlite:` URL, `postgres://`, `mysql://`)
 * and applies pending migrations under a cross-process lock.
 *
 * @throws {ConfigError} ERR_CONFIG_INVALID for a malformed connection string.
 * @throws {DatastoreError} ERR_DATASTORE_FAILED when the database cannot be opened or migrated (the message
 *   names the engine error code and the target without credentials).
 * @example
 * const ds = await openDatastore('sqlite:///var/lib/tessera/datastore.sqlite3');
 * await ds.countEntries();
 */
export async function openDatastore(
  connectionString: string,
  opts: OpenDatastoreOptions = {},
): Promise<Datastore> {
  const target = parseConnectionString(connectionString);
  let adapter: EngineAdapter;
  const where =
    target.engine === 'sqlite'
      ? `sqlite file ${JSON.stringify(target.filename)}`
      : JSON.stringify(target.redacted);
  try {
    if (target.engine === 'sqlite') {
      adapter = createSqliteAdapter(
        target.filename,
        opts.busyTimeoutMs === undefined ? {} : { busyTimeoutMs: opts.busyTimeoutMs },
      );
    } else if (target.engine === 'postgres') {
      adapter = createPostgresAdapter(
        target.url,
        target.redacted,
        opts.poolSize === undefined ? {} : { poolSize: opts.poolSize },
      );
    } else {
      adapter = createMysqlAdapter(
        target.url,
        target.redacted,
        opts.poolSize === undefined ? {} : { poolSize: opts.poolSize },
      );
    }
  } catch (err) {
    throw new DatastoreError(
      'ERR_DATASTORE_FAILED',
      `datastore: cannot open ${where} (${driverErrorCode(err)})`,
    );
  }
  const db = new Kysely<DatabaseSchema>({ dialect: adapter.dialect });
  try {
    await migrate(db as Kysely<unknown>, adapter, MIGRATIONS, opts.now);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw new DatastoreError(
      'ERR_DATASTORE_FAILED',
      `datastore: cannot migrate ${where} (${driverErrorCode(err)})`,
    );
  }
  return new SqlDatastore(db, adapter, opts.now);
}
