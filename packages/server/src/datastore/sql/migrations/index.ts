/** Every schema migration, in order. Add new ones as NNNN-name.ts and list them here. @module */
import { migration0001 } from './0001-initial.js';
import type { Migration } from './types.js';

export type { Migration } from './types.js';

/** Migrations in ascending version order. */
export const MIGRATIONS: readonly Migration[] = [migration0001];
