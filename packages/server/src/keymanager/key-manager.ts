/**
 * The key manager interface: where the server's CA and JWT signing keys live.
 *
 * @module
 */
import type { KeyObject } from 'node:crypto';
import type { KeyType } from '@tessera/common/x509';

/** One key held by a {@link KeyManager}. */
export interface ManagedKey {
  /** The key's stable identifier (e.g. `x509-CA-A`). */
  readonly id: string;
  readonly type: KeyType;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/**
 * Holds private keys by ID. `generateKey` replaces any key with the same ID.
 *
 * @example
 * const key = await km.generateKey('x509-CA-A', 'ec-p256');
 * (await km.getKey('x509-CA-A'))?.publicKey.equals(key.publicKey); // true
 */
export interface KeyManager {
  /** The key manager's name (`memory`, `disk`). */
  readonly name: string;
  /** Generates a new key under `id`, replacing any previous one, and returns it once stored. */
  generateKey(id: string, type: KeyType): Promise<ManagedKey>;
  /** The key stored under `id`, or undefined. */
  getKey(id: string): Promise<ManagedKey | undefined>;
  /** Every key, ordered by ID. */
  listKeys(): Promise<ManagedKey[]>;
  /** Deletes the key under `id` (no error when absent). */
  deleteKey(id: string): Promise<void>;
}

const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks that a key ID is 1..128 characters of `[A-Za-z0-9._-]` starting with a letter or digit (IDs name
 * files in the disk key manager).
 *
 * @throws {TypeError} when the ID is not acceptable.
 * @example checkKeyId('x509-CA-A');
 */
export function checkKeyId(id: string): void {
  if (typeof id !== 'string' || !KEY_ID.test(id)) {
    throw new TypeError(`keymanager: invalid key id ${JSON.stringify(id)}`);
  }
}
