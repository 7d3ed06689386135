/** Key managers: where the server's CA and JWT signing keys live (`memory`, `disk`). @module */
export { createDiskKeyManager, type DiskKeyManagerConfig } from './disk.js';
export { checkKeyId, type KeyManager, type ManagedKey } from './key-manager.js';
export { createMemoryKeyManager } from './memory.js';
