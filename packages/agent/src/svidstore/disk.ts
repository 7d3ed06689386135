/**
 * The `disk` SVIDStore: one JSON file per entry in a configured directory (0700), named by the entry's
 * `disk:name:<file>` selector, written 0600 and atomically (temporary file, fsync, rename) so a reader never
 * sees a torn document.
 *
 * @module
 */
import { lstat, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ensurePrivateDir, writeFileAtomic } from '../manager/storage.js';
import {
  errorMessage,
  marshalStoredSvid,
  metadataValue,
  parseStoreSelectors,
  type StoredSvid,
  type StoreSelector,
  type SvidStore,
  SvidStoreError,
} from './store.js';

/** Configuration of the `disk` store (`svid_stores.disk`). */
export interface DiskSvidStoreConfig {
  /** Directory of the files; created 0700 when missing. */
  readonly directory: string;
}

const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$/;

/**
 * Creates the `disk` store.
 *
 * Ownership: a file is replaced or deleted only when it is a regular file (not a symlink) holding a JSON
 * document with a string `spiffeID` — one this store (or SPIRE) wrote; anything else is refused with
 * ERR_SVIDSTORE_NOT_OWNED.
 *
 * @example
 * ```ts
 * const store = createDiskSvidStore({ directory: '/var/lib/tessera/svids' });
 * await store.put(secret, [{ type: 'disk', value: 'name:db.json' }]);
 * ```
 */
export function createDiskSvidStore(config: DiskSvidStoreConfig): SvidStore {
  const dir = resolve(config.directory);
  const fileOf = (selectors: readonly StoreSelector[]): string => {
    const md = parseStoreSelectors('disk', selectors, ['name']);
    const name = metadataValue(md, 'name');
    if (name === undefined) {
      throw new SvidStoreError(
        'ERR_SVIDSTORE_INVALID',
        'svidstore: the disk store needs a "disk:name:<file>" selector',
      );
    }
    if (!NAME.test(name)) {
      throw new SvidStoreError(
        'ERR_SVIDSTORE_INVALID',
        `svidstore: disk file name "${name}" must be a plain file name (letters, digits, ".", "_", "-"; not starting with ".")`,
      );
    }
    return join(dir, name);
  };
  /** Whether `path` exists; throws NOT_OWNED when it is not a document this store wrote. */
  const checkOwned = async (path: string): Promise<boolean> => {
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new SvidStoreError(
        'ERR_SVIDSTORE_FAILED',
        `svidstore: cannot inspect "${path}": ${errorMessage(err)}`,
      );
    }
    const refuse = (why: string) =>
      new SvidStoreError('ERR_SVIDSTORE_NOT_OWNED', `svidstore: refusing to touch "${path}": ${why}`);
    if (!st.isFile()) throw refuse('not a regular file');
    if (st.size > 1 << 20) throw refuse('too large to be a stored SVID');
    let doc: unknown;
    try {
      doc = JSON.parse(await readFile(path, 'utf8'));
    } catch {
      throw refuse('not a stored SVID document');
    }
    if (
      typeof doc !== 'object' ||
      doc === null ||
      typeof (doc as { spiffeID?: unknown }).spiffeID !== 'string'
    ) {
      throw refuse('not a stored SVID document');
    }
    return true;
  };
  return {
    name: 'disk',
    validate(selectors) {
      fileOf(selectors);
    },
    async put(secret: StoredSvid, selectors) {
      const path = fileOf(selectors);
      try {
        await ensurePrivateDir(dir);
      } catch (err) {
        throw new SvidStoreError(
          'ERR_SVIDSTORE_FAILED',
          `svidstore: cannot create "${dir}": ${errorMessage(err)}`,
        );
      }
      await checkOwned(path);
      try {
        await writeFileAtomic(path, marshalStoredSvid(secret), 0o600);
      } catch (err) {
        throw new SvidStoreError(
          'ERR_SVIDSTORE_FAILED',
          `svidstore: cannot write "${path}": ${errorMessage(err)}`,
        );
      }
    },
    async delete(selectors) {
      const path = fileOf(selectors);
      if (!(await checkOwned(path))) return;
      try {
        await unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw new SvidStoreError(
          'ERR_SVIDSTORE_FAILED',
          `svidstore: cannot delete "${path}": ${errorMessage(err)}`,
        );
      }
    },
    async close() {},
  };
}
