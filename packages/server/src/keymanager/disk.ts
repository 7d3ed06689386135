/**
 * The `disk` key manager: one PKCS#8 PEM file per key (`<id>.pem`, mode 0600) in a directory of mode 0700.
 * Writes are atomic: a temporary file is written, fsynced and renamed over the target, then the directory is
 * fsynced, so a crash leaves either the old key or the new one.
 *
 * @module
 */
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { generateKey, type KeyType, keyTypeOf, pkcs8Pem } from '@tessera/common/x509';
import { SpiffeError } from '@tessera/spiffe/errors';
import { checkKeyId, type KeyManager, type ManagedKey } from './key-manager.js';

/** Options of {@link createDiskKeyManager}. */
export interface DiskKeyManagerConfig {
  /** The directory holding the keys; created (0700) when missing, and set to 0700 when it exists. */
  readonly directory: string;
}

const SUFFIX = '.pem';
const TMP_MARK = '.tmp-';

function failed(message: string, cause?: unknown): SpiffeError {
  return new SpiffeError(
    'ERR_KEYMANAGER_FAILED',
    `keymanager: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function errCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown error';
}

async function fsyncDir(dir: string): Promise<void> {
  const fd = await open(dir, fsConstants.O_RDONLY);
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

async function loadKeyFile(file: string, id: string): Promise<ManagedKey> {
  const st = await stat(file);
  if (!st.isFile()) throw failed(`key file ${JSON.stringify(file)} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw failed(
      `key file ${JSON.stringify(file)} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)})`,
    );
  }
  const pem = await readFile(file);
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw failed(`key file ${JSON.stringify(file)} does not hold a PEM private key`, err);
  }
  const type = keyTypeOf(privateKey);
  if (type === undefined) throw failed(`key file ${JSON.stringify(file)} holds an unsupported key type`);
  return { id, type, privateKey, publicKey: createPublicKey(privateKey) };
}

/**
 * Opens (creating when needed) a disk key manager and loads its keys. Leftover temporary files of an
 * interrupted write are removed.
 *
 * @throws {SpiffeError} ERR_KEYMANAGER_FAILED when the directory cannot be used or a key file is unreadable,
 *   malformed, or accessible by group or others.
 * @example const km = await createDiskKeyManager({ directory: '/var/lib/tessera/server/keys' });
 */
export async function createDiskKeyManager(config: DiskKeyManagerConfig): Promise<KeyManager> {
  const dir = config.directory;
  if (typeof dir !== 'string' || dir === '') throw new TypeError('keymanager: directory is required');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const st = await stat(dir);
    if (!st.isDirectory()) throw failed(`${JSON.stringify(dir)} is not a directory`);
    if ((st.mode & 0o777) !== 0o700) await chmod(dir, 0o700);
  } catch (err) {
    if (err instanceof SpiffeError) throw err;
    throw failed(`cannot use key directory ${JSON.stringify(dir)} (${errCode(err)})`, err);
  }
  const keys = new Map<string, ManagedKey>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw failed(`cannot list key directory ${JSON.stringify(dir)} (${errCode(err)})`, err);
  }
  for (const name of names) {
    const file = join(dir, name);
    if (name.includes(TMP_MARK)) {
      await rm(file, { force: true });
      continue;
    }
    if (!name.endsWith(SUFFIX)) continue;
    const id = name.slice(0, -SUFFIX.length);
    try {
      checkKeyId(id);
    } catch {
      continue;
    }
    try {
      keys.set(id, await loadKeyFile(file, id));
    } catch (err) {
      if (err instanceof SpiffeError) throw err;
      throw failed(`cannot read key file ${JSON.stringify(file)} (${errCode(err)})`, err);
    }
  }

  // Writes are serialized so that two generateKey calls for one ID cannot interleave their renames.
  let queue: Promise<unknown> = Promise.resolve();
  const serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn, fn);
    queue = next.catch(() => {});
    return next;
  };

  async function writeAtomically(id: string, pem: string): Promise<void> {
    const target = join(dir, `${id}${SUFFIX}`);
    const tmp = join(dir, `${id}${SUFFIX}${TMP_MARK}${randomBytes(6).toString('hex')}`);
    try {
      const fd = await open(tmp, 'wx', 0o600);
      try {
        await fd.writeFile(pem);
        await fd.sync();
      } finally {
        await fd.close();
      }
      await rename(tmp, target);
      await fsyncDir(dir);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw failed(`cannot write key ${JSON.stringify(id)} (${errCode(err)})`, err);
    }
  }

  return {
    name: 'disk',
    async generateKey(id: string, type: KeyType): Promise<ManagedKey> {
      checkKeyId(id);
      const pair = generateKey(type);
      const key: ManagedKey = { id, type, privateKey: pair.privateKey, publicKey: pair.publicKey };
      return serialize(async () => {
        await writeAtomically(id, pkcs8Pem(pair.privateKey));
        keys.set(id, key);
        return key;
      });
    },
    async getKey(id: string): Promise<ManagedKey | undefined> {
      checkKeyId(id);
      return keys.get(id);
    },
    async listKeys(): Promise<ManagedKey[]> {
      return [...keys.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    async deleteKey(id: string): Promise<void> {
      checkKeyId(id);
      return serialize(async () => {
        try {
          await rm(join(dir, `${id}${SUFFIX}`), { force: true });
          await fsyncDir(dir);
        } catch (err) {
          throw failed(`cannot delete key ${JSON.stringify(id)} (${errCode(err)})`, err);
        }
        keys.delete(id);
      });
    },
  };
}
