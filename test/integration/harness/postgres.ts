/**
 * A throwaway PostgreSQL for integration suites, started with scripts/db/postgres.sh (temp data dir, loopback,
 * free port) or taken from `PG_URL`. Outside CI a missing engine skips; under `CI=true` it fails.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { REPO_ROOT } from './server.js';

/** A running PostgreSQL. */
export interface Postgres {
  /** Creates an empty database and returns its URL. */
  freshDatabase(): Promise<string>;
  /** Stops the server (when this harness started it) and removes its files. */
  stop(): void;
}

/** Why PostgreSQL is not available, and whether that must fail the suite. */
export interface PostgresUnavailable {
  readonly reason: string;
  readonly fail: boolean;
}

const SCRIPT = join(REPO_ROOT, 'scripts', 'db', 'postgres.sh');

async function createDatabase(baseUrl: string): Promise<string> {
  const name = `it_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: baseUrl });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Starts PostgreSQL, or says why it cannot. */
export function startPostgres(): Postgres | PostgresUnavailable {
  const envUrl = process.env.PG_URL;
  if (envUrl !== undefined && envUrl !== '')
    return { freshDatabase: () => createDatabase(envUrl), stop: () => {} };
  const fail = process.env.CI === 'true';
  if (spawnSync('bash', [SCRIPT, 'available'], { stdio: 'ignore' }).status !== 0) {
    return { reason: 'postgresql binaries are not installed (bash scripts/db/postgres.sh install)', fail };
  }
  const dir = mkdtempSync(join(tmpdir(), 'tessera-it-pg-'));
  const started = spawnSync('bash', [SCRIPT, 'start', join(dir, 'srv')], { encoding: 'utf8' });
  const url = started.stdout.trim().split('\n').at(-1) ?? '';
  const stop = () => {
    spawnSync('bash', [SCRIPT, 'stop', join(dir, 'srv')], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  if (started.status !== 0 || !url.startsWith('postgres://')) {
    stop();
    return { reason: `postgresql did not start: ${started.stderr.trim().slice(-500)}`, fail: true };
  }
  return { freshDatabase: () => createDatabase(url), stop };
}

/** Tells a start failure apart from a running server. */
export function isPostgresUnavailable(p: Postgres | PostgresUnavailable): p is PostgresUnavailable {
  return 'reason' in p;
}
