/**
 * The `memory` key manager: keys live in the process and are lost on restart.
 *
 * @module
 */
import { generateKey, type KeyType } from '@tessera/common/x509';
import { checkKeyId, type KeyManager, type ManagedKey } from './key-manager.js';

/**
 * Creates a key manager that keeps keys in memory only.
 *
 * @example const km = createMemoryKeyManager(); await km.generateKey('JWT-Signer-A', 'ec-p256');
 */
export function createMemoryKeyManager(): KeyManager {
  const keys = new Map<string, ManagedKey>();
  return {
    name: 'memory',
    async generateKey(id: string, type: KeyType): Promise<ManagedKey> {
      checkKeyId(id);
      const pair = generateKey(type);
      const key: ManagedKey = { id, type, privateKey: pair.privateKey, publicKey: pair.publicKey };
      keys.set(id, key);
      return key;
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
      keys.delete(id);
    },
  };
}
