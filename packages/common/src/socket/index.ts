/**
 * Unix socket files and their directories, shared by the server and the agent.
 *
 * @module
 */
export { preparePrivateSocketDir, preparePublicSocketDir, removeStaleSocket } from './socket-dir.js';
