/**
 * Test support: the engines the datastore contract suite runs against. SQLite always; PostgreSQL and MariaDB
 * are started through scripts/db (temp data dir, free loopback port, non-root user) when their binaries are
 * installed, or taken from `PG_URL` / `MYSQL_URL`. Under `CI=true` a missing engine is a failure.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConnection } from 'mysql2/promise';
import pg from 'pg';
import type { DatastoreEngine } from '../datastore.js';

/** The repository root (this file runs from packages/server/dist/datastore/test-support/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

/** One engine available to the tests. */
export interface TestEngine {
  readonly engine: DatastoreEngine;
  /** A connection string for a new, empty database. */
  freshDatabase(): Promise<string>;
  /** Stops what `startEngine` started and removes its files. */
  stop(): Promise<void>;
}

/** Why an engine is not available: `skip` outside CI, `fail` under CI=true. */
export interface Unavailable {
  readonly engine: DatastoreEngine;
  readonly reason: string;
  readonly fail: boolean;
}

function script(engine: 'postgres' | 'mysql'): string {
  return join(REPO_ROOT, 'scripts', 'db', engine === 'postgres' ? 'postgres.sh' : 'mariadb.sh');
}

function dbName(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function createDatabase(engine: 'postgres' | 'mysql', baseUrl: string, name: string): Promise<void> {
  if (engine === 'postgres') {
    const c = new pg.Client({ connectionString: baseUrl });
    await c.connect();
    try {
      await c.query(`CREATE DATABASE ${name}`);
    } finally {
      await c.end();
    }
  } else {
    const c = await createConnection({ uri: baseUrl });
    try {
      await c.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
    } finally {
      await c.end();
    }
  }
}

/** Starts (or finds) an engine; returns `Unavailable` when it cannot run here. */
export async function startEngine(engine: DatastoreEngine): Promise<TestEngine | Unavailable> {
  if (engine === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-ds-sqlite-'));
    let n = 0;
    return {
      engine,
      freshDatabase: async () => `sqlite:${join(dir, `db-${++n}.sqlite3`)}`,
      stop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const envUrl = engine === 'postgres' ? process.env.PG_URL : process.env.MYSQL_URL;
  if (envUrl !== undefined && envUrl !== '') {
    return {
      engine,
      freshDatabase: async () => {
        const name = dbName();
        await createDatabase(engine, envUrl, name);
        return withDatabase(envUrl, name);
      },
      stop: async () => {},
    };
  }
  const fail = process.env.CI === 'true';
  const available = spawnSync('bash', [script(engine), 'available'], { stdio: 'ignore' });
  if (available.status !== 0) {
    return { engine, reason: `${engine} binaries are not installed (scripts/db/*.sh install)`, fail };
  }
  const dir = mkdtempSync(join(tmpdir(), `tessera-ds-${engine}-`));
  const started = spawnSync('bash', [script(engine), 'start', join(dir, 'srv')], { encoding: 'utf8' });
  const baseUrl = started.stdout.trim().split('\n').at(-1) ?? '';
  if (started.status !== 0 || !/^(postgres|mysql):\/\//.test(baseUrl)) {
    spawnSync('bash', [script(engine), 'stop', join(dir, 'srv')], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
    return { engine, reason: `${engine} did not start: ${started.stderr.trim().slice(-500)}`, fail: true };
  }
  return {
    engine,
    freshDatabase: async () => {
      const name = dbName();
      await createDatabase(engine, baseUrl, name);
      return withDatabase(baseUrl, name);
    },
    stop: async () => {
      spawnSync('bash', [script(engine), 'stop', join(dir, 'srv')], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Tells whether a value from `startEngine` is an unavailable engine. */
export function isUnavailable(e: TestEngine | Unavailable): e is Unavailable {
  return 'reason' in e;
}

/** All three engines, in the order the suites run them. */
export const ENGINES: readonly DatastoreEngine[] = ['sqlite', 'postgres', 'mysql'];
