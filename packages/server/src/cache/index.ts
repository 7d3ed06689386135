/** The in-memory entry/node index. @module */
export {
  EntryIndex,
  type EntryIndexConfig,
  type EntryIndexDatastore,
  type EntryIndexListener,
  type EntryIndexLogger,
} from './entry-index.js';
