/** Applies versioned migrations on open, once, under a cross-process lock. @module */
import { type Kysely, sql } from 'kysely';
import type { EngineAdapter } from './dialects/adapter.js';
import type { Migration } from './migrations/index.js';

/**
 * Applies the migrations not yet recorded in `tessera_migrations`, in order, holding the engine's migration lock
 * (SQLite: an immediate transaction; PostgreSQL: an advisory lock; MariaDB: GET_LOCK), so servers starting
 * together apply each migration once. Returns the versions applied by this call.
 */
export async function migrate(
  db: Kysely<unknown>,
  adapter: EngineAdapter,
  migrations: readonly Migration[],
  now: () => number = Date.now,
): Promise<number[]> {
  return adapter.exclusive(() =>
    db.connection().execute(async (conn) =>
      adapter.withMigrationLock(conn, async () => {
        await sql
          .raw(
            'CREATE TABLE IF NOT EXISTS tessera_migrations (version INTEGER NOT NULL PRIMARY KEY, ' +
              'name VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL)',
          )
          .execute(conn);
        const rows = await sql<{ version: number | string }>`SELECT version FROM tessera_migrations`.execute(
          conn,
        );
        const done = new Set(rows.rows.map((r) => Number(r.version)));
        const latestKnown = migrations.at(-1)?.version ?? 0;
        for (const v of done) {
          if (v > latestKnown) {
            throw Object.assign(new Error('schema newer than this server'), { code: `SCHEMA_VERSION_${v}` });
          }
        }
        const applied: number[] = [];
        // SQLite runs everything in the lock's transaction; the others get one transaction per migration
        // (MariaDB commits DDL implicitly, so a migration that fails there half-way needs an operator).
        const ownTx = adapter.engine !== 'sqlite';
        for (const m of migrations) {
          if (done.has(m.version)) continue;
          if (ownTx) await sql.raw(adapter.beginWrite).execute(conn);
          try {
            await m.up(conn, adapter.engine);
            await sql`INSERT INTO tessera_migrations (version, name, applied_at) VALUES (${m.version}, ${m.name}, ${now()})`.execute(
              conn,
            );
            if (ownTx) await sql.raw('COMMIT').execute(conn);
          } catch (err) {
            if (ownTx) {
              await sql
                .raw('ROLLBACK')
                .execute(conn)
                .catch(() => {});
            }
            throw err;
          }
          applied.push(m.version);
        }
        return applied;
      }),
    ),
  );
}
