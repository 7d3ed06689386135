/** Shape of a versioned migration. @module */
import type { Kysely } from 'kysely';
import type { DatastoreEngine } from '../../datastore.js';

/** One schema migration; `up` runs on a single connection, inside the migration lock. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Kysely<unknown>, engine: DatastoreEngine): Promise<void>;
}
